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
//
// Interactive transactions (BEGIN ... COMMIT from a client session) take the same database
// transaction in turn with the batches: while one is open it holds the writer, its statements run
// one by one in savepoints as the client sends them, and COMMIT (which arrives through the write
// path as a TxnCommitCommand) logs its writes as one entry, committed like a batch of one. A
// transaction idle longer than `transactionIdleTimeoutMs` is rolled back, since it blocks every write.
// See docs/transactions.md.
import { randomBytes } from 'node:crypto';
import { ErrorCode, errorInfo, ReplisqlError, statementErrorInfo, toErrorInfo, UnsafeStatementError, type ErrorInfo } from '../errors.js';
import type { Entry, NodeId, PrepareRequest, ProposeItem } from '../core/types.js';
import { classifyScript, pinSqliteNondeterminism } from '../sql/index.js';
import type { SqlEngine, SqlValue, Statement, StatementResult } from '../storage/sql-engine.js';
import { decodeClientCommand, encodeReplicatedCommand, txnCommitKey, type WriteResult } from './command.js';
import { BoundedMap } from '../core/bounded-map.js';
import type { Logger } from '../util/logger-port.js';
import type { SerialQueue } from '../util/serial-queue.js';

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
  /** An open interactive transaction idle this long is rolled back (it holds the writer). Default 10 s. */
  readonly transactionIdleTimeoutMs?: number;
  /** At most this many interactive transactions wait for the writer; more are refused (OVERLOADED). Default 1000. */
  readonly maxWaitingTransactions?: number;
}

/** The outcome of one statement run inside an interactive transaction. */
export type TxnStatementOutcome =
  | { readonly ok: true; readonly result: StatementResult }
  | { readonly ok: false; readonly error: ErrorInfo; readonly aborted: boolean };

interface OpenTxn {
  readonly key: string;
  /** The writes that ran, pinned, in order: the entry COMMIT logs. */
  readonly logged: Statement[];
  busy: boolean;
  idleTimer: NodeJS.Timeout | null;
}

interface TxnWaiter {
  readonly key: string;
  readonly resolve: () => void;
  readonly reject: (err: ReplisqlError) => void;
}

export class WriteExecutor {
  private readonly waiting: PrepareRequest[] = [];
  private batch: OpenBatch | null = null;
  private executing = false;
  private readonly maxBatch: number;
  /** The interactive transaction holding the writer. */
  private txn: OpenTxn | null = null;
  private readonly txnWaiters: TxnWaiter[] = [];
  /** Why recent transactions ended without a commit, for the error their next statement gets. */
  private readonly endedTxns = new BoundedMap<string, string>(10_000);
  /** Alternates between batches and transactions when both wait, so neither starves. */
  private transactionTurn = false;

  constructor(private readonly opts: WriteExecutorOptions) {
    this.maxBatch = opts.maxBatchRequests ?? 256;
  }

  enqueue(requests: readonly PrepareRequest[]): void {
    for (const r of requests) {
      const key = txnCommitKey(r.command);
      if (key !== null) this.commitTransaction(r, key);
      else this.waiting.push(r);
    }
    this.pump();
  }

  /** Called whenever the applied index or the role may have changed. */
  pump(): void {
    if (this.executing || this.batch !== null || this.txn !== null) return;
    if (this.waiting.length === 0 && this.txnWaiters.length === 0) return;
    const host = this.opts.host;
    if (!host.isCoordinatorReady()) return;
    // The batch must start from the state after every logged entry.
    if (host.appliedIndex() !== host.lastLogIndex()) return;
    const takeTransaction = this.txnWaiters.length > 0 && (this.waiting.length === 0 || this.transactionTurn);
    this.transactionTurn = !takeTransaction;
    this.executing = true;
    if (takeTransaction) {
      const w = this.txnWaiters.shift() as TxnWaiter;
      this.opts.queue.push(() => this.openTransaction(w));
      return;
    }
    const requests = this.waiting.splice(0, this.maxBatch);
    this.opts.queue.push(() => this.executeBatch(requests));
  }

  // ------------------------------------------------------------------ interactive transactions

  /**
   * Resolves once transaction `key` holds the writer (a database transaction is open for it).
   * Rejects with NOT_COORDINATOR when this node is not a ready coordinator, OVERLOADED when too many wait.
   */
  beginTransaction(key: string): Promise<void> {
    if (!this.opts.host.isCoordinatorReady()) {
      return Promise.reject(new ReplisqlError(ErrorCode.NOT_COORDINATOR, 'this node is not the coordinator (or not ready yet)'));
    }
    if (this.txnWaiters.length >= (this.opts.maxWaitingTransactions ?? 1000)) {
      return Promise.reject(new ReplisqlError(ErrorCode.OVERLOADED, `more than ${this.opts.maxWaitingTransactions ?? 1000} transactions are waiting to start on the coordinator; retry later`));
    }
    return new Promise<void>((resolve, reject) => {
      this.txnWaiters.push({ key, resolve, reject });
      this.pump();
    });
  }

  /** Why transaction `key` is not open: its end reason, or a generic one. */
  private transactionGoneReason(key: string): string {
    return this.endedTxns.get(key) ?? 'the transaction is not open on the coordinator (it was rolled back, or the coordinator changed)';
  }

  /**
   * Runs one statement of transaction `key` in its own savepoint: a failing statement is undone
   * alone and the transaction goes on, as in MySQL. Reads see the transaction's own writes.
   */
  execInTransaction(key: string, sql: string, params: readonly SqlValue[]): Promise<TxnStatementOutcome> {
    const t = this.txn;
    if (t === null || t.key !== key) {
      return Promise.resolve({ ok: false, aborted: true, error: errorInfo(ErrorCode.TRANSACTION_ABORTED, this.transactionGoneReason(key)) });
    }
    if (t.busy) return Promise.resolve({ ok: false, aborted: false, error: errorInfo(ErrorCode.BAD_REQUEST, 'a statement of this transaction is still running') });
    t.busy = true;
    this.clearIdleTimer(t);
    return new Promise<TxnStatementOutcome>((resolve, reject) => {
      this.opts.queue.push(async () => {
        try {
          resolve(await this.runTransactionStatement(t, sql, params));
        } catch (err) {
          // The database failed: the transaction is gone with the connection.
          this.endTransaction(t, `the coordinator's database failed: ${(err as Error).message}`, false);
          reject(err);
          throw err;
        } finally {
          t.busy = false;
          if (this.txn === t) this.armIdleTimer(t);
        }
      });
    });
  }

  /** ROLLBACK of transaction `key` (a no-op when it is not open). */
  rollbackTransaction(key: string): void {
    const idx = this.txnWaiters.findIndex((w) => w.key === key);
    if (idx >= 0) {
      const [w] = this.txnWaiters.splice(idx, 1);
      w?.reject(new ReplisqlError(ErrorCode.TRANSACTION_ABORTED, 'rolled back before it started'));
    }
    const t = this.txn;
    if (t !== null && t.key === key) this.endTransaction(t, 'the transaction was rolled back', true);
  }

  private async openTransaction(w: TxnWaiter): Promise<void> {
    try {
      if (!this.opts.host.isCoordinatorReady()) throw new ReplisqlError(ErrorCode.NOT_COORDINATOR, 'this node stopped being coordinator');
      await this.opts.engine.beginBatch();
    } catch (err) {
      this.executing = false;
      w.reject(err instanceof ReplisqlError ? err : new ReplisqlError(ErrorCode.UNHEALTHY, `could not start the transaction: ${(err as Error).message}`));
      this.pump();
      return;
    }
    this.executing = false;
    const t: OpenTxn = { key: w.key, logged: [], busy: false, idleTimer: null };
    this.txn = t;
    this.armIdleTimer(t);
    w.resolve();
  }

  private async runTransactionStatement(t: OpenTxn, sql: string, params: readonly SqlValue[]): Promise<TxnStatementOutcome> {
    let statement: Statement;
    let logs: boolean;
    try {
      ({ statement, logs } = this.pinTransactionStatement(sql, params));
    } catch (err) {
      return { ok: false, aborted: false, error: toErrorInfo(err, ErrorCode.BAD_REQUEST) };
    }
    const res = await this.opts.engine.execInBatch([statement]);
    if (res.ok) {
      if (logs) t.logged.push(...(res.statements ?? [statement]));
      return { ok: true, result: res.results[0] ?? { columns: [], rows: [], affectedRows: 0, lastInsertId: null } };
    }
    if (res.statements !== undefined) {
      return { ok: false, aborted: false, error: errorInfo(ErrorCode.UNSAFE_STATEMENT, 'a schema change cannot run inside a transaction here; commit first (MySQL commits implicitly before DDL)') };
    }
    const error = statementErrorInfo(res.error);
    if (res.batchAborted) {
      // The statement rolled back the whole database transaction (SQLite ON CONFLICT ROLLBACK).
      this.endTransaction(t, `the statement rolled back the transaction: ${res.error.message}`, true);
      return { ok: false, aborted: true, error };
    }
    return { ok: false, aborted: false, error };
  }

  /** Classifies one statement of a transaction and pins it like an autocommit write. */
  private pinTransactionStatement(sql: string, params: readonly SqlValue[]): { statement: Statement; logs: boolean } {
    const dialect = this.opts.dialect ?? 'sqlite';
    const script = classifyScript(sql, { dialect });
    if (script.statements.length !== 1) throw new ReplisqlError(ErrorCode.BAD_REQUEST, 'a transaction statement must be exactly one SQL statement');
    const s = script.statements[0]!;
    const kind = s.class.kind;
    if (kind === 'session' || kind === 'transaction' || kind === 'empty') {
      throw new UnsafeStatementError(`${s.class.verb || 'statement'} cannot run inside a replicated transaction`);
    }
    if (kind === 'read') return { statement: params.length > 0 ? { sql: s.sql, params } : { sql: s.sql }, logs: false };
    const pinned = dialect === 'sqlite' ? pinSqliteNondeterminism(s.sql, this.pinContext()) : s.sql;
    return { statement: params.length > 0 ? { sql: pinned, params } : { sql: pinned }, logs: true };
  }

  /**
   * COMMIT of transaction `key`, arriving through the write path as a prepare request: logs its
   * writes as one entry; the request's outcome reaches the client when the entry reaches its ack level.
   */
  private commitTransaction(req: PrepareRequest, key: string): void {
    const t = this.txn;
    if (t === null || t.key !== key || t.busy) {
      const why = t !== null && t.key === key ? 'a statement of the transaction is still running' : this.transactionGoneReason(key);
      this.opts.host.prepareFailed(req.requestId, req.origin, errorInfo(ErrorCode.TRANSACTION_ABORTED, `cannot commit: ${why}; nothing of the transaction was committed`));
      return;
    }
    this.clearIdleTimer(t);
    this.txn = null;
    this.endedTxns.set(key, 'the transaction was committed');
    this.executing = true;
    this.opts.queue.push(async () => {
      this.executing = false;
      const result: WriteResult = { ok: true, results: [{ columns: [], rows: [], affectedRows: 0, lastInsertId: null }] };
      const [index] = this.opts.host.proposeAll([{ requestId: req.requestId, origin: req.origin, payload: encodeReplicatedCommand(t.logged), result }]);
      if (index === null || index === undefined) {
        // Not logged (lost the coordinator role): the core has answered the client already.
        await this.opts.engine.rollbackBatch();
        this.pump();
        return;
      }
      this.batch = { firstIndex: index, lastIndex: index, results: new Map([[index, result]]), committed: [] };
    });
  }

  /** Ends the open transaction without committing it; `rollback` also rolls back the database transaction. */
  private endTransaction(t: OpenTxn, reason: string, rollback: boolean): void {
    if (this.txn !== t) return;
    this.clearIdleTimer(t);
    this.txn = null;
    this.endedTxns.set(t.key, reason);
    if (!rollback) {
      this.pump();
      return;
    }
    this.opts.queue.push(async () => {
      await this.opts.engine.rollbackBatch();
      this.pump();
    });
  }

  private armIdleTimer(t: OpenTxn): void {
    const ms = this.opts.transactionIdleTimeoutMs ?? 10_000;
    t.idleTimer = setTimeout(() => {
      t.idleTimer = null;
      if (this.txn !== t || t.busy) return;
      this.opts.logger.warn({ key: t.key, idleMs: ms }, `rolled back an interactive transaction idle for more than ${ms} ms (it blocked every write)`);
      this.endTransaction(t, `the transaction was idle for more than ${ms} ms and was rolled back (transactionIdleTimeoutMs)`, true);
    }, ms);
    t.idleTimer.unref();
  }

  private clearIdleTimer(t: OpenTxn): void {
    if (t.idleTimer !== null) clearTimeout(t.idleTimer);
    t.idleTimer = null;
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
    for (const w of this.txnWaiters.splice(0)) w.reject(new ReplisqlError(ErrorCode.NOT_COORDINATOR, 'this node stopped being coordinator before the transaction started'));
    if (this.txn !== null) {
      this.opts.logger.info({ key: this.txn.key }, 'rolling back an open interactive transaction after losing the coordinator role');
      this.endTransaction(this.txn, 'the coordinator changed during the transaction; it was rolled back', true);
    }
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
    if (this.txn !== null) this.endTransaction(this.txn, "the coordinator's database connection was lost; the transaction was rolled back", false);
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
        statementErrorInfo(res.error),
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

  /** The coordinator's clock and randomness that SQLite statements are pinned to. */
  private pinContext(): { nowMs: number; random: () => bigint; randomBytes: (n: number) => Uint8Array } {
    return {
      nowMs: (this.opts.now ?? Date.now)(),
      random: () => randomBytes(8).readBigInt64BE(0),
      randomBytes: (n: number) => new Uint8Array(randomBytes(n)),
    };
  }

  /** Splits the script and pins non-deterministic functions to the coordinator's values. */
  private pin(commandText: string): Statement[] {
    const cmd = decodeClientCommand(commandText);
    if ('txnCommit' in cmd) throw new ReplisqlError(ErrorCode.BAD_REQUEST, 'a transaction commit cannot be part of a batch');
    const dialect = this.opts.dialect ?? 'sqlite';
    const script = classifyScript(cmd.sql, { dialect });
    if (script.statements.length === 0) throw new ReplisqlError(ErrorCode.BAD_REQUEST, 'empty statement');
    if (cmd.params && cmd.params.length > 0 && script.statements.length > 1) {
      throw new ReplisqlError(ErrorCode.BAD_REQUEST, 'parameters are only supported with a single statement per request');
    }
    const ctx = this.pinContext();
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

export type { StatementResult };
