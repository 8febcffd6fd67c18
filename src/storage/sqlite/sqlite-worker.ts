// A sqlite worker thread: owns one better-sqlite3 connection and serves WorkerRequests in arrival order.
// The write worker (role 'write') holds the only read-write connection: WAL, synchronous=FULL,
// foreign_keys=ON; it applies log entries and runs the coordinator's speculative batch. Read workers
// (role 'read') open the file read-only and run client reads, dumps and snapshots (VACUUM INTO).
// Everything here is synchronous: a request runs to completion before the next one is looked at.
import { parentPort } from 'node:worker_threads';
import fs from 'node:fs';
import { fsyncPath } from '../fsync-path.js';
import path from 'node:path';
import Database from 'better-sqlite3';
import { GENESIS_CHAIN_HASH } from '../../core/types.js';
import { SqlLexError, tokenize, type Token } from '../../sql/index.js';
import { placeEntry, validateEntry } from '../entry-contract.js';
import {
  EngineCode,
  type AppliedState,
  type ApplyResult,
  type BatchExecResult,
  type EntryToApply,
  type ColumnType,
  type SqlValue,
  type Statement,
  type StatementDescription,
  type StatementResult,
} from '../sql-engine.js';
import {
  isEnvironmentCode,
  isFatalCode,
  type OpenArgs,
  type WorkerFailure,
  type WorkerRequest,
  type WorkerResponse,
} from './sqlite-protocol.js';

type Db = Database.Database;
type Stmt = Database.Statement<unknown[], unknown>;

class Failure extends Error {
  constructor(readonly info: WorkerFailure) {
    super(info.message);
  }
}
const misuse = (code: string, message: string): Failure => new Failure({ kind: 'misuse', code, message });
const statementFailure = (code: string, message: string): Failure => new Failure({ kind: 'statement', code, message });

/** Classifies anything thrown while preparing/binding/executing a client statement. */
function toFailure(e: unknown): WorkerFailure {
  if (e instanceof Failure) return e.info;
  if (e instanceof Database.SqliteError) {
    const code = typeof e.code === 'string' ? e.code : 'SQLITE_ERROR';
    if (isEnvironmentCode(code)) return { kind: 'environment', code, message: e.message, fatal: isFatalCode(code) };
    return { kind: 'statement', code, message: e.message };
  }
  // better-sqlite3 throws RangeError/TypeError for SQL that is not exactly one statement and for
  // parameters that do not fit it: deterministic, so a statement error.
  if (e instanceof RangeError || e instanceof TypeError) {
    return { kind: 'statement', code: EngineCode.INVALID_STATEMENT, message: e.message };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { kind: 'environment', code: EngineCode.INTERNAL, message };
}

// ------------------------------------------------------------------ statement checks and values

/**
 * First keyword of a statement, upper-cased ('' when it starts with something else), as src/sql lexes
 * it. Only the start of the text is lexed (a statement can be megabytes long): a window that grows
 * until its first token ends well inside it.
 */
function firstKeyword(sql: string): string {
  for (let window = 256; ; window *= 8) {
    const whole = window >= sql.length;
    const text = whole ? sql : sql.slice(0, window);
    let tokens: Token[];
    try {
      tokens = tokenize(text);
    } catch (e) {
      if (!(e instanceof SqlLexError)) throw e;
      // An unterminated string, identifier or comment (or one the window cuts): what comes before it
      // lexes. Unterminated in the whole text, SQLite reports it (or accepts a comment to the end).
      tokens = tokenize(text.slice(0, e.position));
    }
    const first = tokens[0];
    if (whole || (first !== undefined && first.end + 4 < text.length)) return first !== undefined && first.kind === 'word' ? first.text.toUpperCase() : '';
  }
}

/** Statements that would break the engine's own transaction or connection, refused on every path. */
const CONNECTION_KEYWORDS = new Set(['BEGIN', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'ATTACH', 'DETACH', 'VACUUM']);

function checkAllowed(sql: string, mode: 'read' | 'write'): string {
  const kw = firstKeyword(sql);
  if (CONNECTION_KEYWORDS.has(kw)) {
    throw statementFailure(EngineCode.FORBIDDEN_STATEMENT, `${kw} is not allowed: replisql manages transactions and connections itself`);
  }
  if (mode === 'write') {
    // Connection-level pragmas do not replicate (a restarted replica would lose them); the lexer in
    // src/sql is the first line of defence, this is the last one.
    if (kw === 'PRAGMA') throw statementFailure(EngineCode.FORBIDDEN_STATEMENT, 'PRAGMA is not allowed in replicated writes');
    if (/_replisql_/i.test(sql)) {
      throw statementFailure(EngineCode.FORBIDDEN_STATEMENT, "statements may not touch replisql's own tables (_replisql_*)");
    }
  } else if (kw === 'PRAGMA' && sql.includes('=')) {
    throw statementFailure(EngineCode.FORBIDDEN_STATEMENT, 'PRAGMA assignments are not allowed in reads');
  }
  return kw;
}

function bindValue(v: SqlValue, i: number): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'bigint') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) {
      throw statementFailure(EngineCode.BAD_PARAMETER, `parameter ${i + 1}: ${v} cannot be stored (only finite numbers)`);
    }
    // Bind integral numbers as INTEGER (better-sqlite3 would bind every number as REAL).
    return Number.isSafeInteger(v) ? BigInt(v) : v;
  }
  if (typeof v === 'boolean') return v ? 1n : 0n;
  if (typeof v === 'object' && v !== null && typeof (v as { $blob?: unknown }).$blob === 'string') {
    return Buffer.from(v.$blob, 'base64');
  }
  throw statementFailure(EngineCode.BAD_PARAMETER, `parameter ${i + 1}: unsupported value of type ${typeof v}`);
}

function bindParams(params: readonly SqlValue[] | undefined): unknown[] {
  if (params === undefined || params === null) return [];
  if (!Array.isArray(params)) throw statementFailure(EngineCode.BAD_PARAMETER, 'params must be an array (positional parameters)');
  return params.map(bindValue);
}

/** A rowid as the port reports it: a number, or a decimal string beyond 2^53. */
function rowidOut(v: number | bigint): number | string {
  if (typeof v === 'number') return v;
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

function valueOut(v: unknown): unknown {
  if (v instanceof Uint8Array) return { $blob: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  if (typeof v === 'bigint') return rowidOut(v);
  return v;
}

// ------------------------------------------------------------------ the connection

interface Conn {
  readonly db: Db;
  readonly args: OpenArgs;
  readonly cache: Map<string, Stmt>;
  readonly begin: Stmt;
  readonly commit: Stmt;
  readonly totalChanges: Stmt;
  readonly changes: Stmt;
  readonly lastRowid: Stmt;
  /** Write role only. */
  readonly readFence: Stmt | null;
  readonly writeFence: Stmt | null;
  /** Committed fencing row (write role). */
  state: AppliedState | null;
  inBatch: boolean;
}

let conn: Conn | null = null;

/** The fencing row: the last entry whose effects are in the database (see sql-engine.ts). */
const FENCE_DDL = `CREATE TABLE IF NOT EXISTS _replisql_state(
  id INTEGER PRIMARY KEY CHECK(id = 1),
  applied_index INTEGER NOT NULL,
  term INTEGER NOT NULL,
  chain_hash TEXT NOT NULL)`;
const FENCE_GENESIS = 'INSERT OR IGNORE INTO _replisql_state(id, applied_index, term, chain_hash) VALUES (1, 0, 0, ?)';
const FENCE_READ = 'SELECT applied_index, term, chain_hash FROM _replisql_state WHERE id = 1';
const FENCE_WRITE = 'UPDATE _replisql_state SET applied_index = ?, term = ?, chain_hash = ? WHERE id = 1';

function openConn(args: OpenArgs): Conn {
  if (args.role === 'write') {
    // A crash during installSnapshot may have left its copy behind.
    fs.rmSync(`${args.path}.installing`, { force: true });
    const db = new Database(args.path, { timeout: args.busyTimeoutMs });
    try {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (String(mode).toLowerCase() !== 'wal') throw new Error(`could not switch ${args.path} to WAL (journal_mode=${String(mode)})`);
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.defaultSafeIntegers(false);
      db.exec(FENCE_DDL);
      db.prepare(FENCE_GENESIS).run(GENESIS_CHAIN_HASH);
      const c = makeConn(db, args);
      c.state = fenceOf(c.readFence!);
      return c;
    } catch (e) {
      db.close();
      throw e;
    }
  }
  const db = new Database(args.path, { readonly: true, fileMustExist: true, timeout: args.busyTimeoutMs });
  db.defaultSafeIntegers(false);
  return makeConn(db, args);
}

function makeConn(db: Db, args: OpenArgs): Conn {
  const write = args.role === 'write';
  return {
    db,
    args,
    cache: new Map(),
    begin: db.prepare('BEGIN'),
    commit: db.prepare('COMMIT'),
    totalChanges: db.prepare('SELECT total_changes()').pluck(),
    changes: db.prepare('SELECT changes()').pluck(),
    lastRowid: db.prepare('SELECT last_insert_rowid()').pluck().safeIntegers(true),
    readFence: write ? db.prepare(FENCE_READ) : null,
    writeFence: write ? db.prepare(FENCE_WRITE) : null,
    state: null,
    inBatch: false,
  };
}

function fenceOf(read: Stmt): AppliedState {
  const row = read.get() as { applied_index: number; term: number; chain_hash: string } | undefined;
  if (row === undefined) throw misuse(EngineCode.BAD_SNAPSHOT, 'the _replisql_state row is missing');
  return { appliedIndex: row.applied_index, term: row.term, chainHash: row.chain_hash };
}

function closeConn(c: Conn): void {
  if (!c.db.open) return;
  if (c.db.inTransaction) c.db.exec('ROLLBACK');
  c.inBatch = false;
  if (c.args.role === 'write') {
    try {
      c.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // a reader may hold the WAL; closing still checkpoints as far as it can
    }
  }
  c.db.close();
}

function need(role: 'read' | 'write'): Conn {
  if (conn === null) throw misuse(EngineCode.NOT_OPEN, 'the connection is not open');
  if (conn.args.role !== role) throw misuse(EngineCode.INTERNAL, `this is a ${conn.args.role} worker, the request needs a ${role} worker`);
  return conn;
}

function prepare(c: Conn, sql: string): Stmt {
  const hit = c.cache.get(sql);
  if (hit !== undefined) {
    c.cache.delete(sql);
    c.cache.set(sql, hit);
    return hit;
  }
  const s = c.db.prepare(sql) as Stmt;
  // Integers come back exact: as numbers up to 2^53, as decimal strings beyond (valueOut); for
  // writers this only affects lastInsertRowid.
  if (s.reader) s.raw(true).safeIntegers(true);
  else s.safeIntegers(true);
  c.cache.set(sql, s);
  if (c.cache.size > c.args.statementCacheSize) {
    const oldest = c.cache.keys().next().value;
    if (oldest !== undefined) c.cache.delete(oldest);
  }
  return s;
}

function insertId(kw: string, changes: number, before: bigint | null, after: number | bigint): number | string | null {
  if (changes === 0) return null;
  if (kw === 'INSERT' || kw === 'REPLACE') return rowidOut(after);
  // WITH ... INSERT: report the rowid only if this statement moved last_insert_rowid().
  if (kw === 'WITH' && before !== null && BigInt(after) !== before) return rowidOut(after);
  return null;
}

function execOne(c: Conn, st: Statement, mode: 'read' | 'write'): StatementResult {
  if (st === null || typeof st !== 'object' || typeof st.sql !== 'string') {
    throw statementFailure(EngineCode.INVALID_STATEMENT, 'a statement must be { sql: string, params?: [...] }');
  }
  const kw = checkAllowed(st.sql, mode);
  const params = bindParams(st.params);
  const stmt = prepare(c, st.sql);
  // PRAGMA queries (journal_mode, table_info, ...) may report readonly=false; assignments were refused
  // above and the read connection is opened read-only anyway.
  if (mode === 'read' && !stmt.readonly && kw !== 'PRAGMA') {
    throw statementFailure(EngineCode.NOT_READONLY, `${kw || 'this statement'} writes; reads may only run read-only statements`);
  }
  const writes = !stmt.readonly;
  const before = writes && kw === 'WITH' ? (c.lastRowid.get() as bigint) : null;
  if (stmt.reader) {
    const columns = stmt.columns().map((col) => col.name);
    const rows: unknown[][] = [];
    const totalBefore = writes ? (c.totalChanges.get() as number) : 0;
    for (const row of stmt.iterate(...params) as IterableIterator<unknown[]>) {
      if (rows.length >= c.args.maxResultRows) {
        throw statementFailure(EngineCode.RESULT_TOO_LARGE, `the statement returned more than ${c.args.maxResultRows} rows`);
      }
      rows.push(row.map(valueOut));
    }
    if (!writes) return { columns, rows, affectedRows: 0, lastInsertId: null };
    const affectedRows = (c.totalChanges.get() as number) === totalBefore ? 0 : (c.changes.get() as number);
    return { columns, rows, affectedRows, lastInsertId: insertId(kw, affectedRows, before, c.lastRowid.get() as bigint) };
  }
  const info = stmt.run(...params);
  return {
    columns: [],
    rows: [],
    affectedRows: info.changes,
    lastInsertId: writes ? insertId(kw, info.changes, before, info.lastInsertRowid) : null,
  };
}

type RunOutcome = { ok: true; results: StatementResult[] } | { ok: false; failure: WorkerFailure & { statementIndex: number } };

function runAll(c: Conn, statements: readonly Statement[], mode: 'read' | 'write'): RunOutcome {
  if (!Array.isArray(statements)) throw misuse(EngineCode.INVALID_STATEMENT, 'statements must be an array');
  const results: StatementResult[] = [];
  for (let i = 0; i < statements.length; i++) {
    try {
      results.push(execOne(c, statements[i]!, mode));
    } catch (e) {
      return { ok: false, failure: { ...toFailure(e), statementIndex: i } };
    }
    if (mode === 'write' && !c.db.inTransaction) {
      throw new Failure({
        kind: 'environment',
        code: EngineCode.TRANSACTION_ESCAPED,
        message: `statement ${i} ended the engine's transaction; atomicity with the fencing row is lost`,
        fatal: true,
      });
    }
  }
  return { ok: true, results };
}

function rollbackAll(c: Conn): void {
  c.inBatch = false;
  if (c.db.inTransaction) c.db.exec('ROLLBACK');
}

// ------------------------------------------------------------------ read role

/** The declared type's affinity (SQLite's rules, section 3.1 of datatype3.html) as a column type. */
function declaredColumnType(declared: string | null): ColumnType | null {
  if (declared === null || declared === '') return null;
  const t = declared.toUpperCase();
  if (t.includes('INT')) return 'int';
  if (t.includes('CHAR') || t.includes('CLOB') || t.includes('TEXT')) return 'text';
  if (t.includes('BLOB')) return 'blob';
  if (t.includes('REAL') || t.includes('FLOA') || t.includes('DOUB')) return 'float';
  return null;
}

/** Prepares without running: result columns with their declared types. */
function describe(c: Conn, sql: string): StatementDescription {
  if (typeof sql !== 'string') throw statementFailure(EngineCode.INVALID_STATEMENT, 'sql must be a string');
  checkAllowed(sql, 'read');
  const stmt = prepare(c, sql);
  const columns = stmt.reader ? stmt.columns().map((col) => ({ name: col.name, type: declaredColumnType(col.type) })) : [];
  return { columns };
}

function read(c: Conn, statements: readonly Statement[]): StatementResult[] {
  const single = Array.isArray(statements) && statements.length === 1;
  if (!single) c.begin.run(); // several statements: one read transaction, one snapshot
  try {
    const out = runAll(c, statements, 'read');
    if (!out.ok) throw new Failure(out.failure);
    return out.results;
  } finally {
    if (c.db.inTransaction) c.commit.run();
  }
}


/** Opens a snapshot file read-only, optionally checks it, and returns its fencing row. */
function inspectSnapshot(file: string, check: boolean): AppliedState {
  let db: Db;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (e) {
    throw misuse(EngineCode.BAD_SNAPSHOT, `cannot open snapshot ${file}: ${(e as Error).message}`);
  }
  try {
    if (check) {
      const rows = db.pragma('quick_check') as { quick_check: string }[];
      if (rows.length !== 1 || rows[0]!.quick_check !== 'ok') {
        throw misuse(EngineCode.BAD_SNAPSHOT, `snapshot ${file} failed quick_check: ${rows.map((r) => r.quick_check).join('; ')}`);
      }
    }
    const exists = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_replisql_state'").get();
    if (exists === undefined) throw misuse(EngineCode.BAD_SNAPSHOT, `${file} is not a replisql snapshot (no _replisql_state)`);
    return fenceOf(db.prepare(FENCE_READ) as Stmt);
  } finally {
    db.close();
  }
}

function snapshotTo(c: Conn, dest: string): AppliedState {
  if (typeof dest !== 'string' || dest === '') throw misuse(EngineCode.BAD_SNAPSHOT, 'snapshot path must be a non-empty string');
  if (fs.existsSync(dest)) throw misuse(EngineCode.BAD_SNAPSHOT, `snapshot target ${dest} already exists`);
  c.db.prepare('VACUUM INTO ?').run(dest);
  fsyncPath(dest);
  fsyncPath(path.dirname(path.resolve(dest)));
  return inspectSnapshot(dest, false);
}

const quoteId = (name: string): string => `"${name.replaceAll('"', '""')}"`;

function literal(v: unknown): string {
  if (v === null) return 'NULL';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    const s = String(v);
    return /[.eEn]/.test(s) ? s : `${s}.0`; // REAL stays distinguishable from INTEGER
  }
  if (typeof v === 'string') return JSON.stringify(v);
  if (v instanceof Uint8Array) return `X'${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}'`;
  return JSON.stringify(String(v));
}

const NOT_OURS = "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_replisql\\_%' ESCAPE '\\'";

function dump(c: Conn): string {
  const db = c.db;
  const lines: string[] = [];
  c.begin.run();
  try {
    const objects = db
      .prepare(`SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE ${NOT_OURS} ORDER BY type, name`)
      .all() as { type: string; name: string; tbl_name: string; sql: string | null }[];
    for (const o of objects) lines.push(`${o.type} ${quoteId(o.name)} on ${quoteId(o.tbl_name)}: ${o.sql ?? ''}`);
    const tables = db
      .prepare(
        `SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main' AND type IN ('table', 'virtual')
           AND (${NOT_OURS} OR name = 'sqlite_sequence') ORDER BY name`,
      )
      .all() as { name: string; type: string; wr: number }[];
    for (const t of tables) {
      const cols = db.prepare('SELECT name, pk FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk').all(t.name) as { name: string }[];
      const order = cols.map((col) => quoteId(col.name));
      if (t.wr === 0) order.push('rowid');
      const sql = `SELECT * FROM ${quoteId(t.name)}${order.length > 0 ? ` ORDER BY ${order.join(', ')}` : ''}`;
      let stmt: Stmt;
      try {
        stmt = db.prepare(sql) as Stmt;
      } catch {
        // a virtual table without rowid: its own order
        stmt = db.prepare(`SELECT * FROM ${quoteId(t.name)}`) as Stmt;
      }
      stmt.raw(true).safeIntegers(true);
      lines.push(`rows ${quoteId(t.name)}:`);
      for (const row of stmt.iterate() as IterableIterator<unknown[]>) lines.push(`  (${row.map(literal).join(', ')})`);
    }
  } finally {
    if (db.inTransaction) c.commit.run();
  }
  return `${lines.join('\n')}\n`;
}

// ------------------------------------------------------------------ write role

function writeFence(c: Conn, s: AppliedState): void {
  const info = c.writeFence!.run(s.appliedIndex, s.term, s.chainHash);
  if (info.changes !== 1) throw new Failure({ kind: 'environment', code: EngineCode.INTERNAL, message: 'fencing row missing', fatal: true });
}

function applyEntry(c: Conn, e: EntryToApply): { result: ApplyResult; state: AppliedState } {
  validateEntry(e, misuse);
  if (c.inBatch) throw misuse(EngineCode.BATCH_OPEN, 'applyEntry while a batch is open');
  const cur = c.state!;
  if (placeEntry(cur, e, misuse) === 'applied') return { result: { skipped: true }, state: cur };
  const next: AppliedState = { appliedIndex: e.index, term: e.term, chainHash: e.chainHash };
  let result: ApplyResult;
  c.db.exec('BEGIN IMMEDIATE');
  try {
    c.db.exec('SAVEPOINT replisql_entry');
    const out = runAll(c, e.statements, 'write');
    if (out.ok) {
      c.db.exec('RELEASE replisql_entry');
      result = { skipped: false, ok: true, results: out.results };
    } else {
      const f = out.failure;
      if (f.kind !== 'statement') throw new Failure(f); // not deterministic: apply nothing, advance nothing
      if (c.db.inTransaction) {
        c.db.exec('ROLLBACK TO replisql_entry');
        c.db.exec('RELEASE replisql_entry');
      } else {
        c.db.exec('BEGIN IMMEDIATE'); // the statement rolled back everything itself (ON CONFLICT ROLLBACK)
      }
      result = { skipped: false, ok: false, error: { code: f.code, message: f.message, statementIndex: f.statementIndex } };
    }
    writeFence(c, next);
    c.db.exec('COMMIT');
  } catch (err) {
    if (c.db.inTransaction) c.db.exec('ROLLBACK');
    throw err;
  }
  c.state = next;
  return { result, state: next };
}

/**
 * Consecutive entries in one transaction, each in its own savepoint, the fencing row written once.
 * Entries already applied are skipped; if a statement rolls back the whole transaction by itself
 * (ON CONFLICT ROLLBACK, RAISE(ROLLBACK)), nothing of the batch is kept and the entries are applied
 * one by one instead, which gives that entry its single-entry semantics.
 */
function applyEntries(c: Conn, entries: readonly EntryToApply[]): { results: ApplyResult[]; state: AppliedState } {
  if (!Array.isArray(entries)) throw misuse(EngineCode.INVALID_STATEMENT, 'entries must be an array');
  entries.forEach((e) => validateEntry(e, misuse));
  if (c.inBatch) throw misuse(EngineCode.BATCH_OPEN, 'applyEntries while a batch is open');
  const start = c.state!;
  const results: ApplyResult[] = [];
  const todo: EntryToApply[] = [];
  for (const e of entries) {
    if (todo.length === 0 && e.index <= start.appliedIndex) {
      results.push(applyEntry(c, e).result); // skipped, or a chain-hash mismatch error
      continue;
    }
    todo.push(e);
  }
  if (todo.length <= 1) {
    for (const e of todo) results.push(applyEntry(c, e).result);
    return { results, state: c.state! };
  }
  let expected = start.appliedIndex + 1;
  let term = start.term;
  for (const e of todo) {
    if (e.index !== expected) throw misuse(EngineCode.LOG_GAP, `entry ${e.index} does not follow index ${expected - 1}`);
    if (e.term < term) throw misuse(EngineCode.STALE_FENCE, `entry ${e.index} has term ${e.term}, lower than ${term}`);
    expected++;
    term = e.term;
  }
  const batchResults: ApplyResult[] = [];
  let escaped = false;
  c.db.exec('BEGIN IMMEDIATE');
  try {
    for (const e of todo) {
      c.db.exec('SAVEPOINT replisql_entry');
      const out = runAll(c, e.statements, 'write');
      if (out.ok) {
        c.db.exec('RELEASE replisql_entry');
        batchResults.push({ skipped: false, ok: true, results: out.results });
        continue;
      }
      const f = out.failure;
      if (f.kind !== 'statement') throw new Failure(f);
      if (!c.db.inTransaction) {
        escaped = true;
        break;
      }
      c.db.exec('ROLLBACK TO replisql_entry');
      c.db.exec('RELEASE replisql_entry');
      batchResults.push({ skipped: false, ok: false, error: { code: f.code, message: f.message, statementIndex: f.statementIndex } });
    }
    if (!escaped) {
      const last = todo[todo.length - 1]!;
      writeFence(c, { appliedIndex: last.index, term: last.term, chainHash: last.chainHash });
      c.db.exec('COMMIT');
    }
  } catch (err) {
    if (c.db.inTransaction) c.db.exec('ROLLBACK');
    throw err;
  }
  if (escaped) {
    // Everything of this batch was rolled back with it: apply the entries one at a time.
    for (const e of todo) results.push(applyEntry(c, e).result);
    return { results, state: c.state! };
  }
  const last = todo[todo.length - 1]!;
  c.state = { appliedIndex: last.index, term: last.term, chainHash: last.chainHash };
  return { results: [...results, ...batchResults], state: c.state };
}

function beginBatch(c: Conn): null {
  if (c.inBatch) throw misuse(EngineCode.BATCH_OPEN, 'a batch is already open');
  c.db.exec('BEGIN IMMEDIATE');
  c.inBatch = true;
  return null;
}

function execInBatch(c: Conn, statements: readonly Statement[]): BatchExecResult {
  if (!c.inBatch) throw misuse(EngineCode.NO_BATCH, 'execInBatch without an open batch');
  c.db.exec('SAVEPOINT replisql_cmd');
  let out: RunOutcome;
  try {
    out = runAll(c, statements, 'write');
  } catch (err) {
    rollbackAll(c);
    throw err;
  }
  if (out.ok) {
    c.db.exec('RELEASE replisql_cmd');
    return out;
  }
  const f = out.failure;
  if (f.kind !== 'statement') {
    rollbackAll(c);
    throw new Failure(f);
  }
  const error = { code: f.code, message: f.message, statementIndex: f.statementIndex };
  if (!c.db.inTransaction) {
    c.inBatch = false;
    return { ok: false, error, batchAborted: true };
  }
  c.db.exec('ROLLBACK TO replisql_cmd');
  c.db.exec('RELEASE replisql_cmd');
  return { ok: false, error, batchAborted: false };
}

function commitBatch(c: Conn, fence: AppliedState): AppliedState {
  if (!c.inBatch) throw misuse(EngineCode.NO_BATCH, 'commitBatch without an open batch');
  const cur = c.state!;
  const valid =
    fence !== null &&
    typeof fence === 'object' &&
    Number.isSafeInteger(fence.appliedIndex) &&
    Number.isSafeInteger(fence.term) &&
    typeof fence.chainHash === 'string';
  if (!valid || fence.appliedIndex <= cur.appliedIndex || fence.term < cur.term) {
    rollbackAll(c);
    throw misuse(
      EngineCode.STALE_FENCE,
      `fence ${JSON.stringify(fence)} is not ahead of the applied state ${JSON.stringify(cur)}; the batch was rolled back`,
    );
  }
  const next: AppliedState = { appliedIndex: fence.appliedIndex, term: fence.term, chainHash: fence.chainHash };
  try {
    writeFence(c, next);
    c.db.exec('COMMIT');
  } catch (err) {
    rollbackAll(c);
    throw err;
  }
  c.inBatch = false;
  c.state = next;
  return next;
}

function installSnapshot(c: Conn, src: string): AppliedState {
  if (c.inBatch) throw misuse(EngineCode.BATCH_OPEN, 'installSnapshot while a batch is open');
  if (typeof src !== 'string' || src === '') throw misuse(EngineCode.BAD_SNAPSHOT, 'snapshot path must be a non-empty string');
  const incoming = inspectSnapshot(src, true);
  const cur = c.state!;
  if (incoming.appliedIndex < cur.appliedIndex) {
    throw misuse(EngineCode.BAD_SNAPSHOT, `snapshot at index ${incoming.appliedIndex} is older than the applied index ${cur.appliedIndex}`);
  }
  const dbPath = c.args.path;
  const tmp = `${dbPath}.installing`;
  fs.rmSync(tmp, { force: true });
  fs.copyFileSync(src, tmp);
  fsyncPath(tmp);
  // Close the only connection (read workers closed theirs): SQLite checkpoints and deletes the WAL, so
  // no old WAL frame can ever be replayed onto the new file.
  closeConn(c);
  conn = null;
  const wal = `${dbPath}-wal`;
  if (fs.existsSync(wal) && fs.statSync(wal).size > 0) {
    conn = openConn(c.args);
    fs.rmSync(tmp, { force: true });
    throw new Failure({ kind: 'environment', code: EngineCode.INTERNAL, message: `${wal} survived close (is another process using ${dbPath}?)` });
  }
  fs.rmSync(wal, { force: true });
  fs.rmSync(`${dbPath}-shm`, { force: true });
  fs.renameSync(tmp, dbPath);
  fsyncPath(path.dirname(path.resolve(dbPath)));
  conn = openConn(c.args);
  return conn.state!;
}

// ------------------------------------------------------------------ dispatch

function handle(req: WorkerRequest): unknown {
  switch (req.op) {
    case 'open':
      if (conn !== null) throw misuse(EngineCode.INTERNAL, 'the connection is already open');
      conn = openConn(req.args);
      return conn.state;
    case 'close':
      if (conn !== null) {
        const c = conn;
        conn = null;
        closeConn(c);
      }
      return null;
    case 'read':
      return read(need('read'), req.args.statements);
    case 'describe':
      return describe(need('read'), req.args.sql);
    case 'dump':
      return dump(need('read'));
    case 'snapshotTo':
      return snapshotTo(need('read'), req.args.path);
    case 'applyEntry':
      return applyEntry(need('write'), req.args.entry);
    case 'applyEntries':
      return applyEntries(need('write'), req.args.entries);
    case 'beginBatch':
      return beginBatch(need('write'));
    case 'execInBatch':
      return execInBatch(need('write'), req.args.statements);
    case 'commitBatch':
      return commitBatch(need('write'), req.args.fence);
    case 'rollbackBatch': {
      const c = need('write');
      rollbackAll(c);
      return null;
    }
    case 'installSnapshot':
      return installSnapshot(need('write'), req.args.path);
    case 'crash':
      process.exit(70);
    default: {
      const op: never = req;
      throw misuse(EngineCode.INTERNAL, `unknown request ${JSON.stringify(op)}`);
    }
  }
}

const port = parentPort;
if (port === null) throw new Error('sqlite-worker.ts must run in a worker thread');
port.on('message', (req: WorkerRequest) => {
  let res: WorkerResponse;
  try {
    res = { id: req.id, ok: true, value: handle(req) };
  } catch (e) {
    res = { id: req.id, ok: false, error: toFailure(e) };
  }
  try {
    port.postMessage(res);
  } catch (e) {
    port.postMessage({ id: req.id, ok: false, error: { kind: 'environment', code: EngineCode.INTERNAL, message: `cannot send the result: ${(e as Error).message}` } });
  }
});
