// Messages between SqliteEngine (main thread) and its sqlite workers (sqlite-worker.ts).
// Every request carries an id; the worker answers each request exactly once, in arrival order, with a
// response carrying the same id. Errors travel as data (WorkerFailure), never as thrown objects, so
// SQLite's extended codes (SQLITE_CONSTRAINT_UNIQUE, SQLITE_IOERR_FSYNC, ...) and messages survive.
import type {
  AppliedState,
  ApplyResult,
  BatchExecResult,
  EntryToApply,
  Statement,
  StatementDescription,
  StatementResult,
} from '../sql-engine.js';

/** The write worker owns the only read-write connection; read workers open the file read-only. */
export type ConnectionRole = 'write' | 'read';

export interface OpenArgs {
  readonly path: string;
  readonly role: ConnectionRole;
  readonly busyTimeoutMs: number;
  /** Bound on the rows one statement may return. */
  readonly maxResultRows: number;
  /** Bound on the prepared-statement cache of the connection. */
  readonly statementCacheSize: number;
}

/** Operation name -> argument and result types. */
export interface WorkerOps {
  /** Opens the connection; the write role creates the fencing table and returns the fencing row. */
  open: { args: OpenArgs; result: AppliedState | null };
  /** Closes the connection (an open batch is rolled back); the worker stays alive and may be opened again. */
  close: { args: null; result: null };
  // read role
  read: { args: { readonly statements: readonly Statement[] }; result: StatementResult[] };
  dump: { args: null; result: string };
  snapshotTo: { args: { readonly path: string }; result: AppliedState };
  // write role
  applyEntry: { args: { readonly entry: EntryToApply }; result: { result: ApplyResult; state: AppliedState } };
  applyEntries: { args: { readonly entries: readonly EntryToApply[] }; result: { results: ApplyResult[]; state: AppliedState } };
  beginBatch: { args: null; result: null };
  execInBatch: { args: { readonly statements: readonly Statement[] }; result: BatchExecResult };
  describe: { args: { readonly sql: string }; result: StatementDescription };
  commitBatch: { args: { readonly fence: AppliedState }; result: AppliedState };
  rollbackBatch: { args: null; result: null };
  installSnapshot: { args: { readonly path: string }; result: AppliedState };
  /** Fault injection for tests: the worker exits at once with code 70 and never answers. */
  crash: { args: null; result: null };
}
export type WorkerOp = keyof WorkerOps;

export type WorkerRequest = {
  [K in WorkerOp]: { readonly id: number; readonly op: K; readonly args: WorkerOps[K]['args'] };
}[WorkerOp];

/**
 * Why a request failed.
 * - `statement`: deterministic SQL error (same on every replica);
 * - `misuse`: the request is invalid in the current state (gap, stale fence, batch open, ...); nothing changed;
 * - `environment`: I/O, disk full, busy, corrupt file...: nothing was applied; not deterministic.
 * `fatal` marks failures after which the connection must not be trusted (I/O error, corruption, a
 * statement that escaped the transaction): the engine becomes unhealthy.
 */
export interface WorkerFailure {
  readonly kind: 'statement' | 'misuse' | 'environment';
  readonly code: string;
  readonly message: string;
  readonly statementIndex?: number;
  readonly fatal?: boolean;
}

export type WorkerResponse =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: WorkerFailure };

/** Operations served by the write worker (FIFO), the others by the read pool (round robin). */
export const WRITE_OPS: ReadonlySet<WorkerOp> = new Set<WorkerOp>([
  'applyEntry',
  'applyEntries',
  'beginBatch',
  'execInBatch',
  'commitBatch',
  'rollbackBatch',
  'installSnapshot',
]);

/** SQLite result codes that depend on the machine, not on the statement: never "the same error on every replica". */
const ENVIRONMENT_CODE =
  /^SQLITE_(IOERR|FULL|NOMEM|BUSY|LOCKED|CORRUPT|CANTOPEN|READONLY|INTERRUPT|PROTOCOL|NOTADB|PERM|AUTH|NOLFS|ABORT_ROLLBACK)/;
/** Codes after which the write connection must not be trusted. */
const FATAL_CODE = /^SQLITE_(IOERR|CORRUPT|NOTADB|CANTOPEN)/;

export function isEnvironmentCode(code: string): boolean {
  return ENVIRONMENT_CODE.test(code);
}
export function isFatalCode(code: string): boolean {
  return FATAL_CODE.test(code);
}
