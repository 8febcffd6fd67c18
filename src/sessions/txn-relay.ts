// Carries the statements of interactive transactions from the node a client is connected to, to
// the coordinator that runs them (and the results back), over the peer connections. It is a
// shell-level request/response beside the protocol core: nothing here is logged or replicated;
// only COMMIT is, through the ordinary write path (docs/transactions.md).
//
//   TXN        { type, callId, op: 'exec' | 'rollback', key, first?, sql?, params? }
//   TXN_REPLY  { type, callId, outcome: TxnStatementOutcome }
import type { NodeId } from '../core/types.js';
import { ErrorCode, errorInfo, parseErrorInfo, ReplisqlError } from '../errors.js';
import type { SqlValue } from '../storage/sql-engine.js';
import type { Logger } from '../util/logger-port.js';
import { LogRateLimiter } from '../util/logger-port.js';
import type { TxnStatementOutcome } from '../apply/write-executor.js';

/** The coordinator-side executor operations the relay uses (WriteExecutor implements them). */
export interface TransactionRunner {
  beginTransaction(key: string): Promise<void>;
  execInTransaction(key: string, sql: string, params: readonly SqlValue[]): Promise<TxnStatementOutcome>;
  rollbackTransaction(key: string): void;
}

export interface TxnRelayOptions {
  readonly selfId: NodeId;
  readonly runner: TransactionRunner;
  readonly send: (to: NodeId, frame: object) => void;
  readonly logger: Logger;
  /** A statement without an answer for this long counts as lost: the transaction is reported aborted. */
  readonly callTimeoutMs: number;
  readonly maxSqlBytes: number;
  readonly maxParams?: number;
  /** At most this many calls in flight from this node. */
  readonly maxPendingCalls?: number;
}

const MAX_KEY_LENGTH = 200;

interface PendingCall {
  readonly at: NodeId;
  readonly key: string;
  readonly resolve: (o: TxnStatementOutcome) => void;
  readonly timer: NodeJS.Timeout;
}

export function isTxnFrame(raw: unknown): boolean {
  if (typeof raw !== 'object' || raw === null) return false;
  const t = (raw as { type?: unknown }).type;
  return t === 'TXN' || t === 'TXN_REPLY';
}

export class TxnRelay {
  private nextCallId = 1;
  private readonly pending = new Map<number, PendingCall>();
  private readonly badFrameLog = new LogRateLimiter(5000);

  constructor(private readonly opts: TxnRelayOptions) {}

  /** Runs one statement of transaction `key` on coordinator `at` (this node or a peer). */
  exec(at: NodeId, key: string, first: boolean, sql: string, params: readonly SqlValue[]): Promise<TxnStatementOutcome> {
    if (at === this.opts.selfId) return this.serveExec(key, first, sql, params);
    if (this.pending.size >= (this.opts.maxPendingCalls ?? 10_000)) {
      return Promise.resolve({ ok: false, aborted: first, error: errorInfo(ErrorCode.OVERLOADED, 'too many transaction statements are in flight on this node; retry later') });
    }
    const callId = this.nextCallId++;
    return new Promise<TxnStatementOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(callId);
        this.rollback(at, key);
        resolve({
          ok: false,
          aborted: true,
          error: errorInfo(ErrorCode.TRANSACTION_ABORTED, `coordinator ${at} did not answer within ${this.opts.callTimeoutMs} ms; the transaction was rolled back`),
        });
      }, this.opts.callTimeoutMs);
      timer.unref();
      this.pending.set(callId, { at, key, resolve, timer });
      this.opts.send(at, { type: 'TXN', callId, op: 'exec', key, first, sql, ...(params.length > 0 ? { params } : {}) });
    });
  }

  /** Rolls back transaction `key` on coordinator `at`; fire and forget. */
  rollback(at: NodeId, key: string): void {
    if (at === this.opts.selfId) this.opts.runner.rollbackTransaction(key);
    else this.opts.send(at, { type: 'TXN', callId: 0, op: 'rollback', key });
  }

  /** The coordinator changed: calls in flight to another node will not be answered usefully. */
  coordinatorChanged(coordinator: NodeId | null): void {
    for (const [id, call] of this.pending) {
      if (call.at === coordinator) continue;
      this.pending.delete(id);
      clearTimeout(call.timer);
      call.resolve({ ok: false, aborted: true, error: errorInfo(ErrorCode.TRANSACTION_ABORTED, `the coordinator changed during the transaction (was node ${call.at}); it was rolled back`) });
    }
  }

  close(): void {
    this.coordinatorChanged(null);
  }

  /** A TXN or TXN_REPLY frame from a peer. */
  onFrame(from: NodeId, raw: unknown): void {
    const f = raw as Record<string, unknown>;
    if (f['type'] === 'TXN_REPLY') {
      const callId = f['callId'];
      const call = typeof callId === 'number' ? this.pending.get(callId) : undefined;
      if (call === undefined || call.at !== from) return; // timed out or not ours
      const outcome = validateOutcome(f['outcome']);
      if (outcome === null) {
        this.dropped(from, 'TXN_REPLY with a malformed outcome');
        return;
      }
      this.pending.delete(callId as number);
      clearTimeout(call.timer);
      call.resolve(outcome);
      return;
    }
    const op = f['op'];
    const key = f['key'];
    const callId = f['callId'];
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH || typeof callId !== 'number' || !Number.isSafeInteger(callId)) {
      this.dropped(from, 'TXN without a valid key or callId');
      return;
    }
    if (op === 'rollback') {
      this.opts.runner.rollbackTransaction(key);
      return;
    }
    if (op !== 'exec') {
      this.dropped(from, `TXN with unknown op ${JSON.stringify(op)}`);
      return;
    }
    const sql = f['sql'];
    const params = f['params'] ?? [];
    const reply = (outcome: TxnStatementOutcome): void => this.opts.send(from, { type: 'TXN_REPLY', callId, outcome });
    if (typeof sql !== 'string' || Buffer.byteLength(sql) > this.opts.maxSqlBytes) {
      reply({ ok: false, aborted: false, error: errorInfo(ErrorCode.BAD_REQUEST, `the statement must be a string of at most ${this.opts.maxSqlBytes} bytes`) });
      return;
    }
    if (!Array.isArray(params) || params.length > (this.opts.maxParams ?? 10_000)) {
      reply({ ok: false, aborted: false, error: errorInfo(ErrorCode.BAD_REQUEST, 'params must be an array of at most 10000 values') });
      return;
    }
    void this.serveExec(key, f['first'] === true, sql, params as SqlValue[]).then(reply);
  }

  /** Coordinator side: opens the transaction on its first statement, then runs the statement. */
  private async serveExec(key: string, first: boolean, sql: string, params: readonly SqlValue[]): Promise<TxnStatementOutcome> {
    const runner = this.opts.runner;
    if (first) {
      try {
        await runner.beginTransaction(key);
      } catch (err) {
        const e = err instanceof ReplisqlError ? err : new ReplisqlError(ErrorCode.UNHEALTHY, (err as Error).message);
        const code = e.code === ErrorCode.NOT_COORDINATOR || e.code === ErrorCode.SQL_ERROR ? ErrorCode.TRANSACTION_ABORTED : e.code;
        return { ok: false, aborted: true, error: errorInfo(code, `the transaction could not start on node ${this.opts.selfId}: ${e.message}`) };
      }
    }
    try {
      return await runner.execInTransaction(key, sql, params);
    } catch (err) {
      return { ok: false, aborted: true, error: errorInfo(ErrorCode.TRANSACTION_ABORTED, `the coordinator's database failed; the transaction was rolled back: ${(err as Error).message}`) };
    }
  }

  private dropped(from: NodeId, why: string): void {
    const suppressed = this.badFrameLog.take(String(from));
    if (suppressed !== null) this.opts.logger.warn({ from, suppressed }, `dropped a transaction frame from node ${from}: ${why}`);
  }
}

/** A TxnStatementOutcome from a peer, checked field by field; null when malformed. */
function validateOutcome(v: unknown): TxnStatementOutcome | null {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (o['ok'] === true) {
    const r = o['result'] as Record<string, unknown> | undefined;
    if (typeof r !== 'object' || r === null || !Array.isArray(r['columns']) || !Array.isArray(r['rows']) || typeof r['affectedRows'] !== 'number') return null;
    return { ok: true, result: r as never };
  }
  if (o['ok'] === false) {
    const error = parseErrorInfo(o['error']);
    if (typeof error === 'string') return null;
    return { ok: false, aborted: o['aborted'] === true, error };
  }
  return null;
}
