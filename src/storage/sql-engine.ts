// The storage port: what the node runtime needs from a SQL database.
// SQLite (sqlite-engine.ts, worker threads) implements it now; a MySQL/MariaDB engine implements it later.
// See docs/design-storage.md for why it looks like this.
//
// Two ways to change the database, both keeping a *fencing row* (appliedIndex, term, chainHash) in the
// same transaction as the data it describes, so that "applied up to N" and "the rows of 1..N exist"
// can never disagree, even after a crash:
//   - followers: applyEntry(), one committed log entry per call, idempotent;
//   - the coordinator: a speculative batch (beginBatch / execInBatch* / commitBatch), so that the client
//     gets the real result or error of its statement before the entry is replicated.
// Reads never see an open batch: they run on separate connections.
//
// Errors: a *statement* error (syntax, constraint, type, ...) is deterministic, it happens identically on
// every replica, so applyEntry/execInBatch return it as data. Everything else (I/O error, disk full,
// misuse of the port, a dead worker) rejects the promise with a SqlEngineError and changes nothing.
import { ErrorCode, ReplisqlError } from '../errors.js';

/**
 * A statement parameter. Integers that are safe JS integers are bound as SQL INTEGER, other finite
 * numbers as REAL, booleans as 1/0, bigint as INTEGER, `{ $blob }` (base64) as BLOB. NaN and ±Infinity
 * are refused (JSON, the log's encoding, cannot carry them, so replicas would see null instead).
 */
export type SqlValue = null | number | string | boolean | bigint | { readonly $blob: string /* base64 */ };

/**
 * What a MySQL/MariaDB replica needs to replay a statement exactly as the coordinator ran it: the
 * session values MySQL's own statement-based binlog records (`SET TIMESTAMP`, `SET INSERT_ID`,
 * `SET LAST_INSERT_ID`, the RAND() seeds). Recorded by the MySQL engine's execInBatch; SQLite does not
 * use it (the coordinator rewrites SQLite statements to literals instead). See docs/mysql.md.
 */
export interface StatementContext {
  /** Unix time in seconds with up to 6 decimals, as a decimal string: `SET TIMESTAMP = 1700000000.123456`. */
  readonly timestamp?: string;
  /** First AUTO_INCREMENT value the statement generated on the coordinator: `SET INSERT_ID = n`. A decimal string beyond 2^53. */
  readonly insertId?: number | string;
  /** What LAST_INSERT_ID() returned on the coordinator just before the statement (only when the statement calls it). */
  readonly lastInsertId?: number | string;
  /** `SET @@rand_seed1 = a, @@rand_seed2 = b`: the state RAND() starts from. */
  readonly randSeed1?: number;
  readonly randSeed2?: number;
}

/** One SQL statement with positional parameters (`?`). Exactly one statement per `sql` string. */
export interface Statement {
  readonly sql: string;
  readonly params?: readonly SqlValue[];
  /** Replay context (MySQL engine only); stored in the replicated entry with the statement. */
  readonly context?: StatementContext;
}

/**
 * Result of one statement.
 * - `columns`/`rows`: for statements that return rows (SELECT, ... RETURNING, PRAGMA reads); rows are
 *   arrays in column order. Values: null, number, string, `{ $blob: base64 }`. Integers are exact: JS
 *   numbers up to 2^53, decimal strings beyond.
 * - `affectedRows`: rows changed by an INSERT/UPDATE/DELETE (0 for everything else).
 * - `lastInsertId`: the rowid of the last row inserted by this statement (INSERT/REPLACE that changed
 *   rows), as a number, or a decimal string beyond 2^53; null otherwise.
 */
export interface StatementResult {
  readonly columns: string[];
  /**
   * The type of each column, when the engine knows it (MySQL/MariaDB report it). Absent (SQLite,
   * whose columns have no fixed type): users infer it from the values.
   */
  readonly columnTypes?: readonly ColumnType[];
  readonly rows: unknown[][];
  readonly affectedRows: number;
  readonly lastInsertId: number | string | null;
}

/**
 * A column's type, engine-neutral. Values in rows: 'int' -> number, or a decimal string beyond 2^53;
 * 'float' (double precision) and 'float32' (single precision: MySQL's FLOAT) -> number; 'decimal' -> decimal string; 'text' -> string; 'blob' -> { $blob }; 'date'
 * ('YYYY-MM-DD'), 'datetime' and 'timestamp' ('YYYY-MM-DD HH:MM:SS[.ffffff]'), 'time' ('[-]HH:MM:SS[.ffffff]'),
 * 'year' -> strings or numbers as the engine gives them; 'null' -> always null.
 */
export type ColumnType = 'int' | 'float' | 'float32' | 'decimal' | 'text' | 'blob' | 'date' | 'datetime' | 'timestamp' | 'time' | 'year' | 'null';

/** What a statement would return, learnt without running it (for MySQL's COM_STMT_PREPARE). */
export interface StatementDescription {
  /** The result columns (empty for statements that return no rows); `type` null when the engine cannot tell before running. */
  readonly columns: readonly { readonly name: string; readonly type: ColumnType | null }[];
}

/** The fencing row: the last log entry whose effects are in the database. */
export interface AppliedState {
  readonly appliedIndex: number;
  readonly term: number;
  readonly chainHash: string;
}

/** A committed log entry, reduced to what the engine needs. A no-op entry has `statements: []`. */
export interface EntryToApply {
  readonly index: number;
  readonly term: number;
  readonly chainHash: string;
  readonly statements: readonly Statement[];
}

/**
 * A deterministic statement error, returned as data. `code` keeps the engine's code (e.g.
 * SQLITE_CONSTRAINT_UNIQUE, ER_DUP_ENTRY); `statementErrorInfo` (src/errors.ts) makes it an ErrorInfo.
 */
export interface StatementError {
  readonly code: string;
  readonly message: string;
  /** The MySQL/MariaDB error number, when the server reported one. */
  readonly errno?: number;
  /** The SQLSTATE, when the server reported one. */
  readonly sqlState?: string;
  /** Position of the failing statement in the list that was executed. */
  readonly statementIndex: number;
}

export type ApplyResult =
  | { readonly skipped: true }
  | { readonly skipped: false; readonly ok: true; readonly results: StatementResult[] }
  | { readonly skipped: false; readonly ok: false; readonly error: StatementError };

export type BatchExecResult =
  | {
      readonly ok: true;
      readonly results: StatementResult[];
      /**
       * The statements to store in the replicated entry, when the engine recorded a replay context for
       * them (MySQL: the input statements, each with its `context`). Absent: log the input as it is.
       */
      readonly statements?: readonly Statement[];
    }
  | {
      readonly ok: false;
      readonly error: StatementError;
      /** As for ok results; set by the MySQL engine when it refuses to run a schema change speculatively (see docs/mysql.md). */
      readonly statements?: readonly Statement[];
      /**
       * true when the failing statement rolled back the whole transaction itself (SQLite's
       * ON CONFLICT ROLLBACK or a trigger's RAISE(ROLLBACK)): the batch is gone, including the commands
       * executed before in it. The caller must start a new batch and re-execute those; the failing
       * command's outcome is this error (applyEntry reproduces it on followers). commitBatch would reject.
       */
      readonly batchAborted: boolean;
    };

export interface SqlEngine {
  /** Opens the database (creating it and the fencing row `(0, 0, genesis)` if needed). */
  open(): Promise<void>;
  /** Closes the database; an open batch is rolled back. Idempotent. */
  close(): Promise<void>;
  /** false after a failure that makes the database unusable until close()+open() (e.g. a dead worker, an I/O error). */
  isHealthy(): boolean;
  /**
   * Runs read-only statements, all in one read transaction (one consistent snapshot), on a read
   * connection: never sees an open batch, never waits for applies. A statement error rejects
   * (SqlEngineError, code SQL_ERROR, engineCode e.g. SQLITE_ERROR). Writing statements are refused.
   */
  read(statements: readonly Statement[]): Promise<StatementResult[]>;
  /**
   * Prepares one statement without running it and says what it would return (columns and their
   * types where known). A statement error (syntax, unknown table) rejects like a
   * read's (SqlEngineError, code SQL_ERROR).
   */
  describeStatement(sql: string): Promise<StatementDescription>;
  /** The committed fencing row. */
  appliedState(): Promise<AppliedState>;
  /**
   * Applies one committed log entry atomically with the fencing row.
   * - `index <= appliedIndex`: nothing is done, returns `{ skipped: true }` (idempotent re-delivery);
   *   but `index == appliedIndex` with a chainHash other than the stored one rejects (CHAIN_MISMATCH).
   * - `index > appliedIndex + 1` (a gap) or `term` lower than the stored term: rejects (INTERNAL), nothing changes.
   * - a statement error rolls back the entry's statements but the fencing row still advances, and the
   *   error is returned as data: the same error happens on every replica.
   * Rejects while a batch is open.
   */
  applyEntry(e: EntryToApply): Promise<ApplyResult>;
  /**
   * Applies consecutive committed entries, with the same result as applyEntry on each in order, but
   * in as few database transactions as it can (one, with the fencing row written once): a follower
   * catching up, or keeping up under load, then pays one commit per burst instead of one per entry.
   * Each entry is still all-or-nothing (a statement error undoes that entry's statements only).
   * All-or-nothing as a whole on engine failures (nothing applied, the promise rejects).
   */
  applyEntries(entries: readonly EntryToApply[]): Promise<ApplyResult[]>;
  /** Coordinator-side speculative batch: BEGIN IMMEDIATE. Rejects if a batch is already open. */
  beginBatch(): Promise<void>;
  /** Runs one command (its statements) in its own SAVEPOINT; on a statement error only this command is rolled back. */
  execInBatch(statements: readonly Statement[]): Promise<BatchExecResult>;
  /**
   * Writes the fencing row for the last entry of the batch and COMMITs. The fence must be ahead of the
   * stored one (appliedIndex greater, term not lower), otherwise the batch is rolled back and this rejects.
   */
  commitBatch(fence: AppliedState): Promise<void>;
  /** Discards the open batch; a no-op when none is open. */
  rollbackBatch(): Promise<void>;
  /** Writes a consistent, fsynced copy of the committed database (VACUUM INTO) to `path` (must not exist). */
  snapshotTo(path: string): Promise<AppliedState>;
  /**
   * Replaces the database with a copy made by snapshotTo (the file at `path` is left in place).
   * Refuses a snapshot older than the current applied state. Crash-safe: after a crash either the old
   * or the new database is there. Rejects while a batch is open.
   */
  installSnapshot(path: string): Promise<AppliedState>;
  /** Deterministic text dump: schema + rows in primary-key/rowid order, excluding replisql's own tables. */
  dump(): Promise<string>;
}

/**
 * An engine failure. With code SQL_ERROR it is a statement the database rejected (`sql` holds the
 * engine code, errno, SQLSTATE); with any other code (UNHEALTHY, OVERLOADED, INTERNAL) a failure of the
 * engine itself, and `engineCode` says which one.
 */
export class SqlEngineError extends ReplisqlError {
  /** The engine's own code: an SQLite code (SQLITE_IOERR_FSYNC, ...), a MySQL one (ER_...), or a REPLISQL_* code below. */
  readonly engineCode: string;
  constructor(code: ErrorCode, engineCode: string, message: string, extra: { readonly errno?: number; readonly sqlState?: string; readonly cause?: unknown } = {}) {
    const { cause, ...numbers } = extra;
    super(code === ErrorCode.SQL_ERROR ? { engineCode, ...numbers } : code, message, null, cause === undefined ? undefined : { cause });
    this.name = 'SqlEngineError';
    this.engineCode = engineCode;
  }
}

/** Engine codes used by replisql itself (SQLite's own codes pass through unchanged). */
export const EngineCode = {
  /** The engine is not open (never opened, or closed). */
  NOT_OPEN: 'REPLISQL_NOT_OPEN',
  /** A worker thread died; the engine is unhealthy. */
  WORKER_EXITED: 'REPLISQL_WORKER_EXITED',
  /** An earlier failure made the engine unhealthy. */
  UNHEALTHY: 'REPLISQL_UNHEALTHY',
  /** A read ran longer than readTimeoutMs; its worker was replaced. */
  READ_TIMEOUT: 'REPLISQL_READ_TIMEOUT',
  /** Too many requests are queued for one worker. */
  QUEUE_FULL: 'REPLISQL_QUEUE_FULL',
  /** A read returned more rows than maxResultRows. */
  RESULT_TOO_LARGE: 'REPLISQL_RESULT_TOO_LARGE',
  /** The SQL text is not exactly one valid statement, or its parameters do not fit it. */
  INVALID_STATEMENT: 'REPLISQL_INVALID_STATEMENT',
  /** A parameter value of an unsupported type (or a non-finite number). */
  BAD_PARAMETER: 'REPLISQL_BAD_PARAMETER',
  /** A statement the engine refuses on this path (transaction control, ATTACH, VACUUM, PRAGMA in writes, replisql's tables). */
  FORBIDDEN_STATEMENT: 'REPLISQL_FORBIDDEN_STATEMENT',
  /** read() was given a statement that writes. */
  NOT_READONLY: 'REPLISQL_NOT_READONLY',
  /** applyEntry with an index beyond appliedIndex + 1. */
  LOG_GAP: 'REPLISQL_LOG_GAP',
  /** applyEntry/commitBatch with a term lower than the stored one, or a fence not ahead of the stored one. */
  STALE_FENCE: 'REPLISQL_STALE_FENCE',
  /** applyEntry of the last applied index with a different chain hash: the database and the log disagree. */
  CHAIN_MISMATCH: 'REPLISQL_CHAIN_MISMATCH',
  /** beginBatch with a batch open, applyEntry/installSnapshot during a batch. */
  BATCH_OPEN: 'REPLISQL_BATCH_OPEN',
  /** execInBatch/commitBatch without an open batch. */
  NO_BATCH: 'REPLISQL_NO_BATCH',
  /** installSnapshot with a snapshot older than the applied state, or not a replisql database. */
  BAD_SNAPSHOT: 'REPLISQL_BAD_SNAPSHOT',
  /** A statement ended the engine's transaction by itself; atomicity with the fencing row is lost. */
  TRANSACTION_ESCAPED: 'REPLISQL_TRANSACTION_ESCAPED',
  /** Any other unexpected failure inside the engine. */
  INTERNAL: 'REPLISQL_INTERNAL',
} as const;
export type EngineCode = (typeof EngineCode)[keyof typeof EngineCode];
