// SqlEngine on SQLite (better-sqlite3), run in worker threads so that no SQL ever blocks the node's
// event loop (heartbeats, elections) and a long read never delays applies.
//   - one write worker: the only read-write connection; FIFO; applies, batches, snapshot install;
//   - a pool of read workers (read-only connections, round robin): read(), dump(), snapshotTo().
// A worker that dies rejects every pending request and makes the engine unhealthy (close() + open()
// recovers). See docs/design-storage.md.
import { Worker } from 'node:worker_threads';
import { ConfigError, ErrorCode } from '../../errors.js';
import { EngineLifecycle, intOption, ReadGate } from '../engine-lifecycle.js';
import {
  EngineCode,
  SqlEngineError,
  type AppliedState,
  type ApplyResult,
  type BatchExecResult,
  type EntryToApply,
  type SqlEngine,
  type Statement,
  type StatementDescription,
  type StatementResult,
} from '../sql-engine.js';
import type { ConnectionRole, OpenArgs, WorkerFailure, WorkerOp, WorkerOps, WorkerRequest, WorkerResponse } from './sqlite-protocol.js';

export interface SqliteEngineOptions {
  /** Database file (created if missing). */
  readonly path: string;
  /** How long a connection waits for a lock held by another connection. Default 5000. */
  readonly busyTimeoutMs?: number;
  /** Read connections, each in its own worker. Default 1, at most 64. */
  readonly readWorkers?: number;
  /** A read() running longer is rejected and its worker replaced (SQLite cannot interrupt it otherwise). 0 = no limit. Default 60000. */
  readonly readTimeoutMs?: number;
  /** Bound on requests waiting for one worker; more are rejected with OVERLOADED. Default 10000. */
  readonly maxQueuedRequests?: number;
  /** Bound on the rows one statement may return. Default 1000000. */
  readonly maxResultRows?: number;
  /** Prepared statements cached per connection. Default 256. */
  readonly statementCacheSize?: number;
}

interface Pending {
  readonly msg: WorkerRequest;
  readonly timeoutMs: number;
  timer: NodeJS.Timeout | null;
  readonly resolve: (value: unknown) => void;
  readonly fail: (f: WorkerFailure | SqlEngineError) => void;
}

/** Starts a worker from dist/ (compiled .js) or, under tsx (tests, dev), from the .ts source. */
function startWorker(): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./sqlite-worker.js', here));
  // Node 20 ignores `--import tsx` in a Worker's execArgv (nodejs/node#47747): register tsx's loader
  // from inside the worker, then import the TypeScript entry.
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./sqlite-worker.ts', here).href;
  const code = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true });
}

class WorkerHandle {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();
  /** Set when we stop the worker ourselves: its exit is not a crash. */
  retired = false;
  private lastError: Error | null = null;

  constructor(
    readonly role: ConnectionRole,
    readonly label: string,
    onCrash: (h: WorkerHandle, reason: string) => void,
    private readonly onTimeout: (h: WorkerHandle, p: Pending) => void,
  ) {
    this.worker = startWorker();
    this.worker.on('message', (m: WorkerResponse) => this.onMessage(m));
    this.worker.on('error', (e: Error) => {
      this.lastError = e;
    });
    this.worker.on('messageerror', (e: Error) => {
      this.lastError = e;
    });
    this.worker.on('exit', (code: number) => {
      if (this.retired) {
        this.rejectAll(new SqlEngineError(ErrorCode.UNHEALTHY, EngineCode.NOT_OPEN, `sqlite ${this.label} worker was stopped`));
        return;
      }
      const why = this.lastError ? `: ${this.lastError.message}` : '';
      onCrash(this, `sqlite ${this.label} worker exited unexpectedly (exit code ${code})${why}`);
    });
  }

  send(p: Pending): void {
    this.pending.set(p.msg.id, p);
    this.worker.postMessage(p.msg);
    this.armHead();
  }

  /**
   * The worker serves requests one at a time, in order: only the oldest pending request is running,
   * so only its timeout clock runs (time spent queued, or waiting for a worker to start, is not counted).
   */
  private armHead(): void {
    const head = this.pending.values().next().value;
    if (head !== undefined && head.timeoutMs > 0 && head.timer === null) {
      head.timer = setTimeout(() => this.onTimeout(this, head), head.timeoutMs);
    }
  }

  /** Removes and returns every pending request (timers cleared), in send order. */
  takeAll(): Pending[] {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      if (p.timer !== null) clearTimeout(p.timer);
      p.timer = null;
    }
    return all;
  }

  rejectAll(err: SqlEngineError): void {
    for (const p of this.takeAll()) p.fail(err);
  }

  stop(): Promise<number> {
    this.retired = true;
    return this.worker.terminate();
  }

  private onMessage(m: WorkerResponse): void {
    const p = this.pending.get(m.id);
    if (p === undefined) return; // already rejected (timeout, crash)
    this.pending.delete(m.id);
    if (p.timer !== null) clearTimeout(p.timer);
    this.armHead();
    if (m.ok) p.resolve(m.value);
    else p.fail(m.error);
  }
}

function toEngineError(f: WorkerFailure): SqlEngineError {
  switch (f.kind) {
    case 'statement':
      return new SqlEngineError(ErrorCode.SQL_ERROR, f.code, f.message);
    case 'misuse':
      return new SqlEngineError(ErrorCode.INTERNAL, f.code, f.message);
    case 'environment':
      return new SqlEngineError(f.fatal ? ErrorCode.UNHEALTHY : ErrorCode.SQL_ERROR, f.code, f.message);
  }
}

const positiveInt = (name: string, v: number | undefined, dflt: number, min: number, max: number): number => intOption('sqlite engine', name, v, dflt, min, max);

let nextRequestId = 1;

export class SqliteEngine implements SqlEngine {
  private readonly path: string;
  private readonly busyTimeoutMs: number;
  private readonly readWorkerCount: number;
  private readonly readTimeoutMs: number;
  private readonly maxQueuedRequests: number;
  private readonly maxResultRows: number;
  private readonly statementCacheSize: number;

  private readonly life = new EngineLifecycle();
  private failure: string | null = null;
  private writer: WorkerHandle | null = null;
  private readers: WorkerHandle[] = [];
  private nextReader = 0;
  /** Committed fencing row; every change of it goes through this object, in write-worker order. */
  private state: AppliedState | null = null;
  /** Shut while a snapshot is being installed: read-pool requests wait. */
  private readonly readGate = new ReadGate();

  constructor(opts: SqliteEngineOptions) {
    if (typeof opts?.path !== 'string' || opts.path === '') throw new ConfigError('sqlite engine: path must be a non-empty string');
    this.path = opts.path;
    this.busyTimeoutMs = positiveInt('busyTimeoutMs', opts.busyTimeoutMs, 5000, 0, 600_000);
    this.readWorkerCount = positiveInt('readWorkers', opts.readWorkers, 1, 1, 64);
    this.readTimeoutMs = positiveInt('readTimeoutMs', opts.readTimeoutMs, 60_000, 0, 86_400_000);
    this.maxQueuedRequests = positiveInt('maxQueuedRequests', opts.maxQueuedRequests, 10_000, 1, 1_000_000);
    this.maxResultRows = positiveInt('maxResultRows', opts.maxResultRows, 1_000_000, 1, 100_000_000);
    this.statementCacheSize = positiveInt('statementCacheSize', opts.statementCacheSize, 256, 1, 100_000);
  }

  // ---------------------------------------------------------------- lifecycle

  async open(): Promise<void> {
    if (this.life.status !== 'closed') throw this.misuse(`open() while ${this.life.status}`);
    this.life.status = 'opening';
    this.failure = null;
    try {
      this.writer = this.spawn('write', 'write');
      this.state = (await this.call(this.writer, 'open', this.openArgs('write'))) as AppliedState;
      this.readers = [];
      for (let i = 0; i < this.readWorkerCount; i++) this.readers.push(this.spawn('read', `read#${i}`));
      await Promise.all(this.readers.map((h) => this.call(h, 'open', this.openArgs('read'))));
      if (this.failure !== null) throw new SqlEngineError(ErrorCode.UNHEALTHY, EngineCode.UNHEALTHY, this.failure);
      this.life.status = 'open';
    } catch (e) {
      await this.stopAll();
      this.life.status = 'closed';
      throw e;
    }
  }

  close(): Promise<void> {
    return this.life.close(() => this.doClose());
  }

  private async doClose(): Promise<void> {
    if (this.failure === null) {
      // Read connections: close politely but do not wait behind a long query (terminating is safe for
      // a read-only connection). The write connection: close cleanly (checkpoint, roll back a batch).
      const grace = new Promise<void>((r) => setTimeout(r, 1000).unref());
      await Promise.all(this.readers.map((h) => Promise.race([this.call(h, 'close', null).catch(() => null), grace])));
      if (this.writer !== null) await this.call(this.writer, 'close', null).catch(() => null);
    }
    await this.stopAll();
  }

  private async stopAll(): Promise<void> {
    const readers = this.readers;
    const writer = this.writer;
    this.readers = [];
    this.writer = null;
    for (const h of readers) void h.stop();
    if (writer !== null) await writer.stop();
  }

  isHealthy(): boolean {
    return this.life.status === 'open' && this.failure === null;
  }

  /** Fault injection for tests: makes a worker exit as if it crashed; resolves once the engine noticed. */
  async injectWorkerCrash(target: 'write' | 'read', readerIndex = 0): Promise<void> {
    this.ready();
    const h = target === 'write' ? this.writer : this.readers[readerIndex];
    if (h === undefined || h === null) throw this.misuse(`no ${target} worker #${readerIndex}`);
    await this.call(h, 'crash', null).catch(() => undefined);
  }

  // ---------------------------------------------------------------- reads

  async read(statements: readonly Statement[]): Promise<StatementResult[]> {
    const h = await this.readWorker();
    return (await this.call(h, 'read', { statements }, this.readTimeoutMs)) as StatementResult[];
  }

  async describeStatement(sql: string): Promise<StatementDescription> {
    const h = await this.readWorker();
    return (await this.call(h, 'describe', { sql }, this.readTimeoutMs)) as StatementDescription;
  }

  async dump(): Promise<string> {
    const h = await this.readWorker();
    return (await this.call(h, 'dump', null)) as string;
  }

  async snapshotTo(path: string): Promise<AppliedState> {
    const h = await this.readWorker();
    return (await this.call(h, 'snapshotTo', { path })) as AppliedState;
  }

  async appliedState(): Promise<AppliedState> {
    this.ready();
    return this.state!;
  }

  // ---------------------------------------------------------------- writes

  async applyEntry(e: EntryToApply): Promise<ApplyResult> {
    const out = (await this.call(this.ready(), 'applyEntry', { entry: e })) as WorkerOps['applyEntry']['result'];
    this.state = out.state;
    return out.result;
  }

  async applyEntries(entries: readonly EntryToApply[]): Promise<ApplyResult[]> {
    const out = (await this.call(this.ready(), 'applyEntries', { entries })) as WorkerOps['applyEntries']['result'];
    this.state = out.state;
    return out.results;
  }

  async beginBatch(): Promise<void> {
    await this.call(this.ready(), 'beginBatch', null);
  }

  async execInBatch(statements: readonly Statement[]): Promise<BatchExecResult> {
    return (await this.call(this.ready(), 'execInBatch', { statements })) as BatchExecResult;
  }

  async commitBatch(fence: AppliedState): Promise<void> {
    this.state = (await this.call(this.ready(), 'commitBatch', { fence })) as AppliedState;
  }

  async rollbackBatch(): Promise<void> {
    await this.call(this.ready(), 'rollbackBatch', null);
  }

  async installSnapshot(path: string): Promise<AppliedState> {
    const writer = this.ready();
    return this.readGate.shutWhile(
      async () => {
        // Read connections must be closed: the write connection, closing last, removes the WAL before
        // the file is swapped. Reads queued before this point finish first (workers are FIFO).
        await Promise.all(this.readers.map((h) => this.call(h, 'close', null)));
        try {
          this.state = (await this.call(writer, 'installSnapshot', { path })) as AppliedState;
          return this.state;
        } finally {
          if (this.failure === null) await Promise.all(this.readers.map((h) => this.call(h, 'open', this.openArgs('read'))));
        }
      },
      () => this.misuse('a snapshot install is already running'),
    );
  }

  // ---------------------------------------------------------------- plumbing

  private openArgs(role: ConnectionRole): OpenArgs {
    return {
      path: this.path,
      role,
      busyTimeoutMs: this.busyTimeoutMs,
      maxResultRows: this.maxResultRows,
      statementCacheSize: this.statementCacheSize,
    };
  }

  private spawn(role: ConnectionRole, label: string): WorkerHandle {
    return new WorkerHandle(
      role,
      label,
      (_h, reason) => this.markUnhealthy(reason, EngineCode.WORKER_EXITED),
      (h, p) => this.onReadTimeout(h, p),
    );
  }

  private misuse(message: string): SqlEngineError {
    return new SqlEngineError(ErrorCode.INTERNAL, this.life.status === 'open' ? EngineCode.INTERNAL : EngineCode.NOT_OPEN, `sqlite engine: ${message}`);
  }

  /** The write worker, if the engine can take requests; throws otherwise. */
  private ready(): WorkerHandle {
    if (this.failure !== null) throw new SqlEngineError(ErrorCode.UNHEALTHY, EngineCode.UNHEALTHY, `sqlite engine is unhealthy: ${this.failure}`);
    if (this.life.status !== 'open' || this.writer === null) {
      throw new SqlEngineError(ErrorCode.INTERNAL, EngineCode.NOT_OPEN, `sqlite engine is ${this.life.status}`);
    }
    return this.writer;
  }

  private async readWorker(): Promise<WorkerHandle> {
    this.ready();
    while (this.readGate.shut !== null) await this.readGate.shut;
    this.ready();
    const h = this.readers[this.nextReader % this.readers.length]!;
    this.nextReader = (this.nextReader + 1) % this.readers.length;
    return h;
  }

  private call<K extends WorkerOp>(h: WorkerHandle, op: K, args: WorkerOps[K]['args'], timeoutMs = 0): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      if (this.failure !== null) {
        reject(new SqlEngineError(ErrorCode.UNHEALTHY, EngineCode.UNHEALTHY, `sqlite engine is unhealthy: ${this.failure}`));
        return;
      }
      if (h.pending.size >= this.maxQueuedRequests) {
        reject(new SqlEngineError(ErrorCode.OVERLOADED, EngineCode.QUEUE_FULL, `sqlite ${h.label} worker has ${h.pending.size} requests queued`));
        return;
      }
      const msg = { id: nextRequestId++, op, args } as WorkerRequest;
      h.send({
        msg,
        timeoutMs,
        timer: null,
        resolve,
        fail: (f) => {
          if (f instanceof SqlEngineError) {
            reject(f);
            return;
          }
          const err = toEngineError(f);
          if (f.fatal === true) this.markUnhealthy(`${op} failed: ${f.code}: ${f.message}`, f.code);
          reject(err);
        },
      });
    });
  }

  /** A read overran readTimeoutMs: reject it, replace its worker, move the other queued requests over. */
  private onReadTimeout(h: WorkerHandle, p: Pending): void {
    const idx = this.readers.indexOf(h);
    if (idx < 0 || !h.pending.has(p.msg.id)) return;
    h.pending.delete(p.msg.id);
    p.timer = null;
    const rest = h.takeAll();
    void h.stop();
    p.fail(
      new SqlEngineError(
        ErrorCode.SQL_ERROR,
        EngineCode.READ_TIMEOUT,
        `read did not finish within ${p.timeoutMs} ms and was abandoned (its read worker was replaced)`,
      ),
    );
    const fresh = this.spawn('read', h.label);
    this.readers[idx] = fresh;
    this.call(fresh, 'open', this.openArgs('read')).catch((e: Error) => this.markUnhealthy(`replacement read worker: ${e.message}`, EngineCode.UNHEALTHY));
    for (const q of rest) fresh.send(q);
  }

  private markUnhealthy(reason: string, engineCode: string): void {
    if (this.failure !== null) return;
    this.failure = reason;
    const err = new SqlEngineError(ErrorCode.UNHEALTHY, engineCode, `${reason}; the sqlite engine is unhealthy (close() and open() it to recover)`);
    for (const h of [this.writer, ...this.readers]) {
      if (h === null) continue;
      h.rejectAll(err);
      void h.stop();
    }
  }
}
