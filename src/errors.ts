// One error model for all of replisql (docs/errors.md).
//
// An error is either
//   - a cluster error: one of replisql's stable codes below (NO_QUORUM, UNSAFE_STATEMENT, ...), or
//   - an SQL error: code SQL_ERROR, with the database's own account of it in `sql` (engine code,
//     MySQL errno, SQLSTATE), exactly as the database reported it.
// The pure core returns errors as data (`ErrorInfo`); the shell throws `ReplisqlError`. Both travel
// in frames as the same fields, never packed into the message text. Only the front ends turn them into
// their protocol's shape (a JSON ERROR frame, a MySQL ERR packet).

export const ErrorCode = {
  /** This node is not the coordinator and cannot forward (e.g. forwarding disabled). */
  NOT_COORDINATOR: 'NOT_COORDINATOR',
  /** No coordinator is known right now (an election is in progress). Safe to retry. */
  NO_COORDINATOR: 'NO_COORDINATOR',
  /** The coordinator cannot reach a majority of the configured cluster. Safe to retry later. */
  NO_QUORUM: 'NO_QUORUM',
  /** The write may or may not have been applied (timed out or coordinator lost after logging it). */
  UNKNOWN_OUTCOME: 'UNKNOWN_OUTCOME',
  /** A replicated command's MD5 did not match its payload. */
  CHECKSUM_MISMATCH: 'CHECKSUM_MISMATCH',
  /** The statement cannot be replicated deterministically. */
  UNSAFE_STATEMENT: 'UNSAFE_STATEMENT',
  /** The SQL engine rejected the statement (syntax error, constraint violation, ...). */
  SQL_ERROR: 'SQL_ERROR',
  /** A frame or request was malformed, too large or of an unknown type. */
  BAD_REQUEST: 'BAD_REQUEST',
  /** The configuration is invalid. */
  INVALID_CONFIG: 'INVALID_CONFIG',
  /** The node's database is unavailable; the node acknowledges nothing until it returns. */
  UNHEALTHY: 'UNHEALTHY',
  /**
   * An interactive transaction was rolled back by the cluster (the coordinator changed, it stayed idle
   * too long, or its coordinator-side session is gone); nothing of it was committed. Safe to retry it.
   */
  TRANSACTION_ABORTED: 'TRANSACTION_ABORTED',
  /** Too many writes are waiting; retry later. */
  OVERLOADED: 'OVERLOADED',
  /** Internal invariant broken; a bug. */
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
/** Every code but SQL_ERROR: the failures replisql itself reports. */
export type ClusterErrorCode = Exclude<ErrorCode, typeof ErrorCode.SQL_ERROR>;

const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && ERROR_CODES.has(code);
}

/** The database's own account of a statement it rejected. */
export interface SqlErrorDetail {
  /**
   * The engine's code: 'ER_DUP_ENTRY' (MySQL/MariaDB), 'SQLITE_CONSTRAINT_UNIQUE' (SQLite), or a
   * 'REPLISQL_*' code when replisql's engine layer refused the statement (docs/errors.md).
   */
  readonly engineCode: string;
  /** The MySQL/MariaDB error number, when the database reported one. */
  readonly errno?: number;
  /** The SQLSTATE, when the database reported one. */
  readonly sqlState?: string;
}

/** A failure replisql itself reports. */
export interface ClusterErrorInfo {
  readonly code: ClusterErrorCode;
  readonly message: string;
  /** Node id the caller should try instead, when known. */
  readonly coordinatorHint?: number | null;
  /** A finer, machine-readable cause where one exists (BAD_REQUEST: 'FRAME_TOO_LARGE', 'MALFORMED_JSON'). */
  readonly reason?: string;
}

/** A statement the database rejected. */
export interface SqlErrorInfo {
  readonly code: typeof ErrorCode.SQL_ERROR;
  readonly message: string;
  readonly sql: SqlErrorDetail;
}

/** Error as plain data: what the core produces and what travels in frames. */
export type ErrorInfo = ClusterErrorInfo | SqlErrorInfo;

export function errorInfo(code: ClusterErrorCode, message: string, coordinatorHint?: number | null, reason?: string): ClusterErrorInfo {
  return {
    code,
    message,
    ...(coordinatorHint === undefined || coordinatorHint === null ? {} : { coordinatorHint }),
    ...(reason === undefined ? {} : { reason }),
  };
}

export function sqlErrorInfo(sql: SqlErrorDetail, message: string): SqlErrorInfo {
  return { code: ErrorCode.SQL_ERROR, message, sql: sqlDetail(sql) };
}

/** A detail with only the fields that are set (so that equal details compare and serialize equal). */
function sqlDetail(d: SqlErrorDetail): SqlErrorDetail {
  return {
    engineCode: d.engineCode,
    ...(d.errno === undefined ? {} : { errno: d.errno }),
    ...(d.sqlState === undefined ? {} : { sqlState: d.sqlState }),
  };
}

/**
 * What a storage engine reports for a statement that failed (its StatementError) as an ErrorInfo:
 * an SQL error, except UNSAFE_STATEMENT, which is replisql's own refusal.
 */
export function statementErrorInfo(e: { readonly code: string; readonly message: string; readonly errno?: number; readonly sqlState?: string }): ErrorInfo {
  if (e.code === ErrorCode.UNSAFE_STATEMENT) return errorInfo(ErrorCode.UNSAFE_STATEMENT, e.message);
  return sqlErrorInfo({ engineCode: e.code, ...(e.errno === undefined ? {} : { errno: e.errno }), ...(e.sqlState === undefined ? {} : { sqlState: e.sqlState }) }, e.message);
}

/** Longest message accepted in an error from a peer or a node (longer ones are refused as malformed). */
export const MAX_ERROR_MESSAGE_CHARS = 65_536;

/**
 * An ErrorInfo read from a frame, checked field by field (a known code; for SQL_ERROR a `sql` detail
 * with a string engine code, an integer errno and a five-character SQLSTATE where present). Returns
 * why it is malformed as a string otherwise.
 */
export function parseErrorInfo(v: unknown): ErrorInfo | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'the error must be an object';
  const o = v as Record<string, unknown>;
  const code = o['code'];
  const message = o['message'];
  if (!isErrorCode(code)) return `unknown error code ${JSON.stringify(code)?.slice(0, 80)}`;
  if (typeof message !== 'string' || message.length > MAX_ERROR_MESSAGE_CHARS) return `error.message must be a string of at most ${MAX_ERROR_MESSAGE_CHARS} characters`;
  if (code !== ErrorCode.SQL_ERROR) {
    const hint = o['coordinatorHint'];
    if (hint !== undefined && hint !== null && !(typeof hint === 'number' && Number.isSafeInteger(hint) && hint >= 0)) return 'error.coordinatorHint must be a node id or null';
    const reason = o['reason'];
    if (reason !== undefined && !(typeof reason === 'string' && /^[A-Z][A-Z0-9_]{0,63}$/.test(reason))) return 'error.reason must be an upper-case code of at most 64 characters';
    return errorInfo(code, message, typeof hint === 'number' ? hint : undefined, reason);
  }
  const d = o['sql'];
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return 'an SQL_ERROR must carry its "sql" detail (engineCode, errno, sqlState)';
  const detail = d as Record<string, unknown>;
  const engineCode = detail['engineCode'];
  const errno = detail['errno'];
  const sqlState = detail['sqlState'];
  if (typeof engineCode !== 'string' || engineCode.length === 0 || engineCode.length > 64) return 'error.sql.engineCode must be a string of 1 to 64 characters';
  if (errno !== undefined && !(typeof errno === 'number' && Number.isSafeInteger(errno) && errno > 0)) return 'error.sql.errno must be a positive integer';
  if (sqlState !== undefined && !(typeof sqlState === 'string' && /^[0-9A-Z]{5}$/.test(sqlState))) return 'error.sql.sqlState must be five characters (0-9, A-Z)';
  return sqlErrorInfo({ engineCode, ...(errno === undefined ? {} : { errno }), ...(sqlState === undefined ? {} : { sqlState }) }, message);
}

/**
 * The exception form of ErrorInfo. Construct cluster errors with a ClusterErrorCode and SQL errors with
 * their SqlErrorDetail (or use `SqlError`); `cause` keeps the underlying failure for logs.
 */
export class ReplisqlError extends Error {
  readonly code: ErrorCode;
  readonly coordinatorHint: number | null;
  /** Set exactly when code is SQL_ERROR. */
  readonly sql: SqlErrorDetail | null;
  /** See ClusterErrorInfo.reason. */
  readonly reason: string | null;
  constructor(what: ClusterErrorCode | SqlErrorDetail, message: string, coordinatorHint: number | null = null, options?: ErrorOptions & { readonly reason?: string }) {
    super(message, options);
    this.reason = options?.reason ?? null;
    this.name = 'ReplisqlError';
    if (typeof what === 'string') {
      this.code = what;
      this.sql = null;
    } else {
      this.code = ErrorCode.SQL_ERROR;
      this.sql = sqlDetail(what);
    }
    this.coordinatorHint = coordinatorHint;
  }
  toInfo(): ErrorInfo {
    if (this.sql !== null) return { code: ErrorCode.SQL_ERROR, message: this.message, sql: this.sql };
    return errorInfo(this.code as ClusterErrorCode, this.message, this.coordinatorHint, this.reason ?? undefined);
  }
  static fromInfo(info: ErrorInfo, options?: ErrorOptions): ReplisqlError {
    if (info.code === ErrorCode.SQL_ERROR) return new SqlError(info.sql, info.message, options);
    return new ReplisqlError(info.code, info.message, info.coordinatorHint ?? null, info.reason === undefined ? options : { ...options, reason: info.reason });
  }
}

/** A statement the database rejected (code SQL_ERROR). */
export class SqlError extends ReplisqlError {
  declare readonly sql: SqlErrorDetail;
  constructor(sql: SqlErrorDetail, message: string, options?: ErrorOptions) {
    super(sql, message, null, options);
    this.name = 'SqlError';
  }
}

/**
 * Any thrown value as an ErrorInfo: a ReplisqlError keeps its fields; anything else gets the
 * `fallback` code (what failing at that step means: BAD_REQUEST while reading a request, UNHEALTHY in
 * the database, INTERNAL for a bug) with its message.
 */
export function toErrorInfo(err: unknown, fallback: ClusterErrorCode = ErrorCode.INTERNAL): ErrorInfo {
  if (err instanceof ReplisqlError) return err.toInfo();
  return errorInfo(fallback, err instanceof Error ? err.message : String(err));
}

export class UnsafeStatementError extends ReplisqlError {
  constructor(message: string) {
    super(ErrorCode.UNSAFE_STATEMENT, message);
    this.name = 'UnsafeStatementError';
  }
}

export class ConfigError extends ReplisqlError {
  constructor(message: string) {
    super(ErrorCode.INVALID_CONFIG, message);
    this.name = 'ConfigError';
  }
}

export function assertNever(x: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(x)}`);
}
