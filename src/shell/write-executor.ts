// The coordinator's side of the write path (MySQL semi-sync AFTER_SYNC, group-committed):
//
//   1. writes the core asks to prepare are executed in one open database transaction, each in its
//      own savepoint, so the client gets the real result or error and failed statements never
//      reach the log;
//   2. the successful ones are proposed to the core (appended to the log, replicated);
//   3. when the last of them is committed, the transaction is committed together with the
//      fencing row (appliedIndex, term, chainHash) and the results are reported as applied.
//
// While a batch waits for its commit, newly arriving writes queue up and form the next batch.
// If the node stops being coordinator, the open transaction is rolled back; entries that were
// logged are then applied like any follower applies them, if and when they commit.
import { randomBytes } from 'node:crypto';
import { ErrorCode, errorInfo, type ErrorInfo } from '../errors.js';
import type { Entry, NodeId, PrepareRequest, ProposeItem } from '../core/types.js';
import { classifyScript, pinSqliteNondeterminism, SqlLexError } from '../sql/index.js';
import { UnsafeStatementError, ReplisqlError } from '../errors.js';
import type { SqlEngine, Statement, StatementResult } from '../storage/sql-engine.js';
import { decodeClientCommand, encodeReplicatedCommand, type WriteResult } from './command.js';
import type { Logger } from './logger-port.js';
import type { SerialQueue } from './serial-queue.js';

/** What the executor needs from the runtime (declared here, by its user). */
export interface ExecutorHost {
  /** Core: last log index and whether the engine has applied all of it. */
  lastLogIndex(): number;
  appliedIndex(): number;
  isCoordinatorReady(): boolean;
  /** Feeds the prepared writes to the core in one step; returns the index each got (null: not appended). */
  proposeAll(items: readonly ProposeItem[]): (number | null)[];
  prepareFailed(requestId: string, origin: NodeId, error: ErrorInfo): void;
  /** Reports an entry as applied to the core. */
  applied(index: number, result: WriteResult): void;
}

interface OpenBatch {
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly results: Map<number, WriteResult>;
  /** Committed entries of the batch seen so far (the batch commits when the last one arrives). */
  readonly committed: Entry[];
}

export interface WriteExecutorOptions {
  readonly engine: SqlEngine;
  readonly queue: SerialQueue;
  readonly host: ExecutorHost;
  readonly logger: Logger;
  readonly maxBatchRequests?: number;
  readonly now?: () => number;
  /**
   * SQL dialect of the engine. `sqlite`: non-deterministic functions are rewritten to literals here
   * (as rqlite does). `mysql`: statements run as they are and the engine records the context MySQL's
   * statement-based binlog records (timestamp, insert id, rand seeds) next to each statement.
   */
  readonly dialect?: 'sqlite' | 'mysql';
}

export class WriteExecutor {
  private readonly waiting: PrepareRequest[] = [];
  private batch: OpenBatch | null = null;
  private executing = false;
  private readonly maxBatch: number;

  constructor(private readonly opts: WriteExecutorOptions) {
    this.maxBatch = opts.maxBatchRequests ?? 256;
  }

  enqueue(requests: readonly PrepareRequest[]): void {
    this.waiting.push(...requests);
    this.pump();
  }

  /** Called whenever the applied index or the role may have changed. */
  pump(): void {
    if (this.executing || this.batch !== null || this.waiting.length === 0) return;
    const host = this.opts.host;
    if (!host.isCoordinatorReady()) return;
    // The batch must start from the state after every logged entry.
    if (host.appliedIndex() !== host.lastLogIndex()) return;
    const requests = this.waiting.splice(0, this.maxBatch);
    this.executing = true;
    this.opts.queue.push(() => this.executeBatch(requests));
  }

  /** True when entry `index` was executed in the open batch (its effects are in the transaction). */
  ownsEntry(index: number): boolean {
    return this.batch !== null && index >= this.batch.firstIndex && index <= this.batch.lastIndex;
  }

  /**
   * Runs on the serial queue for a committed entry that belongs to the open batch. Commits the
   * transaction when the batch's last entry arrives.
   */
  async commitEntry(e: Entry): Promise<void> {
    const b = this.batch;
    if (b === null || e.index < b.firstIndex || e.index > b.lastIndex) throw new Error(`entry ${e.index} is not in the open batch`);
    b.committed.push(e);
    if (e.index !== b.lastIndex) return;
    await this.opts.engine.commitBatch({ appliedIndex: e.index, term: e.term, chainHash: e.chainHash });
    this.batch = null;
    for (const c of b.committed) this.opts.host.applied(c.index, b.results.get(c.index) ?? { ok: true, results: [] });
    this.pump();
  }

  /**
   * The node is no longer coordinator: roll back the open transaction. Entries of the batch that
   * already committed are then applied normally, in order, by `applyNormally`.
   */
  abort(applyNormally: (e: Entry) => Promise<void>): void {
    const requests = this.waiting.splice(0);
    for (const r of requests) this.opts.host.prepareFailed(r.requestId, r.origin, errorInfo(ErrorCode.NOT_COORDINATOR, 'this node stopped being coordinator before running the write'));
    if (this.batch === null) return;
    const b = this.batch;
    this.batch = null;
    this.opts.logger.info({ firstIndex: b.firstIndex, lastIndex: b.lastIndex }, 'rolling back the open write batch after losing the coordinator role');
    this.opts.queue.push(async () => {
      await this.opts.engine.rollbackBatch();
      for (const e of b.committed) await applyNormally(e);
    });
  }

  /** The database connection was reopened after a failure: the open transaction is gone. */
  forgetBatch(): void {
    this.batch = null;
  }

  private async executeBatch(requests: PrepareRequest[]): Promise<void> {
    const engine = this.opts.engine;
    const executed: { req: PrepareRequest; payload: string; result: WriteResult }[] = [];
    /** A write the engine would not run speculatively (a MySQL schema change): logged unexecuted, applied when committed. */
    let unexecuted: { req: PrepareRequest; payload: string } | null = null;
    try {
      await engine.beginBatch();
    } catch (err) {
      this.executing = false;
      for (const r of requests) this.opts.host.prepareFailed(r.requestId, r.origin, toErrorInfo(err, ErrorCode.UNHEALTHY));
      return;
    }
    let requeue: PrepareRequest[] = [];
    for (let i = 0; i < requests.length; i++) {
      const req = requests[i] as PrepareRequest;
      let statements: Statement[];
      try {
        statements = this.pin(req.command);
      } catch (err) {
        this.opts.host.prepareFailed(req.requestId, req.origin, toErrorInfo(err, ErrorCode.BAD_REQUEST));
        continue;
      }
      let res;
      try {
        res = await engine.execInBatch(statements);
      } catch (err) {
        this.opts.host.prepareFailed(req.requestId, req.origin, toErrorInfo(err, ErrorCode.UNHEALTHY));
        continue;
      }
      if (res.ok) {
        executed.push({ req, payload: encodeReplicatedCommand(res.statements ?? statements), result: { ok: true, results: res.results } });
        continue;
      }
      if (res.statements !== undefined) {
        // It ends this batch: later writes must run after it has been applied.
        unexecuted = { req, payload: encodeReplicatedCommand(res.statements) };
        requeue = requests.slice(i + 1);
        break;
      }
      this.opts.host.prepareFailed(
        req.requestId,
        req.origin,
        res.error.code === ErrorCode.UNSAFE_STATEMENT ? errorInfo(ErrorCode.UNSAFE_STATEMENT, res.error.message) : errorInfo(ErrorCode.SQL_ERROR, `${res.error.code}: ${res.error.message}`),
      );
      if (!res.batchAborted) continue;
      // The statement rolled back the whole transaction (e.g. ON CONFLICT ROLLBACK): the writes
      // executed before it are redone in the next batch; the rest waits too.
      requeue = [...executed.map((x) => x.req), ...requests.slice(i + 1)];
      executed.length = 0;
      break;
    }
    this.executing = false;
    if (requeue.length > 0 && unexecuted === null) {
      await engine.rollbackBatch().catch(() => undefined);
      this.waiting.unshift(...requeue);
      this.pump();
      return;
    }
    this.waiting.unshift(...requeue);
    if (executed.length === 0 && unexecuted === null) {
      await engine.rollbackBatch();
      this.pump();
      return;
    }
    // Propose them all in one core step so that they get consecutive indexes and one fsync.
    const items = executed.map((x) => ({ requestId: x.req.requestId, origin: x.req.origin, payload: x.payload, result: x.result as unknown }));
    if (unexecuted !== null) items.push({ requestId: unexecuted.req.requestId, origin: unexecuted.req.origin, payload: unexecuted.payload, result: null });
    const assigned = this.opts.host.proposeAll(items);
    const indexes = assigned.filter((i): i is number => i !== null);
    const contiguous = indexes.length === items.length && indexes.every((v, i) => i === 0 || v === (indexes[i - 1] as number) + 1);
    if (executed.length === 0 || !contiguous) {
      // Lost the coordinator role meanwhile: whatever was logged is applied normally when committed.
      await engine.rollbackBatch();
      this.pump();
      return;
    }
    const results = new Map<number, WriteResult>();
    executed.forEach((x, i) => results.set(indexes[i] as number, x.result));
    // The batch owns only the executed entries; an unexecuted one after them is applied normally.
    this.batch = { firstIndex: indexes[0] as number, lastIndex: indexes[executed.length - 1] as number, results, committed: [] };
  }

  /** Splits the script and pins non-deterministic functions to the coordinator's values. */
  private pin(commandText: string): Statement[] {
    const cmd = decodeClientCommand(commandText);
    const dialect = this.opts.dialect ?? 'sqlite';
    const script = classifyScript(cmd.sql, { dialect });
    if (script.statements.length === 0) throw new ReplisqlError(ErrorCode.BAD_REQUEST, 'empty statement');
    if (cmd.params && cmd.params.length > 0 && script.statements.length > 1) {
      throw new ReplisqlError(ErrorCode.BAD_REQUEST, 'parameters are only supported with a single statement per request');
    }
    const nowMs = (this.opts.now ?? Date.now)();
    const ctx = {
      nowMs,
      random: () => randomBytes(8).readBigInt64BE(0),
      randomBytes: (n: number) => new Uint8Array(randomBytes(n)),
    };
    return script.statements.map((s) => {
      const kind = s.class.kind;
      if (kind === 'session' || kind === 'transaction') {
        throw new UnsafeStatementError(
          `${s.class.verb || 'statement'} cannot be replicated: ${kind === 'transaction' ? 'send the statements of a transaction in one request; they are applied atomically' : 'session and PRAGMA settings are per connection and would differ between replicas'}`,
        );
      }
      const sql = dialect === 'sqlite' && (kind === 'write' || kind === 'ddl') ? pinSqliteNondeterminism(s.sql, ctx) : s.sql;
      return cmd.params && cmd.params.length > 0 ? { sql, params: cmd.params } : { sql };
    });
  }
}

export function toErrorInfo(err: unknown, fallback: ErrorInfo['code']): ErrorInfo {
  if (err instanceof SqlLexError) return errorInfo(ErrorCode.BAD_REQUEST, err.message);
  if (err instanceof ReplisqlError) return err.toInfo();
  return errorInfo(fallback, err instanceof Error ? err.message : String(err));
}

export type { StatementResult };
