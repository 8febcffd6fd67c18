// Every failure kind replisql reports has one stable `code`, defined here once.
// The pure core returns errors as data (`ErrorInfo`); the shell turns them into
// `ReplisqlError` instances or into protocol error frames.

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

/** Error as plain data: what the core produces and what travels in frames. */
export interface ErrorInfo {
  readonly code: ErrorCode;
  readonly message: string;
  /** Node id the caller should try instead, when known. */
  readonly coordinatorHint?: number | null;
}

export class ReplisqlError extends Error {
  readonly code: ErrorCode;
  readonly coordinatorHint: number | null;
  constructor(code: ErrorCode, message: string, coordinatorHint: number | null = null) {
    super(message);
    this.name = 'ReplisqlError';
    this.code = code;
    this.coordinatorHint = coordinatorHint;
  }
  toInfo(): ErrorInfo {
    return this.coordinatorHint === null
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, coordinatorHint: this.coordinatorHint };
  }
  static fromInfo(info: ErrorInfo): ReplisqlError {
    return new ReplisqlError(info.code, info.message, info.coordinatorHint ?? null);
  }
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

export function errorInfo(code: ErrorCode, message: string, coordinatorHint?: number | null): ErrorInfo {
  return coordinatorHint === undefined ? { code, message } : { code, message, coordinatorHint };
}

export function assertNever(x: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(x)}`);
}
