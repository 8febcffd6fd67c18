// Simulated implementations of the node driver's ports (src/node/ports.ts): a disk that loses
// what was not synced when the machine crashes, a database that applies in order after a delay,
// and a coordinator write path that prepares writes after a delay. The simulator composes the
// real NodeDriver with these, exactly as `replisql node` composes it with the real ones.
import { ReplicatedLog } from '../core/log.js';
import { sqlErrorInfo } from '../errors.js';
import { EMPTY_SNAPSHOT, type ClientReply, type Entry, type HardState, type Input, type NodeId, type PrepareRequest, type ProposeItem, type ReadIndexAnswer, type SnapshotMeta } from '../core/types.js';
import type { LogWriter, StateMachinePort, WritePort } from '../node/ports.js';
import type { Prng } from '../core/prng.js';
import { InvariantViolation, type InvariantChecker } from './invariants.js';
import { SimStateMachine } from './state-machine.js';

/** Thrown by a simulated disk that crashes the machine in the middle of an fsync. */
export class SimulatedCrash extends Error {
  constructor(readonly node: NodeId) {
    super(`node ${node} crashed during fsync`);
    this.name = 'SimulatedCrash';
  }
}

type PendingWrite = { readonly type: 'hardState'; readonly hardState: HardState } | { readonly type: 'truncate'; readonly from: number } | { readonly type: 'append'; readonly entries: readonly Entry[] };

/**
 * A node's disk. Writes are buffered until sync(); what was synced survives any crash. A process
 * kill keeps buffered writes (the OS has them); a machine crash during sync() (armed by
 * `crashDuringNextSync`) keeps a random prefix of the log writes and maybe the hard state (two
 * files), then throws SimulatedCrash.
 */
export class SimDisk implements LogWriter {
  hardState: HardState = { term: 0, votedFor: null };
  readonly log = new ReplicatedLog(EMPTY_SNAPSHOT, []);
  private pending: PendingWrite[] = [];
  private crashArmed = false;

  constructor(
    private readonly node: NodeId,
    private readonly rng: Prng,
  ) {}

  /** What a restarting node reads back. */
  contents(): { hardState: HardState; base: SnapshotMeta; entries: Entry[] } {
    const entries: Entry[] = [];
    for (let i = this.log.firstIndex(); i <= this.log.lastIndex(); i++) entries.push(this.log.entry(i) as Entry);
    return { hardState: this.hardState, base: this.log.base(), entries };
  }

  crashDuringNextSync(armed: boolean): void {
    this.crashArmed = armed;
  }

  /** A process kill: buffered writes reach the disk anyway. */
  flushOnKill(): void {
    for (const w of this.pending) this.write(w);
    this.pending = [];
  }

  saveHardState(hardState: HardState): void {
    this.pending.push({ type: 'hardState', hardState });
  }
  truncateFrom(index: number): void {
    this.pending.push({ type: 'truncate', from: index });
  }
  append(entries: readonly Entry[]): void {
    this.pending.push({ type: 'append', entries: [...entries] });
  }

  sync(): void {
    const pending = this.pending;
    this.pending = [];
    if (!this.crashArmed) {
      for (const w of pending) this.write(w);
      return;
    }
    // Machine crash mid-fsync: the hard state file and the log file each got some of the writes.
    this.crashArmed = false;
    const logUnits = pending.reduce((n, w) => n + (w.type === 'append' ? w.entries.length : w.type === 'truncate' ? 1 : 0), 0);
    let keep = this.rng.intUpTo(logUnits);
    const hardStateSurvives = this.rng.chance(0.5);
    for (const w of pending) {
      if (w.type === 'hardState') {
        if (hardStateSurvives) this.write(w);
      } else if (w.type === 'truncate') {
        if (keep > 0) this.write(w);
        keep--;
      } else {
        const n = Math.max(0, Math.min(keep, w.entries.length));
        if (n > 0) this.write({ type: 'append', entries: w.entries.slice(0, n) });
        keep -= w.entries.length;
      }
    }
    throw new SimulatedCrash(this.node);
  }

  compact(meta: SnapshotMeta): void {
    this.log.compactTo(meta);
  }

  resetTo(meta: SnapshotMeta): void {
    this.log.resetTo(meta);
  }

  private write(w: PendingWrite): void {
    if (w.type === 'hardState') this.hardState = w.hardState;
    else if (w.type === 'truncate') this.log.truncateFrom(w.from);
    else
      for (const e of w.entries) {
        if (e.index !== this.log.lastIndex() + 1) throw new InvariantViolation('log-contiguous', `node ${this.node} appends ${e.index} after ${this.log.lastIndex()}`);
        this.log.append(e);
      }
  }
}

/** Schedules simulated work: `after(delayMs, fn)` runs fn later unless the node crashed meanwhile. */
export type SimScheduler = (delayMs: number, fn: () => void) => void;

export interface SimDelays {
  /** Milliseconds one database task takes. */
  database(): number;
  /** Milliseconds the coordinator takes to prepare (execute) a write. */
  prepare(): number;
}

/**
 * The database: a SimStateMachine (durable across crashes, like a database whose fencing row is
 * written with the data) behind a FIFO of tasks, each taking `delays.database()` ms, so applies
 * lag behind commits as a real database's do (which is what the held-TAKEOVER rule is for).
 */
export class SimDatabase implements StateMachinePort {
  private readonly tasks: (() => void)[] = [];
  private running = false;

  constructor(
    private readonly node: NodeId,
    private readonly state: { sm: SimStateMachine },
    private readonly feed: (input: Input) => void,
    private readonly after: SimScheduler,
    private readonly delays: SimDelays,
    private readonly checker: InvariantChecker,
    private readonly stats: { duplicateEntriesSkipped: number; snapshotsInstalled: number },
  ) {}

  apply(entries: readonly Entry[]): void {
    const batch = [...entries];
    this.enqueue(() => {
      for (const e of batch) {
        const sm = this.state.sm;
        if (e.index <= sm.appliedIndex) continue;
        if (e.index !== sm.appliedIndex + 1) throw new InvariantViolation('apply-in-order', `node ${this.node} applies ${e.index} after ${sm.appliedIndex}`);
        const { result, duplicateOf } = sm.apply(e);
        if (duplicateOf !== null) this.stats.duplicateEntriesSkipped++;
        this.checker.checkApplied(this.node, e, sm.effectsOf(e.requestId));
        this.feed({ type: 'Applied', index: e.index, result });
      }
    });
  }

  installSnapshot(meta: SnapshotMeta, data: string, installed: () => void): void {
    this.enqueue(() => {
      const sm = SimStateMachine.restore(data);
      this.checker.checkSnapshot(this.node, meta.index, sm.appliedChainHash);
      this.state.sm = sm;
      this.stats.snapshotsInstalled++;
      installed();
    });
  }

  buildSnapshot(to: NodeId): void {
    this.enqueue(() => {
      const sm = this.state.sm;
      this.feed({ type: 'SnapshotReady', to, index: sm.appliedIndex, data: sm.serialize() });
    });
  }

  private enqueue(task: () => void): void {
    this.tasks.push(task);
    if (!this.running) this.runNext();
  }

  private runNext(): void {
    const task = this.tasks.shift();
    if (task === undefined) {
      this.running = false;
      return;
    }
    this.running = true;
    this.after(this.delays.database(), () => {
      task();
      this.runNext();
    });
  }
}

/**
 * The coordinator's write path: a command starting with `bad ` fails to prepare (an SQL error);
 * others are proposed after `delays.prepare()` ms, sometimes one by one, sometimes as a batch, as
 * the real executor sends them.
 */
export class SimWrites implements WritePort {
  constructor(
    private readonly feed: (input: Input) => void,
    private readonly after: SimScheduler,
    private readonly delays: SimDelays,
    private readonly rng: Prng,
    private readonly batching: boolean,
    private readonly onReply: (reply: ClientReply) => void,
    private readonly onReadIndex?: (answer: ReadIndexAnswer) => void,
  ) {}

  prepare(requests: readonly PrepareRequest[]): void {
    const batch: ProposeItem[] = [];
    for (const p of requests) {
      if (p.command.startsWith('bad ')) {
        this.after(this.delays.prepare(), () => this.feed({ type: 'PrepareFailed', requestId: p.requestId, origin: p.origin, error: sqlErrorInfo({ engineCode: 'SIM_CONSTRAINT' }, 'simulated SQL error') }));
      } else if (this.batching && this.rng.chance(0.5)) {
        batch.push({ requestId: p.requestId, origin: p.origin, payload: p.command, result: null });
      } else {
        this.after(this.delays.prepare(), () => this.feed({ type: 'Propose', requestId: p.requestId, origin: p.origin, payload: p.command, result: null }));
      }
    }
    if (batch.length > 0) this.after(this.delays.prepare(), () => this.feed({ type: 'ProposeBatch', items: batch }));
  }

  reply(reply: ClientReply): void {
    this.onReply(reply);
  }

  readIndex(answer: ReadIndexAnswer): void {
    this.onReadIndex?.(answer);
  }
}
