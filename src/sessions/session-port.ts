// What the MySQL protocol front end needs from a client session (declared here, by its user).
// The node implements it in src/shell/sql-session.ts: reads on the local database, writes through
// the coordinator, interactive transactions as one session on the coordinator.
import type { ErrorInfo } from '../errors.js';
import type { SqlValue, StatementDescription, StatementResult } from '../storage/sql-engine.js';

/**
 * Results of the statements that ran, in order; when one failed, `error` says why and the
 * statements after it did not run (MySQL's multi-statement behaviour).
 */
export interface SessionOutcome {
  readonly results: readonly StatementResult[];
  /** Why the failing statement failed (src/errors.ts): the protocol layer maps it to its own shape. */
  readonly error: ErrorInfo | null;
}

export interface SessionStatus {
  readonly inTransaction: boolean;
  readonly autocommit: boolean;
}

export interface MysqlSessionPort {
  /** The database this session is in (MySQL's DATABASE()). */
  readonly database: string;
  /**
   * Runs an SQL text from COM_QUERY. With `multiStatements` false, a text holding more than one
   * statement is refused (as MySQL does without CLIENT_MULTI_STATEMENTS).
   */
  query(sql: string, opts: { readonly multiStatements: boolean }): Promise<SessionOutcome>;
  /** Runs one prepared statement (exactly one statement) with its bound parameters. */
  execute(sql: string, params: readonly SqlValue[]): Promise<SessionOutcome>;
  /**
   * COM_STMT_PREPARE: what the statement would return (result columns with their types where known;
   * the protocol layer counts the placeholders itself), without running it; a ErrorInfo when it cannot be prepared (syntax, unknown
   * table), as MySQL reports at prepare time; null when the session cannot tell without running
   * the statement (the protocol layer then runs a LIMIT 0 probe through execute()).
   */
  describe?(sql: string): Promise<StatementDescription | ErrorInfo | null>;
  /** COM_INIT_DB / USE: null when accepted. */
  useDatabase(name: string): ErrorInfo | null;
  status(): SessionStatus;
  /** COM_RESET_CONNECTION / COM_CHANGE_USER: rolls back an open transaction, autocommit on. */
  reset(): Promise<void>;
  /** The client went away: rolls back an open transaction. Idempotent. */
  close(): void;
}
