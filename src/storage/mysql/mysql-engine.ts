// SqlEngine on MySQL/MariaDB (mysql2): one write connection, a pool of read connections.
//   - The write connection runs, one request at a time in arrival order, the coordinator's speculative
//     batch (one open transaction, a SAVEPOINT per command), follower applies and snapshot installs.
//     The fencing row _replisql_state is written in the same InnoDB transaction as the entry's effects.
//   - Every write statement runs after one SET that pins what would differ between replicas, the way
//     MySQL's statement-based binlog does: SET TIMESTAMP, INSERT_ID, LAST_INSERT_ID, rand seeds. The
//     coordinator records the values in each statement's `context`; followers replay them.
//   - Schema changes (DDL) commit implicitly: they never run speculatively, and a follower applies them
//     one statement at a time behind a "pending" marker in the fencing row, so a crash between a DDL
//     and the fencing row is recognised and resumed.
//   - Reads run on pooled connections that are read-only for the session, all statements of one read()
//     in one consistent snapshot; they never see the open batch.
//   - A lost connection makes the engine unhealthy: every call rejects with UNHEALTHY until a
//     background probe reconnects (or close()+open(), which is required when a batch was lost).
// Why, and what the server must provide: docs/mysql.md.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { fsyncPath } from '../fsync-path.js';
import path from 'node:path';
import readline from 'node:readline';
import mysql from 'mysql2';
import type { Connection, ConnectionOptions, FieldPacket, Pool, PoolConnection, PoolOptions, QueryError } from 'mysql2';
import { GENESIS_CHAIN_HASH } from '../../core/types.js';
import { ConfigError, ErrorCode } from '../../errors.js';
import type { MysqlLexOptions } from '../../sql/index.js';
import {
  analyzeStatement,
  classifyMysqlError,
  ContextClock,
  contextSetSql,
  DDL_ALREADY_DONE_ERRNOS,
  errorCodeOf,
  errorMessageOf,
  idForContext,
  MysqlEngineCode,
  quoteIdent,
  quoteString,
  randomSeed,
  StatementRefusal,
  unpinnableInsert,
  validateContext,
  type AnalyzedStatement,
  type MysqlErrorLike,
} from './mysql-context.js';
import {
  EngineCode,
  SqlEngineError,
  type AppliedState,
  type ApplyResult,
  type BatchExecResult,
  type EntryToApply,
  type SqlEngine,
  type Statement,
  type StatementContext,
  type StatementError,
  type StatementResult,
  type StatementDescription,
  type ColumnType,
} from '../sql-engine.js';

export { MysqlEngineCode } from './mysql-context.js';

export interface MysqlEngineOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 3306. */
  readonly port?: number;
  /** Unix socket instead of host/port. */
  readonly socketPath?: string;
  readonly user: string;
  readonly password?: string;
  /** The database holding the replicated tables and replisql's fencing row. */
  readonly database: string;
  /** CREATE DATABASE IF NOT EXISTS (utf8mb4) on open. Needs the CREATE privilege on the server. Default false. */
  readonly createDatabase?: boolean;
  /** Read connections in the pool. Default 4, at most 64. */
  readonly readConnections?: number;
  /** Default 5000. */
  readonly connectTimeoutMs?: number;
  /** A read statement running longer is stopped by the server (max_statement_time / max_execution_time). 0 = no limit. Default 60000. */
  readonly readTimeoutMs?: number;
  /**
   * Bound on one write statement (not schema changes) and on commits, enforced by the client: when it
   * expires the connection is dropped and the engine is unhealthy until it reconnects. 0 = none. Default 60000.
   */
  readonly writeTimeoutMs?: number;
  /** Bound on requests waiting for the write connection; more are rejected with OVERLOADED. Default 10000. */
  readonly maxQueuedRequests?: number;
  /** Bound on the rows one statement may return. Default 1000000. */
  readonly maxResultRows?: number;
  /** How often a lost database is probed. Default 1000. */
  readonly reconnectIntervalMs?: number;
  /**
   * sql_mode pinned on every connection (it must be the same on every replica). Default
   * 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION' (valid on MariaDB and MySQL 8).
   */
  readonly sqlMode?: string;
  /** The coordinator's clock for SET TIMESTAMP, in milliseconds (fractions are microseconds). Default: the system clock. */
  readonly nowMs?: () => number;
  /** Fault injection for tests (crash windows). A hook that throws fails the operation as an environment failure would. */
  readonly faults?: MysqlFaultHooks;
}

export interface MysqlFaultHooks {
  /** After the "pending" marker of a schema change is committed, before the statement runs. */
  beforeDdl?(entryIndex: number, statementIndex: number): void | Promise<void>;
  /** After a schema change ran (it is committed), before the fencing row records it. */
  afterDdl?(entryIndex: number, statementIndex: number): void | Promise<void>;
  /** installSnapshot: after the atomic swap of the tables, before views/triggers/foreign keys are restored. */
  afterSwap?(): void | Promise<void>;
}

/** The fencing row with the markers of an unfinished schema-change entry or snapshot install. */
interface FenceRow extends AppliedState {
  /** A schema-change entry partly applied: its index, term, chain hash, and how many of its statements are done. */
  readonly pending: { readonly index: number; readonly term: number; readonly chainHash: string; readonly next: number; readonly ddlStarted: boolean } | null;
  readonly installPending: boolean;
}

type QueryOutcome =
  | { readonly kind: 'ok'; readonly affectedRows: number; readonly insertId: unknown; readonly serverStatus: number }
  | { readonly kind: 'rows'; readonly columns: string[]; readonly rows: unknown[][]; readonly fields: FieldPacket[]; readonly overflow: boolean };

interface QueryOpts {
  readonly timeoutMs?: number;
  readonly maxRows?: number;
  readonly raw?: boolean;
}

const SERVER_STATUS_IN_TRANS = 1;
const DEFAULT_SQL_MODE = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';
const STATE_TABLE = '_replisql_state';
const SNAPSHOT_FORMAT = 'replisql-mysql-snapshot';
/** A snapshot's INSERT statements stay below this many bytes (max_allowed_packet is 16 MiB by default on MariaDB, 64 MiB on MySQL 8). */
const SNAPSHOT_CHUNK_BYTES = 512 * 1024;
const LEFTOVER_RE = /^_replisql_(n[0-9]+|nstate|o[0-9]+|ostate|v[0-9]+|install)$/;

const FENCE_DDL = `CREATE TABLE IF NOT EXISTS ${STATE_TABLE} (
  id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
  applied_index BIGINT UNSIGNED NOT NULL,
  term BIGINT UNSIGNED NOT NULL,
  chain_hash VARCHAR(256) NOT NULL,
  pending_index BIGINT UNSIGNED NULL,
  pending_term BIGINT UNSIGNED NULL,
  pending_hash VARCHAR(256) NULL,
  pending_next INT UNSIGNED NULL,
  pending_ddl TINYINT NOT NULL DEFAULT 0,
  install_pending TINYINT NOT NULL DEFAULT 0,
  CHECK (id = 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
const FENCE_COLUMNS = 'applied_index, term, chain_hash, pending_index, pending_term, pending_hash, pending_next, pending_ddl, install_pending';

// Column type codes of the MySQL protocol.
const NUMERIC_TYPES = new Set([0, 1, 2, 3, 4, 5, 8, 9, 13, 246]);
const TEMPORAL_TYPES = new Set([7, 10, 11, 12, 14, 17, 18, 19]);
const BIT_TYPE = 16;
const JSON_TYPE = 245;
const BINARY_CHARSET = 63;

function positiveInt(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  const x = v ?? dflt;
  if (!Number.isSafeInteger(x) || x < min || x > max) throw new ConfigError(`mysql engine: ${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  return x;
}

function lexOptionsFor(sqlMode: string): MysqlLexOptions {
  const modes = new Set(sqlMode.toUpperCase().split(',').map((m) => m.trim()));
  return { noBackslashEscapes: modes.has('NO_BACKSLASH_ESCAPES'), ansiQuotes: modes.has('ANSI_QUOTES') || modes.has('ANSI') };
}

/** A value as the port reports it: Buffer → { $blob }, everything else as mysql2 cast it. */
function valueOut(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return { $blob: v.toString('base64') };
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  return v;
}

/** Errors after which MySQL has rolled back the whole transaction, not just the statement. */
const TRANSACTION_ROLLBACK_ERRNOS: ReadonlySet<number> = new Set([1213, 1205]);

/** MySQL column type numbers (include/mysql_com.h, enum_field_types) to the port's ColumnType. */
const MYSQL_COLUMN_TYPES: ReadonlyMap<number, ColumnType> = new Map<number, ColumnType>([
  [0, 'decimal'], [246, 'decimal'],
  [1, 'int'], [2, 'int'], [3, 'int'], [8, 'int'], [9, 'int'], [16, 'int'],
  [4, 'float32'], [5, 'float'],
  [6, 'null'],
  [7, 'timestamp'], [10, 'date'], [14, 'date'], [11, 'time'], [12, 'datetime'], [13, 'year'],
  [249, 'blob'], [250, 'blob'], [251, 'blob'], [252, 'blob'], [255, 'blob'],
]);
/** The type of each result column, from mysql2's field packets. */
function columnTypesOf(fields: readonly FieldPacket[]): ColumnType[] {
  return fields.map((f) => {
    const t = MYSQL_COLUMN_TYPES.get(f.columnType ?? 253);
    if (t === 'blob' || t === undefined) return f.characterSet === BINARY_CHARSET ? 'blob' : 'text';
    // BIT comes back as bytes.
    if (f.columnType === 16) return 'blob';
    return t;
  });
}

function emptyResult(): StatementResult {
  return { columns: [], rows: [], affectedRows: 0, lastInsertId: null };
}

function stripDefiner(sql: string): string {
  return sql.replace(/\s+DEFINER\s*=\s*(`(?:[^`]|``)*`|'(?:[^']|'')*'|[A-Za-z0-9_$]+)(@(`(?:[^`]|``)*`|'(?:[^']|'')*'|[A-Za-z0-9_.%$-]+))?/i, '');
}


interface Failure {
  readonly reason: string;
  readonly engineCode: string;
  /** The engine cannot recover by itself (a batch or a snapshot install was lost): close() + open(). */
  reopen: boolean;
}

interface SnapshotTable {
  readonly name: string;
  readonly create: string;
  readonly columns: readonly string[];
}

interface SnapshotPlan {
  readonly fence: AppliedState;
  readonly tables: SnapshotTable[];
  readonly views: { readonly name: string; readonly create: string }[];
  readonly triggers: { readonly name: string; readonly create: string }[];
}

export class MysqlEngine implements SqlEngine {
  private readonly opts: MysqlEngineOptions;
  private readonly readConnections: number;
  private readonly connectTimeoutMs: number;
  private readonly readTimeoutMs: number;
  private readonly writeTimeoutMs: number;
  private readonly maxQueuedRequests: number;
  private readonly maxResultRows: number;
  private readonly reconnectIntervalMs: number;
  private readonly sqlMode: string;
  private readonly lex: MysqlLexOptions;
  private readonly clock: ContextClock;

  private status: 'closed' | 'opening' | 'open' | 'closing' = 'closed';
  private failure: Failure | null = null;
  private writer: Connection | null = null;
  private readPool: Pool | null = null;
  private readonly initialized = new WeakSet<object>();
  private flavor: { mariadb: boolean; version: string } | null = null;
  /** Committed fencing row, as last read or written by the write connection. */
  private state: FenceRow | null = null;
  private batchOpen = false;
  private writeChain: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private readGate: Promise<void> | null = null;
  private probeTimer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;

  constructor(opts: MysqlEngineOptions) {
    if (opts === null || typeof opts !== 'object') throw new ConfigError('mysql engine: options are required');
    if (typeof opts.user !== 'string' || opts.user === '') throw new ConfigError('mysql engine: user must be a non-empty string');
    if (typeof opts.database !== 'string' || !/^[A-Za-z0-9_$]{1,64}$/.test(opts.database)) {
      throw new ConfigError('mysql engine: database must be 1-64 characters of A-Z, a-z, 0-9, _ and $');
    }
    if (opts.socketPath === undefined && opts.host !== undefined && (typeof opts.host !== 'string' || opts.host === '')) {
      throw new ConfigError('mysql engine: host must be a non-empty string');
    }
    this.opts = opts;
    positiveInt('port', opts.port, 3306, 1, 65535);
    this.readConnections = positiveInt('readConnections', opts.readConnections, 4, 1, 64);
    this.connectTimeoutMs = positiveInt('connectTimeoutMs', opts.connectTimeoutMs, 5000, 100, 600_000);
    this.readTimeoutMs = positiveInt('readTimeoutMs', opts.readTimeoutMs, 60_000, 0, 86_400_000);
    this.writeTimeoutMs = positiveInt('writeTimeoutMs', opts.writeTimeoutMs, 60_000, 0, 86_400_000);
    this.maxQueuedRequests = positiveInt('maxQueuedRequests', opts.maxQueuedRequests, 10_000, 1, 1_000_000);
    this.maxResultRows = positiveInt('maxResultRows', opts.maxResultRows, 1_000_000, 1, 100_000_000);
    this.reconnectIntervalMs = positiveInt('reconnectIntervalMs', opts.reconnectIntervalMs, 1000, 10, 600_000);
    this.sqlMode = opts.sqlMode ?? DEFAULT_SQL_MODE;
    if (!/^[A-Za-z_,]*$/.test(this.sqlMode)) throw new ConfigError('mysql engine: sqlMode must be a comma-separated list of mode names');
    this.lex = lexOptionsFor(this.sqlMode);
    this.clock = new ContextClock(opts.nowMs);
  }

  // ================================================================ lifecycle

  async open(): Promise<void> {
    if (this.status !== 'closed') throw this.misuse(`open() while ${this.status}`);
    this.status = 'opening';
    this.failure = null;
    this.batchOpen = false;
    let w: Connection | null = null;
    try {
      if (this.opts.createDatabase === true) {
        const c = await this.connect(false);
        try {
          await query(c, `CREATE DATABASE IF NOT EXISTS ${quoteIdent(this.opts.database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
        } finally {
          destroyConnection(c);
        }
      }
      w = await this.connect(true);
      await query(w, FENCE_DDL);
      await query(
        w,
        `INSERT IGNORE INTO ${STATE_TABLE} (id, applied_index, term, chain_hash) VALUES (1, 0, 0, ${quoteString(GENESIS_CHAIN_HASH)})`,
      );
      let fence = await readFence(w);
      if (fence.installPending) {
        await this.finishInstall(w);
        fence = await readFence(w);
      }
      await this.dropLeftovers(w);
      this.readPool = this.createReadPool();
      this.writer = w;
      this.watchWriter(w);
      this.state = fence;
      this.status = 'open';
    } catch (e) {
      if (w) destroyConnection(w);
      await this.endPool();
      this.status = 'closed';
      throw this.openError(e);
    }
  }

  close(): Promise<void> {
    if (this.status === 'closed') return Promise.resolve();
    if (this.closing !== null) return this.closing;
    this.status = 'closing';
    this.closing = this.doClose().finally(() => {
      this.closing = null;
      this.status = 'closed';
    });
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.stopProbe();
    // Requests already queued for the write connection finish (or fail) first.
    await Promise.race([this.writeChain.catch(() => undefined), delay(5000)]);
    const w = this.writer;
    this.writer = null;
    if (w !== null) {
      if (this.batchOpen) await query(w, 'ROLLBACK').catch(() => undefined);
      await endConnection(w);
    }
    this.batchOpen = false;
    await this.endPool();
    this.state = null;
  }

  isHealthy(): boolean {
    return this.status === 'open' && this.failure === null;
  }

  /** Why the engine is unhealthy (null when healthy). */
  unhealthyReason(): string | null {
    return this.failure?.reason ?? (this.status === 'open' ? null : `the engine is ${this.status}`);
  }

  /** `host:port/database` (or the socket), for messages. */
  describe(): string {
    const where = this.opts.socketPath ?? `${this.opts.host ?? '127.0.0.1'}:${this.opts.port ?? 3306}`;
    return `mysql ${where}/${this.opts.database}`;
  }

  // ================================================================ reads

  async read(statements: readonly Statement[]): Promise<StatementResult[]> {
    this.ready();
    if (!Array.isArray(statements)) throw this.misuse('statements must be an array', EngineCode.INVALID_STATEMENT);
    const analyzed: AnalyzedStatement[] = [];
    for (const st of statements) {
      try {
        analyzed.push(analyzeStatement(st, 'read', this.lex));
      } catch (e) {
        if (e instanceof StatementRefusal) throw new SqlEngineError(ErrorCode.SQL_ERROR, e.code, e.message);
        throw e;
      }
    }
    if (analyzed.length === 0) return [];
    return this.withReadConnection(async (c) => {
      const results: StatementResult[] = [];
      const many = analyzed.length > 1;
      if (many) await query(c, 'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      try {
        for (const a of analyzed) {
          const out = await runQuery(c, a.text, { timeoutMs: this.clientReadTimeout(), maxRows: this.maxResultRows });
          results.push(this.readResult(out));
        }
      } finally {
        if (many) await query(c, 'COMMIT').catch(() => undefined);
      }
      return results;
    });
  }

  /** A server-side PREPARE on a read connection (closed again at once): MySQL's own column metadata. */
  async describeStatement(sql: string): Promise<StatementDescription> {
    this.ready();
    if (typeof sql !== 'string') throw this.misuse('sql must be a string', EngineCode.INVALID_STATEMENT);
    return this.withReadConnection(
      (c) =>
        new Promise<StatementDescription>((resolve, reject) => {
          c.prepare(sql, (err, stmt) => {
            if (err) {
              reject(err);
              return;
            }
            const fields = (stmt as unknown as { columns?: FieldPacket[] }).columns ?? [];
            const types = columnTypesOf(fields);
            const out: StatementDescription = { columns: fields.map((f, i) => ({ name: f.name, type: types[i] ?? null })) };
            stmt.close();
            c.unprepare(sql);
            resolve(out);
          });
        }),
    );
  }

  async appliedState(): Promise<AppliedState> {
    this.ready();
    const s = this.state!;
    return { appliedIndex: s.appliedIndex, term: s.term, chainHash: s.chainHash };
  }

  /**
   * Text that is equal on two replicas holding the same data: the database's character set, and per
   * table its definition (AUTO_INCREMENT counter left out), row count and CHECKSUM TABLE; views and
   * triggers by definition (DEFINER left out). Read in one consistent snapshot; replisql's tables are
   * left out.
   */
  async dump(): Promise<string> {
    this.ready();
    return this.withReadConnection(async (c) => {
      const lines: string[] = [];
      await query(c, 'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      try {
        const db = await rowsOf(c, 'SELECT @@character_set_database, @@collation_database');
        lines.push(`database charset=${String(db[0]![0])} collation=${String(db[0]![1])}`);
        const objects = await listObjects(c);
        const tables = objects.filter((o) => o.type === 'BASE TABLE');
        const sums = new Map<string, string>();
        if (tables.length > 0) {
          const rows = await rowsOf(c, `CHECKSUM TABLE ${tables.map((t) => quoteIdent(t.name)).join(', ')}`);
          tables.forEach((t, i) => sums.set(t.name, String(rows[i]?.[1] ?? 'NULL')));
        }
        for (const t of tables) {
          const create = await showCreate(c, 'TABLE', t.name);
          const count = await rowsOf(c, `SELECT COUNT(*) FROM ${quoteIdent(t.name)}`);
          lines.push(`table ${quoteIdent(t.name)}`, `  ${create.replace(/ AUTO_INCREMENT=[0-9]+/, '').replaceAll('\n', '\n  ')}`);
          lines.push(`  rows=${String(count[0]![0])} checksum=${sums.get(t.name)}`);
        }
        for (const v of objects.filter((o) => o.type === 'VIEW')) {
          lines.push(`view ${quoteIdent(v.name)}`, `  ${stripDefiner(await showCreate(c, 'VIEW', v.name))}`);
        }
        for (const t of await listTriggers(c)) {
          lines.push(`trigger ${quoteIdent(t.name)} on ${quoteIdent(t.table)}`, `  ${stripDefiner(t.create)}`);
        }
      } finally {
        await query(c, 'COMMIT').catch(() => undefined);
      }
      return `${lines.join('\n')}\n`;
    });
  }

  // ================================================================ follower applies

  applyEntry(e: EntryToApply): Promise<ApplyResult> {
    try {
      validateEntry(e);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.onWriter((w) => this.applyOne(w, e));
  }

  /**
   * Consecutive entries without schema changes in one transaction (the fencing row written once);
   * each entry in a savepoint when it has several statements (InnoDB undoes a single failed
   * statement by itself). Anything else (a schema change, an unfinished entry, a gap, a deadlock
   * rollback) falls back to applying the entries one by one.
   */
  applyEntries(entries: readonly EntryToApply[]): Promise<ApplyResult[]> {
    try {
      if (!Array.isArray(entries)) throw this.misuse('entries must be an array', EngineCode.INVALID_STATEMENT);
      entries.forEach(validateEntry);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.onWriter(async (w) => {
      if (this.batchOpen) throw this.misuse('applyEntries while a batch is open', EngineCode.BATCH_OPEN);
      const results: ApplyResult[] = [];
      let i = 0;
      while (i < entries.length && entries[i]!.index <= this.state!.appliedIndex) results.push(await this.applyOne(w, entries[i++]!));
      const todo = entries.slice(i);
      const batched = todo.length > 1 ? await this.applyBatched(w, todo) : null;
      if (batched !== null) return [...results, ...batched];
      for (const e of todo) results.push(await this.applyOne(w, e));
      return results;
    });
  }

  /** applyEntries' one-transaction path; null (with nothing changed) when the entries do not qualify. */
  private async applyBatched(w: Connection, todo: readonly EntryToApply[]): Promise<ApplyResult[] | null> {
    const cur = this.state!;
    if (cur.pending !== null || cur.installPending) return null;
    const plans: Plan[] = [];
    let expected = cur.appliedIndex + 1;
    let term = cur.term;
    for (const e of todo) {
      if (e.index !== expected || e.term < term) return null;
      const plan = this.plan(e.statements, 'write');
      if (plan.analyzed.some((a) => a.kind === 'ddl') || plan.refusal !== null) return null;
      plans.push(plan);
      expected++;
      term = e.term;
    }
    const results: ApplyResult[] = [];
    try {
      await query(w, 'START TRANSACTION');
      for (let k = 0; k < todo.length; k++) {
        const plan = plans[k]!;
        const savepoint = plan.analyzed.length > 1 || plan.analyzed.some((a) => a.orderSensitive !== null);
        if (savepoint) await query(w, 'SAVEPOINT replisql_entry');
        const out: StatementResult[] = [];
        let failed: StatementError | null = null;
        for (let i = 0; i < plan.analyzed.length; i++) {
          const r = await this.execWrite(w, plan.analyzed[i]!, plan.contexts[i], true);
          if (r.ok) {
            out.push(r.result);
            continue;
          }
          if (r.errno !== undefined && TRANSACTION_ROLLBACK_ERRNOS.has(r.errno)) {
            // The server rolled back the whole transaction: start over entry by entry.
            await query(w, 'ROLLBACK').catch(() => undefined);
            return null;
          }
          failed = { ...r.error, statementIndex: i };
          break;
        }
        if (failed !== null && savepoint) await query(w, 'ROLLBACK TO SAVEPOINT replisql_entry');
        if (savepoint) await query(w, 'RELEASE SAVEPOINT replisql_entry');
        results.push(failed === null ? { skipped: false, ok: true, results: out } : { skipped: false, ok: false, error: failed });
      }
      const last = todo[todo.length - 1]!;
      const next: AppliedState = { appliedIndex: last.index, term: last.term, chainHash: last.chainHash };
      await this.writeFence(w, next);
      await query(w, 'COMMIT', this.writeTimeoutMs);
      this.state = { ...next, pending: null, installPending: false };
    } catch (err) {
      throw await this.afterWriteError(w, err, 'rollback');
    }
    return results;
  }

  /** applyEntry on the writer connection (the caller holds it). */
  private async applyOne(w: Connection, e: EntryToApply): Promise<ApplyResult> {
    {
      if (this.batchOpen) throw this.misuse('applyEntry while a batch is open', EngineCode.BATCH_OPEN);
      const cur = this.state!;
      if (e.index === cur.appliedIndex && e.chainHash !== cur.chainHash) {
        throw this.misuse(`entry ${e.index} has chain hash ${e.chainHash} but the database applied ${cur.chainHash} at that index`, EngineCode.CHAIN_MISMATCH);
      }
      if (e.index <= cur.appliedIndex) return { skipped: true } as const;
      if (e.index !== cur.appliedIndex + 1) throw this.misuse(`entry ${e.index} does not follow the applied index ${cur.appliedIndex}`, EngineCode.LOG_GAP);
      if (e.term < cur.term) throw this.misuse(`entry ${e.index} has term ${e.term}, lower than the applied term ${cur.term}`, EngineCode.STALE_FENCE);
      if (cur.pending !== null && (cur.pending.index !== e.index || cur.pending.chainHash !== e.chainHash || cur.pending.term !== e.term)) {
        throw this.misuse(
          `entry ${cur.pending.index} (chain hash ${cur.pending.chainHash}) is partly applied, but entry ${e.index} with chain hash ${e.chainHash} was given`,
          EngineCode.CHAIN_MISMATCH,
        );
      }
      const plan = this.plan(e.statements, 'write');
      const next: AppliedState = { appliedIndex: e.index, term: e.term, chainHash: e.chainHash };
      const ddl = plan.analyzed.some((a) => a.kind === 'ddl');
      return ddl || cur.pending !== null ? this.applyStepwise(w, e, plan, next) : this.applyAtomically(w, e, plan, next);
    }
  }

  /** An entry without schema changes: its statements and the fencing row in one transaction. */
  private async applyAtomically(w: Connection, e: EntryToApply, plan: Plan, next: AppliedState): Promise<ApplyResult> {
    await query(w, 'START TRANSACTION');
    let failed: StatementError | null = null;
    const results: StatementResult[] = [];
    try {
      for (let i = 0; i < plan.analyzed.length; i++) {
        const out = await this.execWrite(w, plan.analyzed[i]!, plan.contexts[i], true);
        if (out.ok) results.push(out.result);
        else {
          failed = { ...out.error, statementIndex: i };
          break;
        }
      }
      if (failed === null && plan.refusal !== null) failed = plan.refusal;
      if (failed !== null) {
        await query(w, 'ROLLBACK');
        await query(w, 'START TRANSACTION');
      }
      await this.writeFence(w, next);
      await query(w, 'COMMIT', this.writeTimeoutMs);
    } catch (err) {
      throw await this.afterWriteError(w, err, 'rollback');
    }
    this.state = { ...next, pending: null, installPending: false };
    return failed === null ? { skipped: false, ok: true, results } : { skipped: false, ok: false, error: failed };
  }

  /**
   * An entry with schema changes: statement by statement, each DML statement in a transaction with the
   * progress marker, each DDL after a committed "DDL started" marker. Resumes where a crash left it.
   */
  private async applyStepwise(w: Connection, e: EntryToApply, plan: Plan, next: AppliedState): Promise<ApplyResult> {
    const cur = this.state!;
    const start = cur.pending?.next ?? 0;
    let resumedDdl = cur.pending?.ddlStarted === true;
    const results: StatementResult[] = [];
    for (let i = 0; i < start && i < plan.analyzed.length; i++) results.push(emptyResult());
    let failed: StatementError | null = null;
    try {
      for (let i = start; i < plan.analyzed.length; i++) {
        const a = plan.analyzed[i]!;
        const marker = { index: e.index, term: e.term, chainHash: e.chainHash, next: i, ddlStarted: true };
        if (a.kind === 'ddl') {
          if (!(resumedDdl && i === start)) {
            await this.writePending(w, marker);
            resumedDdl = false;
          }
          await this.opts.faults?.beforeDdl?.(e.index, i);
          const out = await this.execWrite(w, a, plan.contexts[i], false);
          if (!out.ok) {
            const errno = out.errno;
            if (resumedDdl && i === start && errno !== undefined && DDL_ALREADY_DONE_ERRNOS.has(errno)) {
              // The crash came after this schema change took effect: it is done.
              results.push(emptyResult());
            } else {
              failed = { ...out.error, statementIndex: i };
              break;
            }
          } else results.push(out.result);
          resumedDdl = false;
          await this.opts.faults?.afterDdl?.(e.index, i);
          if (i + 1 < plan.analyzed.length) await this.writePending(w, { ...marker, next: i + 1, ddlStarted: false });
        } else {
          resumedDdl = false;
          await query(w, 'START TRANSACTION');
          const out = await this.execWrite(w, a, plan.contexts[i], true);
          if (!out.ok) {
            await query(w, 'ROLLBACK');
            failed = { ...out.error, statementIndex: i };
            break;
          }
          results.push(out.result);
          const last = i + 1 === plan.analyzed.length && plan.refusal === null;
          if (last) await this.writeFence(w, next);
          else await this.writePending(w, { ...marker, next: i + 1, ddlStarted: false });
          await query(w, 'COMMIT', this.writeTimeoutMs);
          if (last) {
            this.state = { ...next, pending: null, installPending: false };
            return { skipped: false, ok: true, results };
          }
        }
      }
      if (failed === null && plan.refusal !== null) failed = plan.refusal;
      await this.writeFence(w, next);
    } catch (err) {
      const out = await this.afterWriteError(w, err, 'rollback');
      // The cached marker may be ahead of a transaction that did not commit: read what the database has.
      if (this.failure === null && this.writer === w) this.state = await readFence(w).catch(() => this.state);
      throw out;
    }
    this.state = { ...next, pending: null, installPending: false };
    return failed === null ? { skipped: false, ok: true, results } : { skipped: false, ok: false, error: failed };
  }

  // ================================================================ the coordinator's batch

  beginBatch(): Promise<void> {
    return this.onWriter(async (w) => {
      if (this.batchOpen) throw this.misuse('a batch is already open', EngineCode.BATCH_OPEN);
      const p = this.state!.pending;
      if (p !== null) throw this.misuse(`entry ${p.index} is partly applied (a schema change was interrupted); apply it before starting a batch`, EngineCode.INTERNAL);
      try {
        await query(w, 'START TRANSACTION');
      } catch (err) {
        throw await this.afterWriteError(w, err, 'rollback');
      }
      this.batchOpen = true;
    });
  }

  execInBatch(statements: readonly Statement[]): Promise<BatchExecResult> {
    return this.onWriter(async (w) => {
      if (!this.batchOpen) throw this.misuse('execInBatch without an open batch', EngineCode.NO_BATCH);
      const plan = this.plan(statements, 'write');
      if (plan.refusal !== null) return { ok: false, error: plan.refusal, batchAborted: false };
      const ddlAt = plan.analyzed.findIndex((a) => a.kind === 'ddl');
      if (ddlAt >= 0) {
        // Not executed: MySQL would commit the batch with it. The caller logs `statements` (with their
        // timestamps and seeds) and applies the entry once it is committed (docs/mysql.md).
        const pinned = statements.map((st): Statement => ({ ...bare(st), context: { timestamp: this.clock.next(), randSeed1: randomSeed(), randSeed2: randomSeed() } }));
        return {
          ok: false,
          batchAborted: false,
          statements: pinned,
          error: {
            code: MysqlEngineCode.DDL_NOT_SPECULATIVE,
            message: 'a schema change commits implicitly in MySQL, so it cannot run in the speculative batch: log it unexecuted and apply it when committed',
            statementIndex: ddlAt,
          },
        };
      }
      // InnoDB undoes a failed statement by itself (statement atomicity), so a command of one
      // statement needs no savepoint (two round trips less per write); several statements, or one
      // that may have to be undone after it succeeded (order-sensitive), do.
      const savepoint = plan.analyzed.length > 1 || plan.analyzed.some((a) => a.orderSensitive !== null);
      try {
        if (savepoint) await query(w, 'SAVEPOINT replisql_cmd');
        const results: StatementResult[] = [];
        const pinned: Statement[] = [];
        for (let i = 0; i < plan.analyzed.length; i++) {
          const a = plan.analyzed[i]!;
          const ctx: { -readonly [K in keyof StatementContext]: StatementContext[K] } = {
            timestamp: this.clock.next(),
            randSeed1: randomSeed(),
            randSeed2: randomSeed(),
          };
          if (a.usesLastInsertId) {
            const v = idForContext((await rowsOf(w, 'SELECT LAST_INSERT_ID()'))[0]?.[0]);
            ctx.lastInsertId = v ?? 0;
          }
          const out = await this.execWrite(w, a, ctx, true, true);
          if (!out.ok) {
            if (out.errno !== undefined && TRANSACTION_ROLLBACK_ERRNOS.has(out.errno)) {
              // The server rolled back the whole transaction (deadlock, lock wait timeout with
              // innodb_rollback_on_timeout): the batch is gone.
              await query(w, 'ROLLBACK').catch(() => undefined);
              this.batchOpen = false;
              return { ok: false, error: { ...out.error, statementIndex: i }, batchAborted: true };
            }
            if (savepoint) {
              await query(w, 'ROLLBACK TO SAVEPOINT replisql_cmd');
              await query(w, 'RELEASE SAVEPOINT replisql_cmd');
            }
            return { ok: false, error: { ...out.error, statementIndex: i }, batchAborted: false };
          }
          if (out.insertId !== null) ctx.insertId = out.insertId;
          results.push(out.result);
          pinned.push({ ...bare(statements[i]!), context: ctx });
        }
        if (savepoint) await query(w, 'RELEASE SAVEPOINT replisql_cmd');
        return { ok: true, results, statements: pinned };
      } catch (err) {
        throw await this.afterWriteError(w, err, 'savepoint');
      }
    });
  }

  commitBatch(fence: AppliedState): Promise<void> {
    return this.onWriter(async (w) => {
      if (!this.batchOpen) throw this.misuse('commitBatch without an open batch', EngineCode.NO_BATCH);
      const cur = this.state!;
      const valid =
        fence !== null &&
        typeof fence === 'object' &&
        Number.isSafeInteger(fence.appliedIndex) &&
        Number.isSafeInteger(fence.term) &&
        typeof fence.chainHash === 'string' &&
        fence.chainHash.length <= 256;
      if (!valid || fence.appliedIndex <= cur.appliedIndex || fence.term < cur.term) {
        try {
          await query(w, 'ROLLBACK');
        } catch (err) {
          throw await this.afterWriteError(w, err, 'rollback');
        }
        this.batchOpen = false;
        throw this.misuse(`fence ${JSON.stringify(fence)} is not ahead of the applied state ${JSON.stringify(publicState(cur))}; the batch was rolled back`, EngineCode.STALE_FENCE);
      }
      const next: AppliedState = { appliedIndex: fence.appliedIndex, term: fence.term, chainHash: fence.chainHash };
      try {
        await this.writeFence(w, next);
        await query(w, 'COMMIT', this.writeTimeoutMs);
      } catch (err) {
        throw await this.afterWriteError(w, err, 'rollback');
      }
      this.batchOpen = false;
      this.state = { ...next, pending: null, installPending: false };
    });
  }

  rollbackBatch(): Promise<void> {
    return this.onWriter(async (w) => {
      if (!this.batchOpen) return;
      try {
        await query(w, 'ROLLBACK');
      } catch (err) {
        throw await this.afterWriteError(w, err, 'rollback');
      }
      this.batchOpen = false;
    });
  }

  // ================================================================ snapshots

  /**
   * Writes a logical dump of the committed database to `path` (must not exist): JSON lines with the
   * fencing row, each table's CREATE TABLE and its rows as INSERT values in primary-key order, views,
   * triggers, and a SHA-256 over everything. One consistent snapshot; fsynced.
   */
  async snapshotTo(dest: string): Promise<AppliedState> {
    this.ready();
    if (typeof dest !== 'string' || dest === '') throw this.misuse('snapshot path must be a non-empty string', EngineCode.BAD_SNAPSHOT);
    if (fs.existsSync(dest)) throw this.misuse(`snapshot target ${dest} already exists`, EngineCode.BAD_SNAPSHOT);
    return this.withReadConnection(async (c) => {
      // Start the snapshot while no write request runs, and take a metadata lock on every table, so no
      // schema change can slip between the fencing row and the tables we read.
      let fence!: FenceRow;
      let objects!: { name: string; type: string }[];
      await this.onWriter(async () => {
        await query(c, 'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
        fence = await readFence(c);
        objects = await listObjects(c);
        for (const o of objects) if (o.type === 'BASE TABLE') await query(c, `SELECT 1 FROM ${quoteIdent(o.name)} LIMIT 0`);
      });
      const tmp = `${dest}.partial`;
      const fh = await fsp.open(tmp, 'wx');
      const hash = createHash('sha256');
      let lineCount = 0;
      const write = async (obj: unknown): Promise<void> => {
        const line = `${JSON.stringify(obj)}\n`;
        hash.update(line);
        lineCount++;
        await fh.write(line);
      };
      try {
        if (fence.pending !== null || fence.installPending) {
          throw new SqlEngineError(ErrorCode.SQL_ERROR, EngineCode.INTERNAL, 'a schema change or snapshot install is unfinished; try again once it is applied');
        }
        const db = await rowsOf(c, 'SELECT @@character_set_database, @@collation_database, VERSION()');
        await write({ format: SNAPSHOT_FORMAT, version: 1, fence: publicState(fence), server: String(db[0]![2]), database: { charset: db[0]![0], collation: db[0]![1] } });
        for (const o of objects.filter((x) => x.type === 'BASE TABLE')) {
          const create = await showCreate(c, 'TABLE', o.name);
          const columns = (await rowsOf(c, `SELECT COLUMN_NAME, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${quoteString(o.name)} ORDER BY ORDINAL_POSITION`))
            .filter((r) => !/GENERATED/i.test(String(r[1] ?? '')))
            .map((r) => String(r[0]));
          await write({ t: 'table', name: o.name, create, columns });
          if (columns.length === 0) continue;
          const order = await orderColumns(c, o.name, columns);
          await streamRows(
            c,
            `SELECT ${columns.map(quoteIdent).join(', ')} FROM ${quoteIdent(o.name)} ORDER BY ${order.map(quoteIdent).join(', ')}`,
            async (values) => write({ t: 'rows', values }),
          );
        }
        for (const v of objects.filter((x) => x.type === 'VIEW')) await write({ t: 'view', name: v.name, create: stripDefiner(await showCreate(c, 'VIEW', v.name)) });
        for (const t of await listTriggers(c)) await write({ t: 'trigger', name: t.name, create: stripDefiner(t.create) });
        const digest = hash.digest('hex');
        await fh.write(`${JSON.stringify({ t: 'end', lines: lineCount, sha256: digest })}\n`);
        await fh.sync();
      } catch (err) {
        await fh.close().catch(() => undefined);
        await fsp.rm(tmp, { force: true });
        throw err;
      } finally {
        await query(c, 'COMMIT').catch(() => undefined);
      }
      await fh.close();
      await fsp.rename(tmp, dest);
      fsyncPath(path.dirname(path.resolve(dest)));
      return publicState(fence);
    });
  }

  /**
   * Replaces every replicated table, view and trigger with those of a snapshotTo file. The new tables
   * are loaded under staging names and swapped in, together with a new fencing row, by one atomic
   * RENAME TABLE; what cannot be part of the swap (dropping the old tables, foreign keys, views,
   * triggers) is listed in _replisql_install first and finished on open() if a crash interrupts it.
   */
  async installSnapshot(src: string): Promise<AppliedState> {
    this.ready();
    if (typeof src !== 'string' || src === '') throw this.misuse('snapshot path must be a non-empty string', EngineCode.BAD_SNAPSHOT);
    const plan = await readSnapshotPlan(src);
    if (this.readGate !== null) throw this.misuse('a snapshot install is already running');
    let release!: () => void;
    this.readGate = new Promise<void>((r) => (release = r));
    try {
      return await this.onWriter(async (w) => {
        if (this.batchOpen) throw this.misuse('installSnapshot while a batch is open', EngineCode.BATCH_OPEN);
        const cur = this.state!;
        if (plan.fence.appliedIndex < cur.appliedIndex) {
          throw this.misuse(`snapshot at index ${plan.fence.appliedIndex} is older than the applied index ${cur.appliedIndex}`, EngineCode.BAD_SNAPSHOT);
        }
        try {
          await this.loadSnapshot(w, src, plan);
        } catch (err) {
          if (err instanceof SqlEngineError) throw err;
          const kind = classifyMysqlError(err);
          if (kind === 'connection') throw this.lose(w, `snapshot install failed: ${errorMessageOf(err)}`, EngineCode.UNHEALTHY, true);
          throw this.markFatal(`snapshot install failed: ${errorCodeOf(err)}: ${errorMessageOf(err)}`, EngineCode.INTERNAL);
        }
        this.state = await readFence(w);
        return publicState(this.state);
      });
    } finally {
      this.readGate = null;
      release();
    }
  }

  private async loadSnapshot(w: Connection, src: string, plan: SnapshotPlan): Promise<void> {
    await this.dropLeftovers(w);
    await query(w, 'SET SESSION foreign_key_checks = 0');
    try {
      // 1. Staging tables, outside the live schema's names; foreign keys come after the swap.
      const stageName = new Map<string, string>();
      plan.tables.forEach((t, k) => stageName.set(t.name, `_replisql_n${k}`));
      const fks: string[] = [];
      for (const t of plan.tables) {
        const { create, foreignKeys } = stagingCreate(t, stageName.get(t.name)!);
        await query(w, create);
        for (const fk of foreignKeys) fks.push(`ALTER TABLE ${quoteIdent(t.name)} ADD ${fk}`);
      }
      let current: SnapshotTable | null = null;
      let inTx = false;
      for await (const line of snapshotLines(src)) {
        const o = line as { t?: string; name?: string; values?: string };
        if (o.t === 'table') {
          if (inTx) await query(w, 'COMMIT');
          current = plan.tables.find((t) => t.name === o.name) ?? null;
          await query(w, 'START TRANSACTION');
          inTx = true;
        } else if (o.t === 'rows') {
          if (current === null || typeof o.values !== 'string') throw new SqlEngineError(ErrorCode.INTERNAL, EngineCode.BAD_SNAPSHOT, 'snapshot rows before any table');
          await query(w, `INSERT INTO ${quoteIdent(stageName.get(current.name)!)} (${current.columns.map(quoteIdent).join(', ')}) VALUES ${o.values}`);
        }
      }
      if (inTx) await query(w, 'COMMIT');
      // 2. The new fencing row, marked "install pending", and the list of what remains after the swap.
      await query(w, `CREATE TABLE _replisql_nstate LIKE ${STATE_TABLE}`);
      await query(
        w,
        `INSERT INTO _replisql_nstate (id, applied_index, term, chain_hash, install_pending) VALUES (1, ${plan.fence.appliedIndex}, ${plan.fence.term}, ${quoteString(plan.fence.chainHash)}, 1)`,
      );
      const live = await listObjects(w);
      const oldTables = live.filter((o) => o.type === 'BASE TABLE');
      const oldViews = live.filter((o) => o.type === 'VIEW');
      const steps: { kind: string; stmt: string }[] = [];
      oldTables.forEach((_, j) => steps.push({ kind: 'sql', stmt: `DROP TABLE IF EXISTS ${quoteIdent(`_replisql_o${j}`)}` }));
      oldViews.forEach((_, j) => steps.push({ kind: 'sql', stmt: `DROP VIEW IF EXISTS ${quoteIdent(`_replisql_v${j}`)}` }));
      steps.push({ kind: 'sql', stmt: 'DROP TABLE IF EXISTS _replisql_ostate' });
      for (const fk of fks) steps.push({ kind: 'fk', stmt: fk });
      for (const v of plan.views) steps.push({ kind: 'view', stmt: v.create.replace(/^CREATE\s+(OR\s+REPLACE\s+)?/i, 'CREATE OR REPLACE ') });
      for (const t of plan.triggers) {
        steps.push({ kind: 'sql', stmt: `DROP TRIGGER IF EXISTS ${quoteIdent(t.name)}` });
        steps.push({ kind: 'sql', stmt: t.create });
      }
      await query(w, 'CREATE TABLE _replisql_install (seq INT UNSIGNED NOT NULL PRIMARY KEY, kind VARCHAR(8) NOT NULL, stmt LONGTEXT NOT NULL, done TINYINT NOT NULL DEFAULT 0) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4');
      for (let s = 0; s < steps.length; s++) {
        await query(w, `INSERT INTO _replisql_install (seq, kind, stmt) VALUES (${s}, ${quoteString(steps[s]!.kind)}, ${quoteString(steps[s]!.stmt)})`);
      }
      // 3. The commit point: one RENAME TABLE swaps the old objects out and the new ones in.
      const renames: string[] = [];
      oldTables.forEach((t, j) => renames.push(`${quoteIdent(t.name)} TO ${quoteIdent(`_replisql_o${j}`)}`));
      oldViews.forEach((v, j) => renames.push(`${quoteIdent(v.name)} TO ${quoteIdent(`_replisql_v${j}`)}`));
      renames.push(`${STATE_TABLE} TO _replisql_ostate`, `_replisql_nstate TO ${STATE_TABLE}`);
      for (const t of plan.tables) renames.push(`${quoteIdent(stageName.get(t.name)!)} TO ${quoteIdent(t.name)}`);
      await query(w, `RENAME TABLE ${renames.join(', ')}`);
      await this.opts.faults?.afterSwap?.();
      // 4. The rest, resumable.
      await this.finishInstall(w);
    } finally {
      await query(w, 'SET SESSION foreign_key_checks = 1').catch(() => undefined);
    }
  }

  /** Runs the steps _replisql_install still lists, then clears the "install pending" mark. Idempotent. */
  private async finishInstall(w: Connection): Promise<void> {
    await query(w, 'SET SESSION foreign_key_checks = 0');
    try {
      const exists = await rowsOf(w, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '_replisql_install'");
      if (Number(exists[0]![0]) > 0) {
        const steps = (await rowsOf(w, 'SELECT seq, kind, stmt FROM _replisql_install WHERE done = 0 ORDER BY seq')).map((r) => ({
          seq: Number(r[0]),
          kind: String(r[1]),
          stmt: String(r[2]),
        }));
        // Views may depend on views: retry those that fail on a missing table until no progress is made.
        let pendingViews: { seq: number; stmt: string; error: unknown }[] = [];
        for (const s of steps) {
          if (s.kind === 'view') {
            pendingViews.push({ seq: s.seq, stmt: s.stmt, error: null });
            continue;
          }
          if (pendingViews.length > 0 && s.kind !== 'fk') pendingViews = await createViews(w, pendingViews);
          try {
            await query(w, s.stmt);
          } catch (err) {
            const errno = (err as MysqlErrorLike).errno;
            const duplicateFk = s.kind === 'fk' && (errno === 1826 || errno === 1005 || errno === 1061 || errno === 121);
            if (!duplicateFk) throw err;
          }
          await query(w, `UPDATE _replisql_install SET done = 1 WHERE seq = ${s.seq}`);
        }
        if (pendingViews.length > 0) pendingViews = await createViews(w, pendingViews);
        if (pendingViews.length > 0) throw pendingViews[0]!.error;
      }
      await query(w, `UPDATE ${STATE_TABLE} SET install_pending = 0 WHERE id = 1`);
      await query(w, 'DROP TABLE IF EXISTS _replisql_install');
    } finally {
      await query(w, 'SET SESSION foreign_key_checks = 1').catch(() => undefined);
    }
  }

  /** Drops what an interrupted install left before its swap (staging tables) or after it (old tables). */
  private async dropLeftovers(w: Connection): Promise<void> {
    const rows = await rowsOf(w, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND LEFT(TABLE_NAME, 10) = '_replisql_'");
    const leftovers = rows.map((r) => ({ name: String(r[0]), type: String(r[1]) })).filter((o) => LEFTOVER_RE.test(o.name));
    if (leftovers.length === 0) return;
    await query(w, 'SET SESSION foreign_key_checks = 0');
    try {
      for (const o of leftovers) await query(w, `DROP ${o.type === 'VIEW' ? 'VIEW' : 'TABLE'} IF EXISTS ${quoteIdent(o.name)}`);
    } finally {
      await query(w, 'SET SESSION foreign_key_checks = 1').catch(() => undefined);
    }
  }

  // ================================================================ statement execution

  /** Analyses every statement of an entry or command; stops at the first refusal. */
  private plan(statements: readonly Statement[], mode: 'write'): Plan {
    if (!Array.isArray(statements)) throw this.misuse('statements must be an array', EngineCode.INVALID_STATEMENT);
    const analyzed: AnalyzedStatement[] = [];
    const contexts: (StatementContext | undefined)[] = [];
    for (let i = 0; i < statements.length; i++) {
      try {
        const st = statements[i]!;
        analyzed.push(analyzeStatement(st, mode, this.lex));
        contexts.push(validateContext((st as Statement | null)?.context));
      } catch (e) {
        if (e instanceof StatementRefusal) {
          analyzed.length = i;
          contexts.length = i;
          return { analyzed, contexts, refusal: { code: e.code, message: e.message, statementIndex: i } };
        }
        throw e;
      }
    }
    const bad = unpinnableInsert(analyzed);
    if (bad >= 0) {
      const target = analyzed[bad]!.insertTarget;
      analyzed.length = bad;
      contexts.length = bad;
      return {
        analyzed,
        contexts,
        refusal: {
          code: ErrorCode.UNSAFE_STATEMENT,
          message: `in a request with a schema change, rows may only be inserted into tables created by that request (${target === '' ? 'this INSERT' : `\`${target}\``} is not): its AUTO_INCREMENT ids could not be pinned; send the INSERT as a request of its own`,
          statementIndex: bad,
        },
      };
    }
    return { analyzed, contexts, refusal: null };
  }

  /**
   * Runs one write statement after the SET that pins its context. A server error that is deterministic
   * comes back as data; anything else throws.
   */
  private async execWrite(
    w: Connection,
    a: AnalyzedStatement,
    ctx: StatementContext | undefined,
    inTransaction: boolean,
    record = false,
  ): Promise<{ ok: true; result: StatementResult; insertId: number | string | null } | { ok: false; error: Omit<StatementError, 'statementIndex'>; errno?: number }> {
    const preLastId = a.insertReturning ? (ctx?.lastInsertId ?? 0) : undefined;
    await query(w, contextSetSql(ctx, preLastId));
    let out: QueryOutcome;
    try {
      out = await runQuery(w, a.text, { timeoutMs: a.kind === 'ddl' ? 0 : this.writeTimeoutMs, maxRows: this.maxResultRows });
    } catch (err) {
      if (classifyMysqlError(err) !== 'statement') throw err;
      const errno = (err as MysqlErrorLike).errno;
      return { ok: false, error: { code: errorCodeOf(err), message: errorMessageOf(err) }, ...(errno === undefined ? {} : { errno }) };
    }
    if (out.kind === 'ok') {
      if (a.orderSensitive !== null && out.affectedRows > 1) {
        // Undone by the caller (savepoint or transaction rollback), like any statement error.
        return {
          ok: false,
          error: {
            code: ErrorCode.UNSAFE_STATEMENT,
            message: `${a.orderSensitive} cannot be replicated: replicas may visit the rows in a different order; add ORDER BY on a unique key`,
          },
        };
      }
      if (inTransaction && (out.serverStatus & SERVER_STATUS_IN_TRANS) === 0) {
        throw this.markFatal(`statement ${JSON.stringify(a.text.slice(0, 80))} ended the engine's transaction; atomicity with the fencing row is lost`, EngineCode.TRANSACTION_ESCAPED);
      }
      let insertId = a.kind === 'dml' ? idForContext(out.insertId) : null;
      if (insertId !== null && record) {
        // The OK packet also reports an explicitly given id, or the id of a row ON DUPLICATE KEY UPDATE
        // changed; only a generated one moves LAST_INSERT_ID(). Pinning a value nothing generated would
        // leave it for the next AUTO_INCREMENT the statement meets on the replica.
        const lid = idForContext((await rowsOf(w, 'SELECT LAST_INSERT_ID()'))[0]?.[0]);
        if (lid === null || String(lid) !== String(insertId)) return { ok: true, insertId: null, result: { columns: [], rows: [], affectedRows: out.affectedRows, lastInsertId: insertId } };
      }
      return { ok: true, insertId, result: { columns: [], rows: [], affectedRows: out.affectedRows, lastInsertId: insertId } };
    }
    if (out.overflow) {
      return { ok: false, error: { code: EngineCode.RESULT_TOO_LARGE, message: `the statement returned more than ${this.maxResultRows} rows` } };
    }
    let insertId: number | string | null = null;
    if (a.insertReturning) {
      const id = idForContext((await rowsOf(w, 'SELECT LAST_INSERT_ID()'))[0]?.[0]);
      if (id !== null && String(id) !== String(preLastId)) insertId = id;
    }
    const affectedRows = a.kind === 'dml' ? out.rows.length : 0;
    return { ok: true, insertId, result: { columns: out.columns, columnTypes: columnTypesOf(out.fields), rows: out.rows, affectedRows, lastInsertId: insertId } };
  }

  private readResult(out: QueryOutcome): StatementResult {
    if (out.kind === 'ok') return emptyResult();
    if (out.overflow) throw new SqlEngineError(ErrorCode.SQL_ERROR, EngineCode.RESULT_TOO_LARGE, `the statement returned more than ${this.maxResultRows} rows`);
    return { columns: out.columns, columnTypes: columnTypesOf(out.fields), rows: out.rows, affectedRows: 0, lastInsertId: null };
  }

  private async writeFence(w: Connection, s: AppliedState): Promise<void> {
    const out = await runQuery(
      w,
      `UPDATE ${STATE_TABLE} SET applied_index = ${s.appliedIndex}, term = ${s.term}, chain_hash = ${quoteString(s.chainHash)}, pending_index = NULL, pending_term = NULL, pending_hash = NULL, pending_next = NULL, pending_ddl = 0 WHERE id = 1`,
      { timeoutMs: this.writeTimeoutMs },
    );
    if (out.kind !== 'ok' || out.affectedRows !== 1) throw this.markFatal('the fencing row is missing', EngineCode.INTERNAL);
  }

  private async writePending(w: Connection, p: NonNullable<FenceRow['pending']>): Promise<void> {
    await query(
      w,
      `UPDATE ${STATE_TABLE} SET pending_index = ${p.index}, pending_term = ${p.term}, pending_hash = ${quoteString(p.chainHash)}, pending_next = ${p.next}, pending_ddl = ${p.ddlStarted ? 1 : 0} WHERE id = 1`,
      this.writeTimeoutMs,
    );
    this.state = { ...this.state!, pending: p };
  }

  /**
   * Cleans up after a write failed with something that is not a statement error, and returns the error
   * to throw. `mode`: what to undo (the whole transaction, or the current command's savepoint).
   */
  private async afterWriteError(w: Connection, err: unknown, mode: 'rollback' | 'savepoint'): Promise<unknown> {
    if (err instanceof SqlEngineError) {
      if (this.failure === null && err.code !== ErrorCode.UNHEALTHY) await this.tryRollback(w, mode);
      return err;
    }
    const kind = classifyMysqlError(err);
    const what = kind === 'other' ? (err instanceof Error ? err.message : String(err)) : `${errorCodeOf(err)}: ${errorMessageOf(err)}`;
    if (kind === 'connection') return this.lose(w, `the database connection failed: ${what}`, EngineCode.UNHEALTHY, false);
    // An environment error (lock wait timeout, deadlock, disk full, ...) or a failing fault hook.
    const hadBatch = this.batchOpen;
    const undone = await this.tryRollback(w, mode);
    if (!undone) return this.lose(w, `could not roll back after ${what}`, EngineCode.UNHEALTHY, false);
    if (hadBatch && !this.batchOpen) return this.markFatal(`the batch was rolled back after ${what}`, EngineCode.UNHEALTHY);
    if (kind === 'environment') return new SqlEngineError(ErrorCode.SQL_ERROR, errorCodeOf(err), `${what} (nothing was applied; retry)`);
    return new SqlEngineError(ErrorCode.INTERNAL, EngineCode.INTERNAL, `write failed: ${what}`);
  }

  /** Undoes the open transaction (or the command's savepoint); false when that failed. */
  private async tryRollback(w: Connection, mode: 'rollback' | 'savepoint'): Promise<boolean> {
    try {
      if (mode === 'savepoint' && this.batchOpen) {
        await query(w, 'ROLLBACK TO SAVEPOINT replisql_cmd');
        await query(w, 'RELEASE SAVEPOINT replisql_cmd');
      } else {
        await query(w, 'ROLLBACK');
        this.batchOpen = false;
      }
      return true;
    } catch (e) {
      if (mode === 'savepoint' && classifyMysqlError(e) === 'statement') {
        // The savepoint is gone: the server rolled back the whole transaction (a deadlock does that).
        await query(w, 'ROLLBACK').catch(() => undefined);
        this.markFatal('the batch was rolled back by the server (deadlock or similar); it is lost', EngineCode.UNHEALTHY);
      }
      return false;
    }
  }

  // ================================================================ connections and health

  private connectionOptions(withDatabase: boolean): ConnectionOptions {
    const o = this.opts;
    return {
      ...(o.socketPath !== undefined ? { socketPath: o.socketPath } : { host: o.host ?? '127.0.0.1', port: o.port ?? 3306 }),
      user: o.user,
      password: o.password ?? '',
      ...(withDatabase ? { database: o.database } : {}),
      charset: 'UTF8MB4_GENERAL_CI',
      connectTimeout: this.connectTimeoutMs,
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: false,
      jsonStrings: true,
      decimalNumbers: false,
      multipleStatements: false,
      enableKeepAlive: true,
      // Parameters are inlined by analyzeStatement; mysql2 must never rewrite the SQL text.
      queryFormat: (sql: string) => sql,
      typeCast: (field, next) => (field.type === 'GEOMETRY' ? field.buffer() : next()),
    };
  }

  /** A new connection with the session pinned for writing (checks the server on the first one). */
  private async connect(withDatabase: boolean): Promise<Connection> {
    const c = mysql.createConnection(this.connectionOptions(withDatabase));
    c.on('error', () => undefined); // reported through the failing call, or by watchWriter
    try {
      await new Promise<void>((resolve, reject) => c.connect((err) => (err ? reject(err) : resolve())));
      if (this.flavor === null) {
        const v = String((await rowsOf(c, 'SELECT VERSION()'))[0]![0]);
        const mariadb = /mariadb/i.test(v);
        const [major = 0, minor = 0] = v.split(/[.-]/).map((x) => Number(x));
        const atomicDdl = mariadb ? major > 10 || (major === 10 && minor >= 6) : major >= 8;
        if (!atomicDdl) throw new ConfigError(`${this.describe()}: server ${v} is too old: replisql needs MariaDB 10.6+ or MySQL 8.0+ (atomic DDL)`);
        this.flavor = { mariadb, version: v };
      }
      for (const sql of this.sessionSql('write')) await query(c, sql);
      return c;
    } catch (e) {
      destroyConnection(c);
      throw e;
    }
  }

  private sessionSql(role: 'read' | 'write'): string[] {
    const common =
      `SET SESSION sql_mode = ${quoteString(this.sqlMode)}, time_zone = '+00:00', auto_increment_increment = 1, auto_increment_offset = 1, ` +
      `div_precision_increment = 4, lc_time_names = 'en_US', default_storage_engine = 'InnoDB', foreign_key_checks = 1, unique_checks = 1, ` +
      `group_concat_max_len = 1048576, explicit_defaults_for_timestamp = 1, autocommit = 1`;
    if (role === 'write') {
      return [`${common}, lock_wait_timeout = 60, innodb_lock_wait_timeout = 50`, 'SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ'];
    }
    const timeout = this.flavor?.mariadb !== false ? `max_statement_time = ${this.readTimeoutMs / 1000}` : `max_execution_time = ${this.readTimeoutMs}`;
    return [`${common}, ${timeout}`, 'SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY'];
  }

  private createReadPool(): Pool {
    const opts: PoolOptions = { ...this.connectionOptions(true), connectionLimit: this.readConnections, queueLimit: this.maxQueuedRequests, maxIdle: this.readConnections };
    const pool = mysql.createPool(opts);
    pool.on('error', () => undefined);
    return pool;
  }

  private async endPool(): Promise<void> {
    const pool = this.readPool;
    this.readPool = null;
    if (pool === null) return;
    await Promise.race([new Promise<void>((r) => pool.end(() => r())), delay(2000)]);
  }

  /** Connection failures of the idle write connection (the server died) make the engine unhealthy. */
  private watchWriter(w: Connection): void {
    w.on('error', (err: QueryError) => {
      if (this.writer === w && this.status === 'open') this.lose(w, `the database connection failed: ${errorCodeOf(err)}: ${errorMessageOf(err)}`, EngineCode.UNHEALTHY, false);
    });
  }

  private async withReadConnection<T>(fn: (c: PoolConnection) => Promise<T>): Promise<T> {
    while (this.readGate !== null) await this.readGate;
    this.ready();
    const pool = this.readPool!;
    let c: PoolConnection;
    try {
      c = await new Promise<PoolConnection>((resolve, reject) => pool.getConnection((err, conn) => (err ? reject(err) : resolve(conn))));
    } catch (err) {
      if ((err as MysqlErrorLike).code === 'POOL_ENQUEUELIMIT') throw new SqlEngineError(ErrorCode.OVERLOADED, EngineCode.QUEUE_FULL, 'too many reads are waiting for a connection');
      throw this.lose(null, `cannot connect to the database: ${errorCodeOf(err)}: ${errorMessageOf(err)}`, EngineCode.UNHEALTHY, false);
    }
    let destroy = false;
    try {
      if (!this.initialized.has(c)) {
        for (const sql of this.sessionSql('read')) await query(c, sql);
        this.initialized.add(c);
      }
      return await fn(c);
    } catch (err) {
      if (err instanceof SqlEngineError) throw err;
      const kind = classifyMysqlError(err);
      const code = errorCodeOf(err);
      if (kind === 'connection') {
        destroy = true;
        throw this.lose(null, `the database connection failed: ${code}: ${errorMessageOf(err)}`, EngineCode.UNHEALTHY, false);
      }
      const errno = (err as MysqlErrorLike).errno;
      if (errno === 1969 || errno === 3024) {
        throw new SqlEngineError(ErrorCode.SQL_ERROR, EngineCode.READ_TIMEOUT, `read did not finish within ${this.readTimeoutMs} ms and was stopped by the server`);
      }
      throw new SqlEngineError(ErrorCode.SQL_ERROR, code, errorMessageOf(err));
    } finally {
      if (destroy) destroyConnection(c);
      else c.release();
    }
  }

  private clientReadTimeout(): number {
    return this.readTimeoutMs === 0 ? 0 : this.readTimeoutMs + 5000;
  }

  /**
   * Runs `fn` on the write connection after every earlier write request (FIFO). Rejects at once while
   * the engine is unhealthy or too many requests wait.
   */
  private onWriter<T>(fn: (w: Connection) => Promise<T>): Promise<T> {
    try {
      this.ready();
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.queued >= this.maxQueuedRequests) {
      return Promise.reject(new SqlEngineError(ErrorCode.OVERLOADED, EngineCode.QUEUE_FULL, `${this.queued} requests are waiting for the write connection`));
    }
    this.queued++;
    const run = async (): Promise<T> => {
      try {
        this.ready();
        return await fn(this.writer!);
      } finally {
        this.queued--;
      }
    };
    const p = this.writeChain.then(run, run);
    this.writeChain = p.catch(() => undefined);
    return p;
  }

  private ready(): void {
    if (this.failure !== null) throw new SqlEngineError(ErrorCode.UNHEALTHY, EngineCode.UNHEALTHY, `${this.describe()} is unhealthy: ${this.failure.reason}`);
    if (this.status !== 'open' || this.writer === null) throw new SqlEngineError(ErrorCode.INTERNAL, EngineCode.NOT_OPEN, `${this.describe()} engine is ${this.status}`);
  }

  private misuse(message: string, engineCode: string = EngineCode.INTERNAL): SqlEngineError {
    return new SqlEngineError(ErrorCode.INTERNAL, this.status === 'open' || this.status === 'opening' ? engineCode : EngineCode.NOT_OPEN, `mysql engine: ${message}`);
  }

  private openError(e: unknown): unknown {
    if (e instanceof SqlEngineError || e instanceof ConfigError) return e;
    const kind = classifyMysqlError(e);
    const what = `${errorCodeOf(e)}: ${errorMessageOf(e)}`;
    if (kind === 'connection') return new SqlEngineError(ErrorCode.UNHEALTHY, EngineCode.UNHEALTHY, `cannot open ${this.describe()}: ${what}`);
    return new SqlEngineError(ErrorCode.UNHEALTHY, errorCodeOf(e), `cannot open ${this.describe()}: ${what}`);
  }

  /**
   * The connection to the server is gone (or must be given up). The engine is unhealthy until a probe
   * reconnects; if a batch was open it is lost, and only close() + open() recovers (so the caller
   * learns that its batch is gone). Returns the error to throw.
   */
  private lose(conn: Connection | null, reason: string, engineCode: string, reopen: boolean): SqlEngineError {
    const err = new SqlEngineError(ErrorCode.UNHEALTHY, engineCode, `${this.describe()} is unhealthy: ${reason}`);
    if (conn !== null && conn !== this.writer) return err; // a connection we already gave up on
    const lostBatch = this.batchOpen;
    this.batchOpen = false;
    const w = this.writer;
    this.writer = null;
    if (w) destroyConnection(w);
    if (this.failure === null) this.failure = { reason, engineCode, reopen: reopen || lostBatch };
    else if (reopen || lostBatch) this.failure.reopen = true;
    if (lostBatch) this.failure = { ...this.failure, reason: `${reason}; the open batch was lost (close() and open() the engine)` };
    this.scheduleProbe();
    return err;
  }

  /** A failure the engine cannot recover from by itself: unhealthy until close() + open(). */
  private markFatal(reason: string, engineCode: string): SqlEngineError {
    const w = this.writer;
    this.writer = null;
    this.batchOpen = false;
    if (w) destroyConnection(w);
    if (this.failure === null) this.failure = { reason: `${reason} (close() and open() the engine)`, engineCode, reopen: true };
    else this.failure.reopen = true;
    this.stopProbe();
    return new SqlEngineError(ErrorCode.UNHEALTHY, engineCode, `${this.describe()} is unhealthy: ${reason}`);
  }

  private scheduleProbe(): void {
    if (this.probeTimer !== null || this.status !== 'open' || this.failure === null || this.failure.reopen) return;
    this.probeTimer = setTimeout(() => void this.probe(), this.reconnectIntervalMs);
    this.probeTimer.unref();
  }

  private stopProbe(): void {
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    this.probeTimer = null;
  }

  /** Reconnects after a lost connection: a new write connection, the fencing row re-read. */
  private async probe(): Promise<void> {
    this.probeTimer = null;
    if (this.status !== 'open' || this.failure === null || this.failure.reopen) return;
    let w: Connection | null = null;
    try {
      w = await this.connect(true);
      let fence = await readFence(w);
      if (fence.installPending) {
        await this.finishInstall(w);
        fence = await readFence(w);
      }
      if (this.status !== 'open' || this.failure === null || this.failure.reopen) {
        destroyConnection(w);
        return;
      }
      this.writer = w;
      this.watchWriter(w);
      this.state = fence;
      this.failure = null;
    } catch {
      if (w) destroyConnection(w);
      this.scheduleProbe();
    }
  }
}

interface Plan {
  readonly analyzed: AnalyzedStatement[];
  readonly contexts: (StatementContext | undefined)[];
  /** The first statement refused before reaching the server (the entry stops there). */
  readonly refusal: StatementError | null;
}

// ================================================================ helpers

function bare(st: Statement): Statement {
  return st.params !== undefined && st.params.length > 0 ? { sql: st.sql, params: st.params } : { sql: st.sql };
}

function publicState(s: AppliedState): AppliedState {
  return { appliedIndex: s.appliedIndex, term: s.term, chainHash: s.chainHash };
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

async function endConnection(c: Connection): Promise<void> {
  await Promise.race([new Promise<void>((r) => c.end(() => r())), delay(2000)]);
  destroyConnection(c);
}

function validateEntry(e: EntryToApply): void {
  const bad = (m: string): never => {
    throw new SqlEngineError(ErrorCode.INTERNAL, EngineCode.INTERNAL, `mysql engine: ${m}`);
  };
  if (e === null || typeof e !== 'object') bad('entry must be an object');
  if (!Number.isSafeInteger(e.index) || e.index < 1) bad(`entry index must be a positive integer, got ${e.index}`);
  if (!Number.isSafeInteger(e.term) || e.term < 0) bad(`entry term must be a non-negative integer, got ${e.term}`);
  if (typeof e.chainHash !== 'string' || e.chainHash.length > 256) bad('entry chainHash must be a string of at most 256 characters');
  if (!Array.isArray(e.statements)) bad('entry statements must be an array');
}

/**
 * Connections that failed or were destroyed. mysql2 queues a command sent to a destroyed connection
 * and never answers it, so runQuery refuses them itself.
 */
const deadConnections = new WeakSet<object>();

function destroyConnection(c: Connection): void {
  deadConnections.add(c);
  c.destroy();
}

/**
 * Queries running on each connection. mysql2 does not tell a query started without a callback that its
 * connection closed (it only emits 'error' on the connection), so runQuery rejects them itself.
 */
const inFlight = new WeakMap<object, Set<(err: unknown) => void>>();

function lostConnectionError(): Error {
  return Object.assign(new Error('the connection to the server was lost'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true });
}

function watchConnection(c: Connection): Set<(err: unknown) => void> {
  let set = inFlight.get(c);
  if (set !== undefined) return set;
  const running = new Set<(err: unknown) => void>();
  inFlight.set(c, running);
  const fail = (err: unknown): void => {
    deadConnections.add(c);
    for (const f of [...running]) f(err);
  };
  c.on('error', (err: unknown) => fail((err as MysqlErrorLike | null)?.fatal === true ? err : lostConnectionError()));
  c.on('end', () => fail(lostConnectionError()));
  set = running;
  return set;
}

/** Runs one statement on a core connection, streaming rows (at most maxRows kept). */
function runQuery(c: Connection, sql: string, opts: QueryOpts = {}): Promise<QueryOutcome> {
  return new Promise<QueryOutcome>((resolve, reject) => {
    // mysql2 also queues commands on a connection whose socket closed without a network error.
    const state = (c as { state?: string }).state;
    if (deadConnections.has(c) || state === 'error' || state === 'disconnected') {
      deadConnections.add(c);
      reject(Object.assign(new Error('the connection was closed after a failure'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true }));
      return;
    }
    const running = watchConnection(c);
    let settled = false;
    const abort = (err: unknown): void => {
      if (settled) return;
      settled = true;
      running.delete(abort);
      reject(err);
    };
    running.add(abort);
    let fields: FieldPacket[] | null = null;
    const rows: unknown[][] = [];
    let overflow = false;
    let header: { affectedRows?: number; insertId?: unknown; serverStatus?: number } | null = null;
    const maxRows = opts.maxRows ?? Number.MAX_SAFE_INTEGER;
    const q = c.query({ sql, rowsAsArray: true, ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}), ...(opts.raw ? { typeCast: false } : {}) });
    q.on('error', (err: unknown) => {
      if ((err as MysqlErrorLike).fatal === true) deadConnections.add(c);
      abort(err);
    });
    q.on('fields', (f: FieldPacket[] | undefined) => {
      if (Array.isArray(f)) fields = f; // mysql2 emits 'fields' with undefined for an OK packet
    });
    q.on('result', (r: unknown) => {
      if (fields === null || !Array.isArray(r)) {
        header = r as typeof header;
        return;
      }
      if (rows.length >= maxRows) {
        overflow = true;
        return;
      }
      rows.push(opts.raw ? r : r.map(valueOut));
    });
    q.on('end', () => {
      if (settled) return;
      settled = true;
      running.delete(abort);
      if (fields !== null) {
        const f = fields as FieldPacket[];
        resolve({ kind: 'rows', columns: f.map((x) => x.name), rows, fields: f, overflow });
      } else {
        const h = header ?? {};
        resolve({ kind: 'ok', affectedRows: h.affectedRows ?? 0, insertId: h.insertId ?? 0, serverStatus: h.serverStatus ?? 0 });
      }
    });
  });
}

async function query(c: Connection, sql: string, timeoutMs = 0): Promise<QueryOutcome> {
  return runQuery(c, sql, { timeoutMs });
}

async function rowsOf(c: Connection, sql: string): Promise<unknown[][]> {
  const out = await runQuery(c, sql);
  return out.kind === 'rows' ? out.rows : [];
}

async function readFence(c: Connection): Promise<FenceRow> {
  const rows = await rowsOf(c, `SELECT ${FENCE_COLUMNS} FROM ${STATE_TABLE} WHERE id = 1`);
  const r = rows[0];
  if (r === undefined) throw new SqlEngineError(ErrorCode.UNHEALTHY, EngineCode.BAD_SNAPSHOT, `the ${STATE_TABLE} row is missing`);
  const pendingIndex = r[3];
  return {
    appliedIndex: Number(r[0]),
    term: Number(r[1]),
    chainHash: String(r[2]),
    pending:
      pendingIndex === null
        ? null
        : { index: Number(pendingIndex), term: Number(r[4]), chainHash: String(r[5]), next: Number(r[6] ?? 0), ddlStarted: Number(r[7]) === 1 },
    installPending: Number(r[8]) === 1,
  };
}

/** Base tables and views of the database, replisql's own left out, in byte order of their names. */
async function listObjects(c: Connection): Promise<{ name: string; type: string }[]> {
  const rows = await rowsOf(
    c,
    "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND LEFT(TABLE_NAME, 10) <> '_replisql_' AND TABLE_TYPE IN ('BASE TABLE', 'VIEW') ORDER BY BINARY TABLE_NAME",
  );
  return rows.map((r) => ({ name: String(r[0]), type: String(r[1]) }));
}

async function listTriggers(c: Connection): Promise<{ name: string; table: string; create: string }[]> {
  const rows = await rowsOf(
    c,
    'SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ' +
      'ORDER BY BINARY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER, BINARY TRIGGER_NAME',
  );
  const out: { name: string; table: string; create: string }[] = [];
  for (const r of rows) {
    const name = String(r[0]);
    const show = await runQuery(c, `SHOW CREATE TRIGGER ${quoteIdent(name)}`);
    if (show.kind !== 'rows') continue;
    const col = show.columns.indexOf('SQL Original Statement');
    out.push({ name, table: String(r[1]), create: String(show.rows[0]?.[col] ?? '') });
  }
  return out;
}

async function showCreate(c: Connection, what: 'TABLE' | 'VIEW', name: string): Promise<string> {
  const rows = await rowsOf(c, `SHOW CREATE ${what} ${quoteIdent(name)}`);
  return String(rows[0]?.[1] ?? '');
}

/** Primary key columns, or every column when there is no primary key. */
async function orderColumns(c: Connection, table: string, columns: readonly string[]): Promise<string[]> {
  const pk = await rowsOf(
    c,
    `SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${quoteString(table)} AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`,
  );
  return pk.length > 0 ? pk.map((r) => String(r[0])) : [...columns];
}

/** A raw text-protocol value as a SQL literal that reads back as the same value. */
function rowLiteral(v: unknown, f: FieldPacket): string {
  if (v === null || v === undefined) return 'NULL';
  const b = Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'utf8');
  const type = f.columnType ?? -1;
  if (NUMERIC_TYPES.has(type)) return b.toString('latin1');
  if (type === JSON_TYPE) return `_utf8mb4 X'${b.toString('hex')}'`; // MySQL 8 sends JSON as binary
  if (TEMPORAL_TYPES.has(type)) return `'${b.toString('latin1')}'`;
  if (type === BIT_TYPE || f.characterSet === BINARY_CHARSET) return `X'${b.toString('hex')}'`;
  return `_utf8mb4 X'${b.toString('hex')}'`;
}

/** Streams a SELECT's rows as `(..),(..)` chunks of at most SNAPSHOT_CHUNK_BYTES. */
function streamRows(c: Connection, sql: string, onChunk: (values: string) => Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let fields: FieldPacket[] = [];
    let chunk: string[] = [];
    let bytes = 0;
    let chain = Promise.resolve();
    let failed = false;
    const running = watchConnection(c);
    const abort = (err: unknown): void => {
      if (failed) return;
      failed = true;
      running.delete(abort);
      reject(err);
    };
    running.add(abort);
    const q = c.query({ sql, rowsAsArray: true, typeCast: false });
    const flush = (): void => {
      if (chunk.length === 0) return;
      const values = chunk.join(',');
      chunk = [];
      bytes = 0;
      chain = chain.then(() => onChunk(values));
    };
    q.on('error', (err: unknown) => abort(err));
    q.on('fields', (f: FieldPacket[] | undefined) => {
      if (Array.isArray(f)) fields = f;
    });
    q.on('result', (r: unknown) => {
      if (!Array.isArray(r) || failed) return;
      try {
        const row = `(${r.map((v, i) => rowLiteral(v, fields[i]!)).join(',')})`;
        if (bytes + row.length > SNAPSHOT_CHUNK_BYTES) flush();
        chunk.push(row);
        bytes += row.length + 1;
      } catch (err) {
        abort(err);
      }
    });
    q.on('end', () => {
      if (failed) return;
      running.delete(abort);
      flush();
      chain.then(resolve, reject);
    });
  });
}

/** Reads and checks a snapshot file: header, object lines, SHA-256 of every line before the last. */
async function readSnapshotPlan(src: string): Promise<SnapshotPlan> {
  const bad = (m: string): SqlEngineError => new SqlEngineError(ErrorCode.INTERNAL, EngineCode.BAD_SNAPSHOT, `mysql engine: ${src} is not a usable snapshot: ${m}`);
  if (!fs.existsSync(src)) throw bad('the file does not exist');
  const hash = createHash('sha256');
  let header: { format?: unknown; version?: unknown; fence?: AppliedState } | null = null;
  let end: { lines?: unknown; sha256?: unknown } | null = null;
  let lines = 0;
  const plan: SnapshotPlan = { fence: { appliedIndex: 0, term: 0, chainHash: '' }, tables: [], views: [], triggers: [] };
  const rl = readline.createInterface({ input: fs.createReadStream(src, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const text of rl) {
    if (end !== null) throw bad('data after the end line');
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw bad(`line ${lines + 1} is not JSON`);
    }
    if (o.t === 'end') {
      end = o;
      continue;
    }
    hash.update(`${text}\n`);
    lines++;
    if (header === null) {
      header = o;
      if (o.format !== SNAPSHOT_FORMAT || o.version !== 1) throw bad('unknown format');
      continue;
    }
    if (o.t === 'table' && typeof o.name === 'string' && typeof o.create === 'string' && Array.isArray(o.columns)) {
      plan.tables.push({ name: o.name, create: o.create, columns: o.columns.map(String) });
    } else if (o.t === 'view' && typeof o.name === 'string' && typeof o.create === 'string') plan.views.push({ name: o.name, create: o.create });
    else if (o.t === 'trigger' && typeof o.name === 'string' && typeof o.create === 'string') plan.triggers.push({ name: o.name, create: o.create });
    else if (o.t !== 'rows') throw bad(`line ${lines} has an unknown type`);
  }
  if (header === null) throw bad('it is empty');
  if (end === null) throw bad('it is truncated (no end line)');
  if (end.lines !== lines || end.sha256 !== hash.digest('hex')) throw bad('its checksum does not match (corrupt or truncated)');
  const f = header.fence;
  if (f === undefined || !Number.isSafeInteger(f.appliedIndex) || !Number.isSafeInteger(f.term) || typeof f.chainHash !== 'string') throw bad('no fencing row');
  return { ...plan, fence: { appliedIndex: f.appliedIndex, term: f.term, chainHash: f.chainHash } };
}

async function* snapshotLines(src: string): AsyncGenerator<unknown> {
  const rl = readline.createInterface({ input: fs.createReadStream(src, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const text of rl) yield JSON.parse(text) as unknown;
}

/** CREATE TABLE for the staging name, with its FOREIGN KEY clauses taken out (added after the swap). */
function stagingCreate(t: SnapshotTable, stage: string): { create: string; foreignKeys: string[] } {
  const prefix = `CREATE TABLE ${quoteIdent(t.name)} (`;
  if (!t.create.startsWith(prefix)) {
    throw new SqlEngineError(ErrorCode.INTERNAL, EngineCode.BAD_SNAPSHOT, `mysql engine: snapshot table ${t.name} has an unexpected definition`);
  }
  const lines = t.create.split('\n');
  let close = lines.length - 1;
  while (close > 0 && !lines[close]!.startsWith(')')) close--;
  const body = lines.slice(1, close).map((l) => l.replace(/,$/, ''));
  const foreignKeys = body.filter((l) => /^\s*CONSTRAINT\s+`(?:[^`]|``)+`\s+FOREIGN KEY\s/.test(l)).map((l) => l.trim());
  const kept = body.filter((l) => !foreignKeys.includes(l.trim()));
  const create = [`CREATE TABLE ${quoteIdent(stage)} (`, kept.join(',\n'), ...lines.slice(close)].join('\n');
  return { create, foreignKeys };
}

/** Creates the views that can be created now, repeatedly; returns those still failing. */
async function createViews(w: Connection, views: { seq: number; stmt: string; error: unknown }[]): Promise<{ seq: number; stmt: string; error: unknown }[]> {
  let left = views;
  for (;;) {
    const failed: { seq: number; stmt: string; error: unknown }[] = [];
    for (const v of left) {
      try {
        await query(w, v.stmt);
        await query(w, `UPDATE _replisql_install SET done = 1 WHERE seq = ${v.seq}`);
      } catch (err) {
        if (classifyMysqlError(err) !== 'statement') throw err;
        failed.push({ ...v, error: err });
      }
    }
    if (failed.length === 0 || failed.length === left.length) return failed;
    left = failed;
  }
}
