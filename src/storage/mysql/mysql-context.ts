// What the MySQL engine needs to know about a statement before it runs it, and the replay context that
// makes a statement compute the same values on every replica (docs/mysql.md):
//   - analyzeStatement: exactly one statement; its kind (read, DML, schema change); refusals (transaction
//     control, session state, non-InnoDB tables, replisql's own tables, what findMysqlNondeterminism
//     calls unsafe); parameters inlined as literals (text protocol, no server-side prepared statements);
//   - StatementContext: SET TIMESTAMP / INSERT_ID / LAST_INSERT_ID / rand seeds, validated and turned
//     into one SET statement;
//   - classifyMysqlError: a deterministic statement error (data) vs. a failure of the server or the
//     connection (not data).
import { randomInt } from 'node:crypto';
import { ErrorCode } from '../../errors.js';
import { classifyTokens, findMysqlNondeterminism, SqlLexError, statementRanges, tokenize, type MysqlLexOptions, type Token } from '../../sql/index.js';
import { EngineCode, type SqlValue, type Statement, type StatementContext } from '../sql-engine.js';

export type { StatementContext } from '../sql-engine.js';

/** Engine codes specific to the MySQL engine (the port's EngineCode covers the rest). */
export const MysqlEngineCode = {
  /**
   * execInBatch was given a schema change (DDL). MySQL commits DDL implicitly, so it cannot run inside
   * the speculative batch: the caller must log it unexecuted and apply it with applyEntry once it is
   * committed (the result carries `statements` with their replay context for that).
   */
  DDL_NOT_SPECULATIVE: 'REPLISQL_DDL_NOT_SPECULATIVE',
  /** A statement's replay context is malformed. */
  BAD_CONTEXT: 'REPLISQL_BAD_CONTEXT',
} as const;

/** A statement the engine refuses before sending it to the server: a deterministic statement error. */
export class StatementRefusal extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'StatementRefusal';
  }
}

export type MysqlStatementKind = 'read' | 'dml' | 'ddl';

export interface AnalyzedStatement {
  readonly kind: MysqlStatementKind;
  /** Upper-case first keyword. */
  readonly verb: string;
  /** The SQL with parameters inlined as literals: what is sent to the server. */
  readonly text: string;
  /** Calls LAST_INSERT_ID(): the coordinator pins the value it has before the statement. */
  readonly usesLastInsertId: boolean;
  /** INSERT/REPLACE ... RETURNING: returns rows, so its insert id is read with LAST_INSERT_ID(). */
  readonly insertReturning: boolean;
  /** The table an INSERT/REPLACE (or WITH ... INSERT) fills, as written ('' when it cannot be told); null for other statements. */
  readonly insertTarget: string | null;
  /** The table a CREATE TABLE (without IF NOT EXISTS) creates; null for other statements. */
  readonly createdTable: string | null;
  /**
   * Set when the result depends on the order rows are visited in, which can differ between replicas,
   * as soon as the statement changes more than one row (what it is, for the error message).
   */
  readonly orderSensitive: string | null;
}

// ------------------------------------------------------------------ statement analysis

const TRANSACTION_MSG = 'replisql manages transactions itself';
/** DDL verbs and the object types replisql replicates; everything else that is DDL is refused. */
const DDL_OBJECTS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['CREATE', new Set(['TABLE', 'INDEX', 'VIEW', 'TRIGGER'])],
  ['ALTER', new Set(['TABLE', 'VIEW'])],
  ['DROP', new Set(['TABLE', 'INDEX', 'VIEW', 'TRIGGER'])],
  ['RENAME', new Set(['TABLE'])],
  ['TRUNCATE', new Set(['TABLE'])],
]);
/** Words that may come between the DDL verb and the object type. */
const DDL_MODIFIERS = new Set(['OR', 'REPLACE', 'UNIQUE', 'FULLTEXT', 'SPATIAL', 'ONLINE', 'OFFLINE', 'IGNORE', 'SQL', 'SECURITY', 'DEFINER', 'INVOKER', 'ALGORITHM', 'UNDEFINED', 'MERGE', 'TEMPTABLE', 'CURRENT_USER']);
/** Storage engines that are not transactional or not crash-safe (or not local): refused in CREATE/ALTER TABLE. */
const NON_INNODB_ENGINES = new Set([
  'MYISAM', 'ARIA', 'MEMORY', 'HEAP', 'CSV', 'ARCHIVE', 'BLACKHOLE', 'MERGE', 'MRG_MYISAM', 'FEDERATED', 'FEDERATEDX',
  'CONNECT', 'SEQUENCE', 'SPIDER', 'ROCKSDB', 'TOKUDB', 'S3', 'OQGRAPH', 'MROONGA', 'SPHINX', 'COLUMNSTORE', 'NDB', 'NDBCLUSTER',
]);
/** Functions findMysqlNondeterminism does not know that still differ between replicas. */
const EXTRA_UNSAFE: ReadonlyMap<string, string> = new Map([
  ['DATABASE', 'the database name may differ between replicas'],
  ['SCHEMA', 'the database name may differ between replicas'],
]);

/** Every keyword a MySQL or MariaDB statement can start with (an unknown first word is a syntax error). */
const KNOWN_VERBS = new Set([
  'ALTER', 'ANALYZE', 'BACKUP', 'BEGIN', 'BINLOG', 'CACHE', 'CALL', 'CHANGE', 'CHECK', 'CHECKSUM', 'CLONE', 'COMMIT', 'CREATE',
  'DEALLOCATE', 'DELETE', 'DESC', 'DESCRIBE', 'DO', 'DROP', 'END', 'EXECUTE', 'EXPLAIN', 'FLUSH', 'GET', 'GRANT', 'HANDLER', 'HELP',
  'IMPORT', 'INSERT', 'INSTALL', 'KILL', 'LOAD', 'LOCK', 'OPTIMIZE', 'PREPARE', 'PURGE', 'RELEASE', 'RENAME', 'REPAIR', 'REPLACE',
  'RESET', 'RESIGNAL', 'RESTART', 'REVOKE', 'ROLLBACK', 'SAVEPOINT', 'SELECT', 'SET', 'SHOW', 'SHUTDOWN', 'SIGNAL', 'START', 'STOP',
  'TABLE', 'TRUNCATE', 'UNINSTALL', 'UNLOCK', 'UPDATE', 'USE', 'VALUES', 'WITH', 'XA', 'ATTACH', 'DETACH', 'PRAGMA', 'VACUUM',
  'REINDEX', 'UPSERT', 'MERGE',
]);

/** `x.insert` or a quoted name is not the INSERT statement. */
function isAfterDotOrName(tokens: readonly Token[], k: number): boolean {
  const prev = tokens[k - 1];
  return prev !== undefined && prev.kind === 'op' && prev.text === '.';
}

function upper(t: Token | undefined): string {
  return t !== undefined && t.kind === 'word' ? t.text.toUpperCase() : '';
}

/**
 * Checks one statement for `mode` and inlines its parameters. Throws StatementRefusal (a statement
 * error, returned as data by writes) for anything the engine will not run.
 */
export function analyzeStatement(st: Statement, mode: 'read' | 'write', lex: MysqlLexOptions): AnalyzedStatement {
  if (st === null || typeof st !== 'object' || typeof st.sql !== 'string') {
    throw new StatementRefusal(EngineCode.INVALID_STATEMENT, 'a statement must be { sql: string, params?: [...] }');
  }
  const sql = st.sql;
  let tokens: Token[];
  try {
    tokens = tokenize(sql, { ...lex, dialect: 'mysql' });
  } catch (e) {
    if (e instanceof SqlLexError) throw new StatementRefusal(EngineCode.INVALID_STATEMENT, e.message);
    throw e;
  }
  let ranges;
  try {
    ranges = statementRanges(sql, tokens, 'mysql');
  } catch (e) {
    if (e instanceof SqlLexError) throw new StatementRefusal(EngineCode.INVALID_STATEMENT, e.message);
    throw e;
  }
  if (ranges.length === 0) throw new StatementRefusal(EngineCode.INVALID_STATEMENT, 'the statement is empty');
  if (ranges.length > 1) {
    throw new StatementRefusal(EngineCode.INVALID_STATEMENT, `the SQL text contains more than one statement (${ranges.length}); send one statement per entry of the list`);
  }
  const { firstToken: from, endToken: to } = ranges[0]!;
  const cls = classifyTokens(tokens, from, to);
  const verb = cls.verb;
  let kind: MysqlStatementKind;
  switch (cls.kind) {
    case 'empty':
      throw new StatementRefusal(EngineCode.INVALID_STATEMENT, 'the statement is empty');
    case 'transaction':
      throw new StatementRefusal(EngineCode.FORBIDDEN_STATEMENT, `${verb} is not allowed: ${TRANSACTION_MSG}`);
    case 'session':
      if (verb !== '' && !KNOWN_VERBS.has(verb) && tokens[from + 1]?.text !== ':') {
        // Not a statement MySQL knows: the server can only answer with its syntax error, which is
        // more useful than ours (and deterministic, so data in writes).
        kind = 'read';
        break;
      }
      throw new StatementRefusal(
        EngineCode.FORBIDDEN_STATEMENT,
        `${verb || 'this statement'} is not allowed: it changes or depends on connection state, which is not replicated`,
      );
    case 'read':
      kind = 'read';
      break;
    case 'write':
      if (mode === 'read') throw new StatementRefusal(EngineCode.NOT_READONLY, `${verb} writes; reads may only run read-only statements`);
      if (verb === 'CALL' || verb === 'BEGIN') {
        throw new StatementRefusal(
          EngineCode.FORBIDDEN_STATEMENT,
          `${verb === 'CALL' ? 'CALL' : 'BEGIN NOT ATOMIC'} is not allowed: stored programs can commit by themselves and their statements cannot be pinned`,
        );
      }
      kind = 'dml';
      break;
    case 'ddl':
      if (mode === 'read') throw new StatementRefusal(EngineCode.NOT_READONLY, `${verb} changes the schema; reads may only run read-only statements`);
      checkDdl(tokens, from, to, verb);
      kind = 'ddl';
      break;
  }
  if (kind === 'read') checkRead(tokens, from, to, verb, mode);
  if (mode === 'write') {
    if (/_replisql_/i.test(sql)) throw new StatementRefusal(EngineCode.FORBIDDEN_STATEMENT, "statements may not touch replisql's own tables (_replisql_*)");
    checkVariables(tokens, from, to);
  }
  let usesLastInsertId = false;
  let orderSensitive: string | null = null;
  if (mode === 'write') {
    let found;
    try {
      found = findMysqlNondeterminism(sql, lex);
    } catch (e) {
      if (e instanceof SqlLexError) throw new StatementRefusal(EngineCode.INVALID_STATEMENT, e.message);
      throw e;
    }
    const first = found.unsafe[0];
    if (first !== undefined) {
      const name = first.name.includes(' ') ? first.name : `${first.name}()`;
      throw new StatementRefusal(ErrorCode.UNSAFE_STATEMENT, `${name} cannot be replicated: ${first.reason}`);
    }
    for (let i = from; i < to - 1; i++) {
      const t = tokens[i]!;
      if (t.kind !== 'word' || tokens[i + 1]!.kind !== 'lparen') continue;
      if (i > from && tokens[i - 1]!.kind === 'op' && tokens[i - 1]!.text === '.') continue;
      const reason = EXTRA_UNSAFE.get(t.text.toUpperCase());
      if (reason !== undefined) throw new StatementRefusal(ErrorCode.UNSAFE_STATEMENT, `${t.text.toUpperCase()}() cannot be replicated: ${reason}`);
    }
    usesLastInsertId = found.pinnable.includes('LAST_INSERT_ID');
    const ordered = hasTopLevelOrderBy(tokens, from, to);
    if ((verb === 'INSERT' || verb === 'REPLACE' || isCreateTable(tokens, from)) && hasTopLevelWord(tokens, from, to, 'SELECT') && !ordered) {
      const what = verb === 'CREATE' ? 'CREATE TABLE ... SELECT' : `${verb} ... SELECT`;
      throw new StatementRefusal(
        ErrorCode.UNSAFE_STATEMENT,
        `${what} without ORDER BY cannot be replicated: the order the SELECT returns rows in decides their AUTO_INCREMENT ids and which duplicate wins, and replicas may return them in another order; add ORDER BY on a unique key`,
      );
    }
    // UPDATE/DELETE visit rows in the order the optimizer picks, and optimizers choose plans from
    // sampled statistics, which differ between servers. That matters when RAND() gives each row the
    // next number of the sequence, or when IGNORE skips rows: only for more than one row, which the
    // engine checks after running the statement (orderSensitive).
    if (!ordered && (verb === 'UPDATE' || verb === 'DELETE' || verb === 'WITH')) {
      if (found.pinnable.includes('RAND')) orderSensitive = `RAND() in ${verb === 'WITH' ? 'a statement' : `an ${verb}`} without ORDER BY that changes more than one row`;
      else if (upper(tokens[from + 1]) === 'IGNORE') orderSensitive = `${verb} IGNORE without ORDER BY that changes more than one row`;
    }
  }
  const insertReturning =
    mode === 'write' && (verb === 'INSERT' || verb === 'REPLACE') && hasTopLevelWord(tokens, from, to, 'RETURNING');
  const text = inlineParams(sql, tokens, from, to, st.params, lex.noBackslashEscapes === true);
  return {
    kind,
    verb,
    text,
    usesLastInsertId,
    insertReturning,
    insertTarget: insertTargetOf(tokens, from, to, verb, kind),
    createdTable: createdTableOf(tokens, from, to, verb),
    orderSensitive,
  };
}

/** A table name as written: `a`.`b`, a.b, `x` → a.b / x (quotes removed). */
function tableNameAt(tokens: readonly Token[], i: number, to: number): string {
  const part = (t: Token | undefined): string | null =>
    t === undefined ? null : t.kind === 'word' ? t.text : t.kind === 'quoted' && t.text.startsWith('`') ? t.text.slice(1, -1).replaceAll('``', '`') : null;
  const first = part(tokens[i]);
  if (first === null || i >= to) return '';
  if (i + 2 < to && tokens[i + 1]!.kind === 'op' && tokens[i + 1]!.text === '.') {
    const second = part(tokens[i + 2]);
    return second === null ? '' : `${first}.${second}`;
  }
  return first;
}

function insertTargetOf(tokens: readonly Token[], from: number, to: number, verb: string, kind: MysqlStatementKind): string | null {
  if (kind !== 'dml') return null;
  if (verb === 'WITH') return hasTopLevelWord(tokens, from, to, 'INSERT') || hasTopLevelWord(tokens, from, to, 'REPLACE') ? '' : null;
  if (verb !== 'INSERT' && verb !== 'REPLACE') return null;
  let i = from + 1;
  while (i < to && ['LOW_PRIORITY', 'DELAYED', 'HIGH_PRIORITY', 'IGNORE', 'INTO'].includes(upper(tokens[i]))) i++;
  return tableNameAt(tokens, i, to);
}

function createdTableOf(tokens: readonly Token[], from: number, to: number, verb: string): string | null {
  if (verb !== 'CREATE') return null;
  let i = from + 1;
  if (upper(tokens[i]) === 'OR' && upper(tokens[i + 1]) === 'REPLACE') i += 2;
  if (upper(tokens[i]) !== 'TABLE') return null;
  i++;
  if (upper(tokens[i]) === 'IF') return null; // IF NOT EXISTS: the table may have been there before
  return tableNameAt(tokens, i, to) || null;
}

/**
 * In a command with a schema change nothing runs speculatively, so the coordinator records no insert
 * ids for it: every replica generates its own. AUTO_INCREMENT counters of existing tables may differ
 * between replicas (InnoDB reserves ids in batches for INSERT ... SELECT, INSERT IGNORE, ...), so such
 * a command may only insert into tables it created itself. Returns the index of the first statement
 * that breaks this, or -1.
 */
export function unpinnableInsert(analyzed: readonly AnalyzedStatement[]): number {
  if (!analyzed.some((a) => a.kind === 'ddl')) return -1;
  const created = new Set<string>();
  for (let i = 0; i < analyzed.length; i++) {
    const a = analyzed[i]!;
    if (a.createdTable !== null) created.add(a.createdTable);
    if (a.insertTarget !== null && (a.insertTarget === '' || !created.has(a.insertTarget))) return i;
  }
  return -1;
}

function isCreateTable(tokens: readonly Token[], from: number): boolean {
  if (upper(tokens[from]) !== 'CREATE') return false;
  let i = from + 1;
  if (upper(tokens[i]) === 'OR' && upper(tokens[i + 1]) === 'REPLACE') i += 2;
  return upper(tokens[i]) === 'TABLE';
}

function hasTopLevelOrderBy(tokens: readonly Token[], from: number, to: number): boolean {
  let depth = 0;
  for (let i = from; i < to - 1; i++) {
    const t = tokens[i]!;
    if (t.kind === 'lparen') depth++;
    else if (t.kind === 'rparen') depth--;
    else if (depth === 0 && upper(t) === 'ORDER' && upper(tokens[i + 1]) === 'BY') return true;
  }
  return false;
}

function hasTopLevelWord(tokens: readonly Token[], from: number, to: number, word: string): boolean {
  let depth = 0;
  for (let i = from; i < to; i++) {
    const t = tokens[i]!;
    if (t.kind === 'lparen') depth++;
    else if (t.kind === 'rparen') depth--;
    else if (depth === 0 && t.kind === 'word' && t.text.toUpperCase() === word) return true;
  }
  return false;
}

/** The object a DDL statement creates or changes must be one replisql replicates, in InnoDB. */
function checkDdl(tokens: readonly Token[], from: number, to: number, verb: string): void {
  const objects = DDL_OBJECTS.get(verb);
  if (objects === undefined) {
    throw new StatementRefusal(EngineCode.FORBIDDEN_STATEMENT, `${verb} is not replicated: it is server administration, not a change to the replicated data`);
  }
  let i = from + 1;
  let object = verb === 'TRUNCATE' ? 'TABLE' : ''; // TRUNCATE [TABLE] t: only tables
  if (object !== '') return;
  while (i < to) {
    const t = tokens[i]!;
    const w = upper(t);
    if (w === 'TEMPORARY') {
      throw new StatementRefusal(EngineCode.FORBIDDEN_STATEMENT, 'temporary tables are not allowed: they belong to one connection and are not replicated');
    }
    if (w !== '' && objects.has(w)) {
      object = w;
      break;
    }
    // DEFINER = user@host, ALGORITHM = x, SQL SECURITY x: skip the modifier and its value.
    if (w !== '' && DDL_MODIFIERS.has(w)) {
      i++;
      continue;
    }
    if ((t.kind === 'op' && (t.text === '=' || t.text === '@')) || t.kind === 'string' || t.kind === 'quoted' || t.kind === 'param') {
      i++;
      continue;
    }
    if ((t.kind === 'lparen' || t.kind === 'rparen') && i > from + 1 && upper(tokens[i - 1]) === 'CURRENT_USER') {
      i++;
      continue;
    }
    break;
  }
  if (object === '') {
    const what = upper(tokens[i]) || (tokens[i]?.text ?? '');
    throw new StatementRefusal(EngineCode.FORBIDDEN_STATEMENT, `${verb} ${what} is not replicated: only tables, indexes, views and triggers are`);
  }
  if (object === 'TRIGGER') {
    // The body starts after FOR EACH ROW (before it, INSERT names the triggering event).
    let body = i + 1;
    while (body + 2 < to && !(upper(tokens[body]) === 'FOR' && upper(tokens[body + 1]) === 'EACH' && upper(tokens[body + 2]) === 'ROW')) body++;
    for (let k = body + 3; k < to; k++) {
      const w = upper(tokens[k]);
      if ((w === 'INSERT' || w === 'REPLACE') && !isAfterDotOrName(tokens, k)) {
        throw new StatementRefusal(
          ErrorCode.UNSAFE_STATEMENT,
          `a trigger that inserts rows cannot be replicated: the AUTO_INCREMENT values it generates are not recorded (MySQL's statement-based binlog calls this unsafe too: ER_BINLOG_UNSAFE_AUTOINC_COLUMNS)`,
        );
      }
    }
    return;
  }
  if (object !== 'TABLE') return;
  let depth = 0;
  for (let k = i + 1; k < to; k++) {
    const t = tokens[k]!;
    if (t.kind === 'lparen') depth++;
    else if (t.kind === 'rparen') depth--;
    else if (depth === 0 && upper(t) === 'ENGINE') {
      let v = k + 1;
      const hasEq = tokens[v]?.kind === 'op' && tokens[v]!.text === '=';
      if (hasEq) v++;
      const value = tokens[v];
      if (value === undefined) continue;
      const name = value.kind === 'word' ? value.text : value.kind === 'quoted' || value.kind === 'string' ? value.text.slice(1, -1) : '';
      const upperName = name.toUpperCase();
      if ((hasEq && upperName !== 'INNODB') || NON_INNODB_ENGINES.has(upperName)) {
        throw new StatementRefusal(
          EngineCode.FORBIDDEN_STATEMENT,
          `ENGINE=${name} is not allowed: only InnoDB tables are transactional and crash-safe, which replication depends on`,
        );
      }
    } else if (depth === 0 && upper(t) === 'WITH' && upper(tokens[k + 1]) === 'SYSTEM' && upper(tokens[k + 2]) === 'VERSIONING') {
      throw new StatementRefusal(EngineCode.FORBIDDEN_STATEMENT, 'system-versioned tables are not supported: their history is not part of snapshots');
    }
  }
}

/** SELECT ... INTO writes a file or a variable; maintenance statements commit implicitly. */
function checkRead(tokens: readonly Token[], from: number, to: number, verb: string, mode: 'read' | 'write'): void {
  if (mode === 'write' && (verb === 'CHECK' || verb === 'CHECKSUM' || verb === 'HELP')) {
    throw new StatementRefusal(EngineCode.FORBIDDEN_STATEMENT, `${verb} is not allowed in writes: it is not a change to the replicated data`);
  }
  if (verb !== 'SELECT' && verb !== 'WITH' && verb !== 'VALUES' && verb !== 'TABLE') return;
  if (hasTopLevelWord(tokens, from, to, 'INTO')) {
    throw new StatementRefusal(EngineCode.FORBIDDEN_STATEMENT, 'SELECT ... INTO is not allowed: it writes a file or a variable, which are not replicated');
  }
  for (let i = from; i < to; i++) {
    const w = upper(tokens[i]);
    if ((w === 'GET_LOCK' || w === 'RELEASE_LOCK' || w === 'RELEASE_ALL_LOCKS') && tokens[i + 1]?.kind === 'lparen') {
      throw new StatementRefusal(EngineCode.FORBIDDEN_STATEMENT, `${w}() is not allowed: user-level locks would outlive the statement on a pooled connection`);
    }
  }
}

/** User variables can only be read (they are NULL everywhere); server variables differ between servers. */
function checkVariables(tokens: readonly Token[], from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const t = tokens[i]!;
    if (t.kind !== 'param' || !t.text.startsWith('@')) continue;
    if (t.text.startsWith('@@')) {
      throw new StatementRefusal(
        ErrorCode.UNSAFE_STATEMENT,
        `${t.text} cannot be replicated: server and session variables may differ between replicas`,
      );
    }
    const next = tokens[i + 1];
    if (next !== undefined && next.kind === 'op' && next.text === ':=') {
      throw new StatementRefusal(EngineCode.FORBIDDEN_STATEMENT, `assigning ${t.text} is not allowed: user variables are connection state, which is not replicated`);
    }
  }
}

// ------------------------------------------------------------------ parameters

/** Replaces each `?` of the statement with the SQL literal of its parameter. */
function inlineParams(sql: string, tokens: readonly Token[], from: number, to: number, params: readonly SqlValue[] | undefined, noBackslashEscapes: boolean): string {
  if (params !== undefined && params !== null && !Array.isArray(params)) {
    throw new StatementRefusal(EngineCode.BAD_PARAMETER, 'params must be an array (positional parameters)');
  }
  const values = params ?? [];
  const marks: Token[] = [];
  for (let i = from; i < to; i++) if (tokens[i]!.kind === 'param' && tokens[i]!.text === '?') marks.push(tokens[i]!);
  if (marks.length !== values.length) {
    throw new StatementRefusal(
      EngineCode.INVALID_STATEMENT,
      `the statement has ${marks.length} parameter placeholder${marks.length === 1 ? '' : 's'} but ${values.length} value${values.length === 1 ? ' was' : 's were'} given`,
    );
  }
  const literals = values.map((v, i) => sqlLiteral(v, i, noBackslashEscapes));
  if (marks.length === 0) return sql;
  let out = '';
  let at = 0;
  marks.forEach((m, i) => {
    out += sql.slice(at, m.start) + literals[i]!;
    at = m.end;
  });
  return out + sql.slice(at);
}

/**
 * A parameter as a SQL literal. Integers stay integers, other numbers become DOUBLE literals (`2.5e0`,
 * the shortest text that reads back as the same double), booleans 1/0, bigint exact, strings quoted,
 * `{ $blob }` a hex literal. NaN and ±Infinity are refused.
 */
export function sqlLiteral(v: SqlValue, i: number, noBackslashEscapes = false): string {
  if (v === null) return 'NULL';
  switch (typeof v) {
    case 'number':
      if (!Number.isFinite(v)) throw new StatementRefusal(EngineCode.BAD_PARAMETER, `parameter ${i + 1}: ${v} cannot be stored (only finite numbers)`);
      if (Number.isInteger(v)) return Object.is(v, -0) ? '0' : Math.abs(v) < 1e21 ? v.toFixed(0) : `${String(v)}`;
      return /e/i.test(String(v)) ? String(v) : `${String(v)}e0`;
    case 'bigint':
      return v.toString();
    case 'boolean':
      return v ? '1' : '0';
    case 'string':
      return quoteString(v, noBackslashEscapes);
    case 'object': {
      const b = (v as { $blob?: unknown }).$blob;
      if (typeof b === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(b) && b.length % 4 === 0) return `X'${Buffer.from(b, 'base64').toString('hex')}'`;
      throw new StatementRefusal(EngineCode.BAD_PARAMETER, `parameter ${i + 1}: an object parameter must be { $blob: <base64> }`);
    }
    default:
      throw new StatementRefusal(EngineCode.BAD_PARAMETER, `parameter ${i + 1}: unsupported value of type ${typeof v}`);
  }
}

export function quoteString(s: string, noBackslashEscapes = false): string {
  if (noBackslashEscapes) return `'${s.replaceAll("'", "''")}'`;
  let out = "'";
  for (const ch of s) {
    switch (ch) {
      case "'":
        out += "\\'";
        break;
      case '\\':
        out += '\\\\';
        break;
      case '\0':
        out += '\\0';
        break;
      case '\n':
        out += '\\n';
        break;
      case '\r':
        out += '\\r';
        break;
      case '\x1a':
        out += '\\Z';
        break;
      default:
        out += ch;
    }
  }
  return `${out}'`;
}

export function quoteIdent(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

// ------------------------------------------------------------------ replay context

/** MySQL's RAND() works modulo 0x3FFFFFFF; seeds are chosen below that. */
export const RAND_SEED_LIMIT = 0x3fffffff;
/** TIMESTAMP range of MariaDB before 11.5 and of MySQL: up to 2038-01-19. */
const MAX_TIMESTAMP_S = 2_147_483_647;
const TIMESTAMP_RE = /^[0-9]{1,10}(\.[0-9]{1,6})?$/;
const UINT64_MAX = 18446744073709551615n;

/**
 * The coordinator's clock for SET TIMESTAMP: microseconds, never going backwards within one engine
 * (a statement never gets an earlier time than the one before it).
 */
export class ContextClock {
  private lastMicros = 0;
  constructor(private readonly nowMs: () => number = () => performance.timeOrigin + performance.now()) {}

  /** The next timestamp, as `seconds.micros`. */
  next(): string {
    const micros = Math.max(Math.floor(this.nowMs() * 1000), this.lastMicros + 1);
    this.lastMicros = micros;
    return formatTimestamp(micros);
  }
}

export function formatTimestamp(micros: number): string {
  const s = Math.floor(micros / 1_000_000);
  const us = micros - s * 1_000_000;
  return `${s}.${String(us).padStart(6, '0')}`;
}

export function randomSeed(): number {
  return randomInt(0, RAND_SEED_LIMIT);
}

/** An AUTO_INCREMENT value as the context stores it: a number, or a decimal string beyond 2^53. */
export function idForContext(v: unknown): number | string | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? v : null;
  if (typeof v === 'bigint') return v > 0n ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()) : null;
  if (typeof v === 'string' && /^[0-9]{1,20}$/.test(v)) {
    const b = BigInt(v);
    if (b === 0n || b > UINT64_MAX) return null;
    return b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b.toString();
  }
  return null;
}

function idLiteral(name: string, v: unknown): string {
  const ok =
    (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) || (typeof v === 'string' && /^[0-9]{1,20}$/.test(v) && BigInt(v) <= UINT64_MAX);
  if (!ok) throw new StatementRefusal(MysqlEngineCode.BAD_CONTEXT, `context.${name} must be a non-negative integer (a number, or a decimal string), got ${JSON.stringify(v)}`);
  return String(v);
}

function seedLiteral(name: string, v: unknown): string {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > 0xffffffff) {
    throw new StatementRefusal(MysqlEngineCode.BAD_CONTEXT, `context.${name} must be an integer in [0, 2^32), got ${JSON.stringify(v)}`);
  }
  return String(v);
}

/** Checks a context from the log; returns it, or undefined when absent. Throws StatementRefusal. */
export function validateContext(ctx: unknown): StatementContext | undefined {
  if (ctx === undefined || ctx === null) return undefined;
  if (typeof ctx !== 'object' || Array.isArray(ctx)) throw new StatementRefusal(MysqlEngineCode.BAD_CONTEXT, 'context must be an object');
  const c = ctx as Record<string, unknown>;
  for (const k of Object.keys(c)) {
    if (!['timestamp', 'insertId', 'lastInsertId', 'randSeed1', 'randSeed2'].includes(k)) {
      throw new StatementRefusal(MysqlEngineCode.BAD_CONTEXT, `unknown context field ${JSON.stringify(k)}`);
    }
  }
  if (c.timestamp !== undefined) {
    if (typeof c.timestamp !== 'string' || !TIMESTAMP_RE.test(c.timestamp) || Number(c.timestamp) < 1 || Number(c.timestamp) > MAX_TIMESTAMP_S) {
      throw new StatementRefusal(MysqlEngineCode.BAD_CONTEXT, `context.timestamp must be unix seconds with up to 6 decimals in [1, ${MAX_TIMESTAMP_S}], got ${JSON.stringify(c.timestamp)}`);
    }
  }
  if (c.insertId !== undefined) idLiteral('insertId', c.insertId);
  if (c.lastInsertId !== undefined) idLiteral('lastInsertId', c.lastInsertId);
  if ((c.randSeed1 === undefined) !== (c.randSeed2 === undefined)) {
    throw new StatementRefusal(MysqlEngineCode.BAD_CONTEXT, 'context.randSeed1 and context.randSeed2 go together');
  }
  if (c.randSeed1 !== undefined) seedLiteral('randSeed1', c.randSeed1);
  if (c.randSeed2 !== undefined) seedLiteral('randSeed2', c.randSeed2);
  return c as StatementContext;
}

/**
 * The one SET statement that puts a session in the state the statement ran in on the coordinator.
 * INSERT_ID is always set (0 clears a value a previous statement left unused: MySQL keeps a forced
 * insert id until an AUTO_INCREMENT value consumes it). Without a timestamp the server clock is used
 * (`SET TIMESTAMP = DEFAULT`): only for entries logged without context.
 */
export function contextSetSql(ctx: StatementContext | undefined, lastInsertIdOverride?: number | string): string {
  const parts = [`timestamp = ${ctx?.timestamp ?? 'DEFAULT'}`, `insert_id = ${ctx?.insertId === undefined ? '0' : idLiteral('insertId', ctx.insertId)}`];
  if (ctx?.randSeed1 !== undefined && ctx.randSeed2 !== undefined) {
    parts.push(`rand_seed1 = ${seedLiteral('randSeed1', ctx.randSeed1)}`, `rand_seed2 = ${seedLiteral('randSeed2', ctx.randSeed2)}`);
  }
  const lid = lastInsertIdOverride ?? ctx?.lastInsertId;
  if (lid !== undefined) parts.push(`last_insert_id = ${idLiteral('lastInsertId', lid)}`);
  return `SET ${parts.join(', ')}`;
}

// ------------------------------------------------------------------ errors

/**
 * Server errors that depend on the server's state or resources, not on the statement: never data.
 * Lock waits and deadlocks, full disks and tables, memory, shutdown, read-only mode, interrupted queries,
 * crashed tables, packet limits, timeouts.
 */
const ENVIRONMENT_ERRNOS = new Set([
  1015, 1016, 1021, 1030, 1034, 1035, 1036, 1037, 1038, 1040, 1041, 1053, 1077, 1078, 1079, 1080, 1081, 1114, 1117, 1152, 1153, 1154, 1155, 1156,
  1157, 1158, 1159, 1160, 1161, 1180, 1181, 1194, 1195, 1196, 1205, 1206, 1213, 1290, 1317, 1836, 1927, 1969, 3024, 4031,
]);
/** Errors meaning the connection itself is gone or unusable. */
const CONNECTION_ERRNOS = new Set([1040, 1053, 1077, 1078, 1079, 1080, 1081, 1152, 1153, 1154, 1155, 1156, 1157, 1158, 1159, 1160, 1161, 1927, 2002, 2003, 2006, 2013, 2055, 4031]);

/** statement: deterministic (data); environment: the server's state; connection: the link is gone; other: not from mysql2. */
export type MysqlErrorKind = 'statement' | 'environment' | 'connection' | 'other';

export interface MysqlErrorLike {
  readonly code?: string;
  readonly errno?: number;
  readonly sqlState?: string;
  readonly fatal?: boolean;
  readonly sqlMessage?: string;
  readonly message?: string;
}

export function classifyMysqlError(e: unknown): MysqlErrorKind {
  const err = e as MysqlErrorLike | null;
  if (err === null || typeof err !== 'object') return 'other';
  if (err.fatal === true) return 'connection';
  const errno = err.errno;
  if (errno === undefined && (err.code === undefined || !/^(E[A-Z]+|PROTOCOL_[A-Z_]+|ER_[A-Z_]+)$/.test(err.code))) return 'other';
  if (typeof errno !== 'number' || errno < 0) return 'connection'; // ECONNREFUSED, closed connection, client-side timeout ...
  if (CONNECTION_ERRNOS.has(errno)) return 'connection';
  if (ENVIRONMENT_ERRNOS.has(errno) || errno < 1000 || (errno >= 2000 && errno < 3000)) return 'environment';
  return 'statement';
}

export function errorCodeOf(e: unknown): string {
  const err = e as MysqlErrorLike | null;
  return typeof err?.code === 'string' && err.code !== '' ? err.code : typeof err?.errno === 'number' ? `ER_${err.errno}` : 'MYSQL_ERROR';
}

/** A mysql2 error as what the server said: code, message, errno and SQLSTATE when present. */
export function serverErrorOf(e: unknown): { readonly code: string; readonly message: string; readonly errno?: number; readonly sqlState?: string } {
  const err = e as MysqlErrorLike | null;
  const errno = typeof err?.errno === 'number' && err.errno > 0 ? err.errno : undefined;
  const sqlState = typeof err?.sqlState === 'string' && /^[0-9A-Z]{5}$/.test(err.sqlState) ? err.sqlState : undefined;
  return { code: errorCodeOf(e), message: errorMessageOf(e), ...(errno === undefined ? {} : { errno }), ...(sqlState === undefined ? {} : { sqlState }) };
}

export function errorMessageOf(e: unknown): string {
  const err = e as MysqlErrorLike | null;
  return err?.sqlMessage ?? err?.message ?? String(e);
}

/**
 * Errors a schema change gives when it already took effect: creating what exists, dropping what is
 * gone, renaming from a name that is gone. Tolerated only when re-running a schema change that a crash
 * interrupted (the fencing row says it may have run); see docs/mysql.md.
 */
export const DDL_ALREADY_DONE_ERRNOS: ReadonlySet<number> = new Set([
  1050, // ER_TABLE_EXISTS_ERROR
  1051, // ER_BAD_TABLE_ERROR
  1054, // ER_BAD_FIELD_ERROR (CHANGE/RENAME COLUMN already done)
  1060, // ER_DUP_FIELDNAME
  1061, // ER_DUP_KEYNAME
  1091, // ER_CANT_DROP_FIELD_OR_KEY
  1146, // ER_NO_SUCH_TABLE
  1176, // ER_KEY_DOES_NOT_EXITS (RENAME INDEX already done)
  1359, // ER_TRG_ALREADY_EXISTS
  1360, // ER_TRG_DOES_NOT_EXIST
  1826, // ER_DUP_CONSTRAINT_NAME
  4092, // ER_UNKNOWN_VIEW (MariaDB)
]);
