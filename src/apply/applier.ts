// The database side of the node driver (its StateMachinePort): applies committed entries in
// order on the database queue, in bursts (one database transaction per burst, see
// engine.applyEntries), hands entries of the coordinator's own open batch to the write executor,
// survives database outages (reports SetHealthy, re-applies from the log when the database is
// back) and installs/builds snapshots. It reports back to the core through `feed`.
import type { ReplicatedLog } from '../core/log.js';
import type { Entry, Input, NodeId, SnapshotMeta } from '../core/types.js';
import type { StateMachinePort } from '../node/ports.js';
import type { ApplyResult, EntryToApply, SqlEngine } from '../storage/sql-engine.js';
import { LogRateLimiter, type Logger } from '../util/logger-port.js';
import type { SerialQueue } from '../util/serial-queue.js';
import { decodeReplicatedCommand, type WriteResult } from './command.js';
import { SnapshotFiles } from './snapshot-files.js';

/** At most this many entries, or about this many payload bytes, per database transaction when applying. */
const MAX_APPLY_BATCH_ENTRIES = 256;
const MAX_APPLY_BATCH_BYTES = 4 * 1024 * 1024;
/** Wait before reopening a failed database. */
const RECOVERY_DELAY_MS = 1000;

/** What the applier needs from the coordinator's write executor (declared here, by its user). */
export interface BatchOwner {
  /** True when entry `index` was executed in the open batch (its effects are in the open transaction). */
  ownsEntry(index: number): boolean;
  commitEntry(e: Entry): Promise<void>;
  /** The applied index or the role may have changed: start the next batch if it can. */
  pump(): void;
  /** The connection was reopened: the open transaction is gone. */
  forgetBatch(): void;
}

export interface ApplierOptions {
  readonly engine: SqlEngine;
  readonly queue: SerialQueue;
  readonly logger: Logger;
  readonly dataDir: string;
  readonly maxFrameBytes: number;
  /** The index the database has applied when the node starts (from its fencing row). */
  readonly appliedIndex: number;
  /** The core's log and commit index, read when re-applying after an outage. */
  readonly log: () => ReplicatedLog;
  readonly commitIndex: () => number;
  /** Called after every advance of the applied index (read-your-writes waiters). */
  readonly onApplied: (appliedIndex: number) => void;
}

export class DatabaseApplier implements StateMachinePort {
  private applied: number;
  private healthyState = true;
  private stopped = false;
  private readonly backlog: Entry[] = [];
  private applyScheduled = false;
  /** The one database recovery that is scheduled (a timer) or queued/running (see onDatabaseFailure). */
  private recovery: NodeJS.Timeout | 'queued' | null = null;
  private readonly failureLog = new LogRateLimiter(5000);
  private readonly snapshots: SnapshotFiles;
  private feed: (input: Input) => void = () => undefined;
  private owner: BatchOwner | null = null;

  constructor(private readonly opts: ApplierOptions) {
    this.applied = opts.appliedIndex;
    this.snapshots = new SnapshotFiles({ engine: opts.engine, dataDir: opts.dataDir, maxFrameBytes: opts.maxFrameBytes, logger: opts.logger });
  }

  /** Wires the core's input and the write executor (both are built after the applier). */
  connect(feed: (input: Input) => void, owner: BatchOwner): void {
    this.feed = feed;
    this.owner = owner;
  }

  appliedIndex(): number {
    return this.applied;
  }

  isHealthy(): boolean {
    return this.healthyState && this.opts.engine.isHealthy();
  }

  stop(): void {
    this.stopped = true;
    if (this.recovery !== null && this.recovery !== 'queued') clearTimeout(this.recovery);
  }

  // ------------------------------------------------------------------ StateMachinePort

  /**
   * Committed entries wait in the backlog; one task on the database queue applies everything
   * waiting when it runs, consecutive entries together, entries of the coordinator's own open
   * batch through the executor.
   */
  apply(entries: readonly Entry[]): void {
    this.backlog.push(...entries);
    if (this.applyScheduled) return;
    this.applyScheduled = true;
    this.opts.queue.push(() => this.applyBacklogged());
  }

  installSnapshot(meta: SnapshotMeta, data: string, installed: () => void): void {
    this.opts.queue.push(async () => {
      await this.snapshots.install(data);
      this.applied = meta.index;
      this.opts.onApplied(this.applied);
      installed();
    });
  }

  buildSnapshot(to: NodeId): void {
    this.opts.queue.push(async () => {
      const built = await this.snapshots.build(to);
      if (built !== null) this.feed({ type: 'SnapshotReady', to, index: built.index, data: built.data });
    });
  }

  // ------------------------------------------------------------------ applying

  private async applyBacklogged(): Promise<void> {
    this.applyScheduled = false;
    const owner = this.owner as BatchOwner;
    while (this.backlog.length > 0) {
      const e = this.backlog[0] as Entry;
      if (e.index <= this.applied) {
        this.backlog.shift();
        continue;
      }
      if (owner.ownsEntry(e.index)) {
        this.backlog.shift();
        await owner.commitEntry(e);
        continue;
      }
      const run: Entry[] = [];
      let bytes = 0;
      while (run.length < MAX_APPLY_BATCH_ENTRIES && bytes < MAX_APPLY_BATCH_BYTES && this.backlog.length > 0) {
        const next = this.backlog[0] as Entry;
        if (owner.ownsEntry(next.index)) break;
        this.backlog.shift();
        if (next.index <= this.applied) continue;
        run.push(next);
        bytes += next.payload.length;
      }
      try {
        await this.applyRun(run);
      } catch (err) {
        // Not applied: recovery re-applies from the log (and skips what the database has).
        this.backlog.length = 0;
        throw err;
      }
    }
  }

  /** Applies consecutive entries that are not in the coordinator's open batch, in one engine call. */
  private async applyRun(entries: readonly Entry[]): Promise<void> {
    if (entries.length === 1) {
      await this.applyOne(entries[0] as Entry);
      return;
    }
    if (entries.length === 0) return;
    const results = await this.opts.engine.applyEntries(entries.map(toApplyRequest));
    entries.forEach((e, i) => {
      const res = results[i];
      this.markApplied(e.index, res === undefined ? { ok: true, results: [] } : toWriteResult(res));
    });
  }

  /** Applies one entry outside any batch (also used by the executor for a rolled-back batch's committed entries). */
  readonly applyOne = async (e: Entry): Promise<void> => {
    if (e.index <= this.applied) return;
    const res = await this.opts.engine.applyEntry(toApplyRequest(e));
    this.markApplied(e.index, toWriteResult(res));
  };

  /** The database applied `index` (by this applier or by the executor's batch commit). */
  readonly markApplied = (index: number, result: WriteResult): void => {
    if (index > this.applied) this.applied = index;
    this.opts.onApplied(this.applied);
    if (!this.healthyState) this.becomeHealthy();
    this.feed({ type: 'Applied', index, result });
    this.owner?.pump();
  };

  private becomeHealthy(): void {
    this.healthyState = true;
    this.opts.logger.info({ event: 'database-healthy', appliedIndex: this.applied }, 'database healthy again');
    this.feed({ type: 'SetHealthy', healthy: true });
  }

  // ------------------------------------------------------------------ outages

  /**
   * A database task failed. While the database is down every queued task fails (one per committed
   * entry), so: the first failure of an outage is logged, later ones at most once per 5 s, and one
   * recovery at a time is scheduled (a recovery per failure made concurrent close()/open() calls on
   * the engine and thousands of reconnect attempts and log lines per second).
   */
  readonly onDatabaseFailure = (err: unknown): void => {
    const message = (err as Error)?.message ?? String(err);
    const outageStarts = this.healthyState;
    this.healthyState = false;
    // A coordinator without its database hands over; an unhealthy node does not run for coordinator.
    if (outageStarts) this.feed({ type: 'SetHealthy', healthy: false });
    const suppressed = this.failureLog.take('database');
    if (outageStarts || suppressed !== null) {
      const more = suppressed !== null && suppressed > 0 ? suppressed : 0;
      this.opts.logger.error(
        { event: 'database-failed', err: message, ...(more > 0 ? { suppressed: more } : {}) },
        `database operation failed: ${message}; the node keeps its place in the log and acknowledges nothing until the database recovers${more > 0 ? ` (${more} more failures since the last such line)` : ''}`,
      );
    }
    this.scheduleRecovery();
  };

  private scheduleRecovery(): void {
    if (this.stopped || this.recovery !== null) return;
    const timer = setTimeout(() => {
      this.recovery = 'queued';
      this.opts.queue.push(() => this.recoverDatabase());
    }, RECOVERY_DELAY_MS);
    timer.unref();
    this.recovery = timer;
  }

  /**
   * Runs on the database queue, so nothing else uses the engine meanwhile: reopens it if needed,
   * re-reads its applied state and applies, here and in order, every entry committed since (entries
   * queued behind this task are then skipped as applied). A failure goes back to onDatabaseFailure,
   * which schedules the next attempt.
   */
  private async recoverDatabase(): Promise<void> {
    if (this.stopped) {
      this.recovery = null;
      return;
    }
    try {
      const engine = this.opts.engine;
      if (!engine.isHealthy()) {
        await engine.close().catch(() => undefined);
        await engine.open();
        this.owner?.forgetBatch();
      }
      this.applied = (await engine.appliedState()).appliedIndex;
      const log = this.opts.log();
      for (let i = this.applied + 1; i <= this.opts.commitIndex(); i++) {
        const e = log.entry(i);
        if (e === undefined) break;
        await this.applyOne(e);
      }
    } finally {
      this.recovery = null;
    }
    // Healthy again even when there was nothing to apply (markApplied says so otherwise).
    if (!this.healthyState) this.becomeHealthy();
    this.owner?.pump();
  }
}

function toApplyRequest(e: Entry): EntryToApply {
  return { index: e.index, term: e.term, chainHash: e.chainHash, statements: e.kind === 'noop' ? [] : decodeReplicatedCommand(e.payload).stmts };
}

function toWriteResult(res: ApplyResult): WriteResult {
  if (res.skipped) return { ok: true, results: [] };
  return res.ok ? { ok: true, results: res.results } : { ok: false, error: { code: res.error.code, message: res.error.message } };
}
