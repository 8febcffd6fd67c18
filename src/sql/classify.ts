// Statement classification from the first keyword (plus a little look-ahead for WITH,
// EXPLAIN, START and PRAGMA). Unknown verbs are 'session': the node refuses to replicate
// them rather than guessing, and never runs them as a local read.
import { SqlLexError } from './lex-error.js';
import { statementRanges } from './split.js';
import { tokenize, type LexOptions, type Token } from './tokenizer.js';

export const STATEMENT_KINDS = ['read', 'write', 'ddl', 'transaction', 'session', 'empty'] as const;
export type StatementKind = (typeof STATEMENT_KINDS)[number];

export interface StatementClass {
  readonly kind: StatementKind;
  /** Upper-case first keyword ('SELECT', 'INSERT', 'WITH', ...); '' when there is none. */
  readonly verb: string;
}

export interface ClassifiedStatement {
  readonly sql: string;
  readonly class: StatementClass;
}

export interface ClassifiedScript {
  readonly statements: readonly ClassifiedStatement[];
  /** True when any statement is a write or DDL. */
  readonly isWrite: boolean;
}

const VERB_KINDS: ReadonlyMap<string, StatementKind> = new Map<string, StatementKind>(
  Object.entries({
    SELECT: 'read',
    VALUES: 'read',
    TABLE: 'read', // MySQL 8: TABLE t
    SHOW: 'read',
    DESCRIBE: 'read',
    DESC: 'read',
    HELP: 'read',
    CHECK: 'read', // MySQL CHECK TABLE
    CHECKSUM: 'read', // MySQL CHECKSUM TABLE
    INSERT: 'write',
    UPDATE: 'write',
    DELETE: 'write',
    REPLACE: 'write',
    UPSERT: 'write',
    MERGE: 'write',
    LOAD: 'write', // LOAD DATA / LOAD XML
    CALL: 'write', // a stored procedure may write; replicate rather than run locally
    CREATE: 'ddl',
    DROP: 'ddl',
    ALTER: 'ddl',
    TRUNCATE: 'ddl',
    RENAME: 'ddl',
    REINDEX: 'ddl',
    ANALYZE: 'ddl',
    VACUUM: 'ddl',
    OPTIMIZE: 'ddl',
    REPAIR: 'ddl',
    GRANT: 'ddl',
    REVOKE: 'ddl',
    BEGIN: 'transaction',
    COMMIT: 'transaction',
    END: 'transaction',
    ROLLBACK: 'transaction',
    SAVEPOINT: 'transaction',
    RELEASE: 'transaction',
    XA: 'transaction',
    SET: 'session',
    USE: 'session',
    ATTACH: 'session',
    DETACH: 'session',
  } as const satisfies Record<string, StatementKind>),
);

/** Table-valued PRAGMAs that only report. Any other PRAGMA, or any with '=', is 'session'. */
export const READ_ONLY_PRAGMAS: ReadonlySet<string> = new Set([
  'table_info',
  'table_xinfo',
  'table_list',
  'index_list',
  'index_info',
  'index_xinfo',
  'foreign_key_list',
  'foreign_key_check',
  'database_list',
  'compile_options',
  'integrity_check',
  'quick_check',
  'collation_list',
  'function_list',
  'module_list',
  'pragma_list',
]);

const EMPTY: StatementClass = { kind: 'empty', verb: '' };
const WITH_MAIN_VERBS: ReadonlyMap<string, StatementKind> = new Map<string, StatementKind>([
  ['SELECT', 'read'],
  ['VALUES', 'read'],
  ['TABLE', 'read'],
  ['INSERT', 'write'],
  ['UPDATE', 'write'],
  ['DELETE', 'write'],
  ['REPLACE', 'write'],
]);

function upperWord(t: Token | undefined): string | null {
  return t !== undefined && t.kind === 'word' ? t.text.toUpperCase() : null;
}

/** Classifies the statement made of tokens[from, to). */
export function classifyTokens(tokens: readonly Token[], from: number, to: number): StatementClass {
  if (from >= to) return EMPTY;
  let i = from;
  while (i < to && tokens[i]!.kind === 'lparen') i++;
  const verb = upperWord(i < to ? tokens[i] : undefined);
  if (verb === null) return { kind: 'session', verb: '' };
  switch (verb) {
    case 'WITH':
      return { kind: withMainKind(tokens, i + 1, to), verb };
    case 'EXPLAIN':
      return { kind: explainKind(tokens, i + 1, to), verb };
    case 'START':
      return { kind: upperWord(tokens[i + 1]) === 'TRANSACTION' && i + 1 < to ? 'transaction' : 'session', verb };
    case 'BEGIN':
      // MariaDB's anonymous compound statement runs arbitrary code.
      return {
        kind: i + 2 < to && upperWord(tokens[i + 1]) === 'NOT' && upperWord(tokens[i + 2]) === 'ATOMIC' ? 'write' : 'transaction',
        verb,
      };
    case 'PRAGMA':
      return { kind: pragmaKind(tokens, i + 1, to), verb };
    default:
      return { kind: VERB_KINDS.get(verb) ?? 'session', verb };
  }
}

/** The statement after the CTE list decides: the first of its verbs found at paren depth 0. */
function withMainKind(tokens: readonly Token[], from: number, to: number): StatementKind {
  let depth = 0;
  let prevAtZero: Token | undefined;
  for (let i = from; i < to; i++) {
    const t = tokens[i]!;
    if (t.kind === 'lparen') {
      if (depth === 0 && prevAtZero?.kind === 'rparen') {
        // `WITH a AS (...) (SELECT ...)`: the main statement is parenthesised.
        let j = i;
        while (j < to && tokens[j]!.kind === 'lparen') j++;
        const main = WITH_MAIN_VERBS.get(upperWord(tokens[j]) ?? '');
        if (main !== undefined && j < to) return main;
      }
      depth++;
    } else if (t.kind === 'rparen') {
      depth--;
      if (depth === 0) prevAtZero = t;
    } else if (depth === 0) {
      if (t.kind === 'word') {
        const main = WITH_MAIN_VERBS.get(t.text.toUpperCase());
        if (main !== undefined) return main;
      }
      prevAtZero = t;
    }
  }
  return 'session';
}

/** EXPLAIN only describes a plan, except MySQL's EXPLAIN ANALYZE, which runs the statement. */
function explainKind(tokens: readonly Token[], from: number, to: number): StatementKind {
  if (from >= to || upperWord(tokens[from]) !== 'ANALYZE') return 'read';
  let depth = 0;
  for (let i = from + 1; i < to; i++) {
    const t = tokens[i]!;
    if (t.kind === 'lparen') depth++;
    else if (t.kind === 'rparen') depth--;
    else if (depth === 0 && WITH_MAIN_VERBS.get(upperWord(t) ?? '') === 'write') return 'write';
  }
  return 'read';
}

/** `PRAGMA [schema.]name [(arg)]` is a read only for the known reporting PRAGMAs and without '='. */
function pragmaKind(tokens: readonly Token[], from: number, to: number): StatementKind {
  for (let i = from; i < to; i++) if (tokens[i]!.kind === 'op' && tokens[i]!.text === '=') return 'session';
  let nameAt = from;
  if (from + 2 < to && tokens[from + 1]!.kind === 'op' && tokens[from + 1]!.text === '.') nameAt = from + 2;
  const name = nameAt < to ? tokens[nameAt] : undefined;
  if (name === undefined || name.kind !== 'word') return 'session';
  return READ_ONLY_PRAGMAS.has(name.text.toLowerCase()) ? 'read' : 'session';
}

/** The name a PRAGMA statement sets or queries (for error messages), lower-case. */
export function pragmaName(tokens: readonly Token[], from: number, to: number): string {
  let i = from;
  while (i < to && tokens[i]!.kind === 'lparen') i++;
  let nameAt = i + 1;
  if (nameAt + 2 < to && tokens[nameAt + 1]!.kind === 'op' && tokens[nameAt + 1]!.text === '.') nameAt += 2;
  return nameAt < to ? tokens[nameAt]!.text.toLowerCase() : '';
}

/** Classifies a single statement. More than one statement is a bad request (use classifyScript). */
export function classifyStatement(sql: string, options: LexOptions = {}): StatementClass {
  const tokens = tokenize(sql, options);
  const ranges = statementRanges(sql, tokens, options.dialect ?? 'sqlite');
  const first = ranges[0];
  if (first === undefined) return EMPTY;
  const second = ranges[1];
  if (second !== undefined) {
    throw new SqlLexError(
      `expected a single statement but found ${ranges.length} (classify scripts with classifyScript)`,
      sql,
      second.textStart,
    );
  }
  return classifyTokens(tokens, first.firstToken, first.endToken);
}

/** Splits a script and classifies each statement. */
export function classifyScript(sql: string, options: LexOptions = {}): ClassifiedScript {
  const tokens = tokenize(sql, options);
  const statements = statementRanges(sql, tokens, options.dialect ?? 'sqlite').map(
    (r): ClassifiedStatement => ({
      sql: sql.slice(r.textStart, r.textEnd),
      class: classifyTokens(tokens, r.firstToken, r.endToken),
    }),
  );
  const isWrite = statements.some((s) => s.class.kind === 'write' || s.class.kind === 'ddl');
  return { statements, isWrite };
}
