// Finds what makes a MySQL/MariaDB statement non-deterministic, for the MySQL engine.
// 'pinnable' is what the coordinator can fix with session context the way MySQL's own
// statement-based binlog does (SET TIMESTAMP, SET INSERT_ID/LAST_INSERT_ID, RAND seeds);
// 'unsafe' cannot be fixed and must be refused. Lexer-level: a name followed by '(' or one
// of the keywords that work without parentheses. Content of /*! ... *\/ counts as code.
import { classifyTokens } from './classify.js';
import { isAfterDot, isCallAt } from './calls.js';
import { statementRanges } from './split.js';
import { tokenize, type LexOptions, type Token } from './tokenizer.js';

export interface UnsafeConstruct {
  readonly name: string;
  readonly reason: string;
}

export interface MysqlNondeterminism {
  /** Upper-case names, each once, in order of first appearance. */
  readonly pinnable: readonly string[];
  /** Each name once, in order of first appearance. */
  readonly unsafe: readonly UnsafeConstruct[];
}

export type MysqlLexOptions = Pick<LexOptions, 'noBackslashEscapes' | 'ansiQuotes'>;

/** Pinnable functions; `true` when the bare keyword (without parentheses) also works. */
const PINNABLE: ReadonlyMap<string, boolean> = new Map([
  ['NOW', false],
  ['CURRENT_TIMESTAMP', true],
  ['CURRENT_DATE', true],
  ['CURRENT_TIME', true],
  ['CURDATE', false],
  ['CURTIME', false],
  ['LOCALTIME', true],
  ['LOCALTIMESTAMP', true],
  ['UTC_TIMESTAMP', true],
  ['UTC_DATE', true],
  ['UTC_TIME', true],
  ['RAND', false],
  ['LAST_INSERT_ID', false],
]);

const CONNECTION = 'it depends on the connection it runs on, which differs between replicas';
const LOCKS = 'user-level locks live in one server, not in the replicated data';
/** Unsafe functions: reason, and whether the bare keyword also works. */
const UNSAFE: ReadonlyMap<string, { readonly reason: string; readonly bare: boolean }> = new Map([
  ['UUID', { reason: 'each replica would generate a different UUID', bare: false }],
  ['UUID_SHORT', { reason: 'each replica would generate a different value', bare: false }],
  ['SYS_GUID', { reason: 'each replica would generate a different value', bare: false }],
  ['RANDOM_BYTES', { reason: 'each replica would generate different bytes', bare: false }],
  ['SYSDATE', { reason: 'it reads the clock at execution time and ignores the pinned timestamp', bare: false }],
  ['LOAD_FILE', { reason: "it reads a file from each replica's own disk", bare: false }],
  ['CONNECTION_ID', { reason: CONNECTION, bare: false }],
  ['USER', { reason: CONNECTION, bare: false }],
  ['CURRENT_USER', { reason: CONNECTION, bare: true }],
  ['SESSION_USER', { reason: CONNECTION, bare: false }],
  ['SYSTEM_USER', { reason: CONNECTION, bare: false }],
  ['FOUND_ROWS', { reason: CONNECTION, bare: false }],
  ['ROW_COUNT', { reason: CONNECTION, bare: false }],
  ['GET_LOCK', { reason: LOCKS, bare: false }],
  ['RELEASE_LOCK', { reason: LOCKS, bare: false }],
  ['RELEASE_ALL_LOCKS', { reason: LOCKS, bare: false }],
  ['IS_FREE_LOCK', { reason: LOCKS, bare: false }],
  ['IS_USED_LOCK', { reason: LOCKS, bare: false }],
  ['SLEEP', { reason: 'it stalls every replica while it applies the log', bare: false }],
  ['VERSION', { reason: 'replicas may run different server versions', bare: false }],
]);

const LIMIT_REASON = 'without ORDER BY the rows it touches depend on each replica\'s physical row order';

/** Scans a MySQL script for non-deterministic functions and statements. Throws SqlLexError on bad input. */
export function findMysqlNondeterminism(sql: string, options: MysqlLexOptions = {}): MysqlNondeterminism {
  const tokens = tokenize(sql, { ...options, dialect: 'mysql' });
  const pinnable = new Set<string>();
  const unsafe = new Map<string, string>();
  for (const r of statementRanges(sql, tokens, 'mysql')) {
    const from = r.firstToken;
    const to = r.endToken;
    for (let i = from; i < to; i++) {
      const t = tokens[i]!;
      if (t.kind !== 'word' || t.text.length > 17 || isAfterDot(tokens, i, from)) continue;
      const upper = t.text.toUpperCase();
      const call = isCallAt(tokens, i, from, to); // false after INTO, TABLE, ... (a name)
      const p = PINNABLE.get(upper);
      if (p !== undefined && (call || p)) {
        pinnable.add(upper);
        continue;
      }
      if (upper === 'UNIX_TIMESTAMP' && call && tokens[i + 2]?.kind === 'rparen') {
        pinnable.add(upper); // with an argument it is a pure conversion
        continue;
      }
      const u = UNSAFE.get(upper);
      if (u !== undefined && (call || u.bare) && !unsafe.has(upper)) unsafe.set(upper, u.reason);
    }
    const statementIssue = unsafeStatement(tokens, from, to);
    if (statementIssue !== null && !unsafe.has(statementIssue.name)) unsafe.set(statementIssue.name, statementIssue.reason);
  }
  return {
    pinnable: [...pinnable],
    unsafe: [...unsafe].map(([name, reason]) => ({ name, reason })),
  };
}

/** UPDATE/DELETE/INSERT ... SELECT with a top-level LIMIT and no top-level ORDER BY; LOAD DATA. */
function unsafeStatement(tokens: readonly Token[], from: number, to: number): UnsafeConstruct | null {
  const cls = classifyTokens(tokens, from, to);
  if (cls.verb === 'LOAD') {
    const what = tokens[from + 1]?.text.toUpperCase();
    if (what === 'DATA' || what === 'XML') {
      return { name: `LOAD ${what}`, reason: 'it reads a file that is not part of the replicated log' };
    }
  }
  if (cls.kind !== 'write') return null;
  let depth = 0;
  let hasLimit = false;
  let hasOrderBy = false;
  let main = cls.verb;
  let mainFound = cls.verb !== 'WITH';
  for (let i = from; i < to; i++) {
    const t = tokens[i]!;
    if (t.kind === 'lparen') depth++;
    else if (t.kind === 'rparen') depth--;
    else if (depth === 0 && t.kind === 'word') {
      const upper = t.text.toUpperCase();
      if (!mainFound && (upper === 'UPDATE' || upper === 'DELETE' || upper === 'INSERT' || upper === 'REPLACE')) {
        main = upper;
        mainFound = true;
      } else if (upper === 'LIMIT') hasLimit = true;
      else if (upper === 'ORDER' && tokens[i + 1]?.text.toUpperCase() === 'BY') hasOrderBy = true;
    }
  }
  if (!hasLimit || hasOrderBy) return null;
  if (main === 'UPDATE' || main === 'DELETE') return { name: `${main} ... LIMIT`, reason: LIMIT_REASON };
  if (main === 'INSERT' || main === 'REPLACE') return { name: `${main} ... SELECT ... LIMIT`, reason: LIMIT_REASON };
  return null;
}
