// Deterministic simulation of N protocol cores in one process, from one seed.
// The network delays, drops, duplicates, reorders and corrupts messages and can be partitioned
// (symmetric, asymmetric, partial); nodes crash (sometimes in the middle of persisting a Ready),
// restart from what reached their simulated disk, and pause. Invariants are checked after every
// event; after the fault phase everything heals and the cluster must converge in bounded time.
import { ErrorCode } from '../errors.js';
import { CoreNode } from '../core/node.js';
import { Prng } from '../core/prng.js';
import { defaultCoreConfig, EMPTY_SNAPSHOT, type ProposeItem, type AckLevel, type CoreConfig, type Entry, type HardState, type Input, type Message, type NodeId, type Ready, type SnapshotMeta, type UnsafeFlags } from '../core/types.js';
import { EventQueue } from './event-queue.js';
import { InvariantChecker, InvariantViolation } from './invariants.js';
import { SimStateMachine } from './state-machine.js';

export const TICK_MS = 100;
/** A run that needs more events than this is stuck in a storm or livelock. */
export const MAX_EVENTS_PER_RUN = 3_000_000;

export interface FaultProfile {
  readonly dropProbability: number;
  readonly duplicateProbability: number;
  readonly corruptProbability: number;
  readonly reorderProbability: number;
  /** Mean milliseconds between fault actions (partition, crash, pause, heal). */
  readonly faultEveryMs: number;
  /** Mean milliseconds between client writes. */
  readonly writeEveryMs: number;
}

export const DEFAULT_FAULTS: FaultProfile = {
  dropProbability: 0.03,
  duplicateProbability: 0.02,
  corruptProbability: 0.01,
  reorderProbability: 0.05,
  faultEveryMs: 2500,
  writeEveryMs: 60,
};

export interface SimOptions {
  readonly seed: number;
  readonly nodes: number;
  /** Ticks (100 ms each) of the fault phase. */
  readonly steps: number;
  /** Ticks allowed for convergence after healing. */
  readonly healTicks?: number;
  readonly faults?: FaultProfile;
  readonly unsafe?: UnsafeFlags;
  readonly core?: Partial<CoreConfig>;
  /** Record a line per notable event (for --verbose and for replay comparisons). */
  readonly trace?: boolean;
}

export interface SimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly violation: { readonly invariant: string; readonly detail: string; readonly atMs: number } | null;
  readonly stats: SimStats;
  /** FNV-1a over every processed event: equal for equal seeds. */
  readonly fingerprint: string;
  readonly trace: readonly string[];
}

export interface SimStats {
  events: number;
  messagesSent: number;
  messagesDropped: number;
  writesSubmitted: number;
  writesAcknowledged: number;
  writesFailed: number;
  elections: number;
  crashes: number;
  snapshotsInstalled: number;
  checksumMismatches: number;
  /** Entries whose request id was already applied: skipped by the state machine. */
  duplicateEntriesSkipped: number;
  committedIndex: number;
  convergedAfterMs: number | null;
}

/** Core timing used in simulation: the same protocol, faster clocks (heartbeat 200 ms, failure 1 s). */
export function simCoreConfig(id: NodeId, ids: readonly NodeId[], seed: number, overrides: Partial<CoreConfig> = {}): CoreConfig {
  return defaultCoreConfig(id, ids, {
    heartbeatIntervalTicks: 2,
    failureTimeoutTicks: 10,
    electionStaggerTicks: 3,
    electionJitterTicks: 2,
    electionTimeoutTicks: 6,
    writeTimeoutTicks: 60,
    coordinatorWaitTicks: 40,
    maxEntriesPerMessage: 16,
    maxBytesPerMessage: 4096,
    maxInflightMessages: 4,
    logRetentionEntries: 40,
    compactionBatchEntries: 20,
    seed,
    ...overrides,
  });
}

type SimEvent =
  | { readonly type: 'tick'; readonly node: NodeId; readonly incarnation: number }
  | { readonly type: 'deliver'; readonly from: NodeId; readonly to: NodeId; readonly msg: Message }
  | { readonly type: 'input'; readonly node: NodeId; readonly incarnation: number; readonly input: Input }
  | { readonly type: 'fault' }
  | { readonly type: 'write' }
  | { readonly type: 'restart'; readonly node: NodeId }
  | { readonly type: 'unpause'; readonly node: NodeId }
  | { readonly type: 'heal-partition'; readonly generation: number };

interface SimDisk {
  hardState: HardState;
  base: SnapshotMeta;
  entries: Entry[];
}

interface SimNode {
  readonly id: NodeId;
  core: CoreNode | null;
  incarnation: number;
  disk: SimDisk;
  sm: SimStateMachine;
  pausedUntil: number | null;
  inbox: { from: NodeId; msg: Message }[];
  tornCrashPending: boolean;
  lastCheckedCommit: number;
}

interface ClientRequestState {
  readonly ack: AckLevel;
  readonly command: string;
  outcomes: number;
}

export class Simulator {
  private readonly rng: Prng;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly ids: NodeId[];
  private readonly faults: FaultProfile;
  private readonly checker = new InvariantChecker();
  private readonly requests = new Map<string, ClientRequestState>();
  private readonly blocked = new Set<string>(); // "from>to"
  private partitionGeneration = 0;
  private now = 0;
  private writeCounter = 0;
  private healed = false;
  private lossyNetwork = true;
  private fingerprint = 0x811c9dc5;
  private readonly traceLines: string[] = [];
  readonly stats: SimStats = {
    events: 0,
    messagesSent: 0,
    messagesDropped: 0,
    writesSubmitted: 0,
    writesAcknowledged: 0,
    writesFailed: 0,
    elections: 0,
    crashes: 0,
    snapshotsInstalled: 0,
    checksumMismatches: 0,
    duplicateEntriesSkipped: 0,
    committedIndex: 0,
    convergedAfterMs: null,
  };

  constructor(private readonly opts: SimOptions) {
    this.rng = new Prng(opts.seed * 2654435761 + 1);
    this.faults = opts.faults ?? DEFAULT_FAULTS;
    this.ids = Array.from({ length: opts.nodes }, (_, i) => i + 1);
    for (const id of this.ids) {
      const node: SimNode = {
        id,
        core: null,
        incarnation: 0,
        disk: { hardState: { term: 0, votedFor: null }, base: EMPTY_SNAPSHOT, entries: [] },
        sm: new SimStateMachine(),
        pausedUntil: null,
        inbox: [],
        tornCrashPending: false,
        lastCheckedCommit: 0,
      };
      this.nodes.set(id, node);
      this.start(node);
    }
  }

  // ------------------------------------------------------------------ running

  run(): SimResult {
    const faultEndMs = this.opts.steps * TICK_MS;
    const healEndMs = faultEndMs + (this.opts.healTicks ?? 400) * TICK_MS;
    this.queue.push(this.expDelay(this.faults.faultEveryMs), { type: 'fault' });
    this.queue.push(this.expDelay(this.faults.writeEveryMs), { type: 'write' });
    let violation: SimResult['violation'] = null;
    let probe: string | null = null;
    try {
      for (;;) {
        const ev = this.queue.pop();
        if (ev === undefined) break;
        this.now = ev.time;
        if (!this.healed && this.now >= faultEndMs) {
          this.healEverything();
          probe = this.submitWrite(this.ids[this.rng.intUpTo(this.ids.length - 1)] as NodeId, 'quorum', 'probe');
        }
        if (this.now >= healEndMs) {
          throw new InvariantViolation('converges-after-heal', `no convergence ${this.opts.healTicks ?? 400} ticks after healing: ${this.describe()}`);
        }
        this.process(ev.value);
        if (this.stats.events > MAX_EVENTS_PER_RUN) {
          throw new InvariantViolation('bounded-work', `more than ${MAX_EVENTS_PER_RUN} events (a message storm or livelock): ${this.describe()}`);
        }
        if (this.healed && probe !== null && this.converged(probe)) {
          this.stats.convergedAfterMs = this.now - faultEndMs;
          this.finalChecks();
          break;
        }
      }
    } catch (err) {
      if (err instanceof InvariantViolation) violation = { invariant: err.invariant, detail: err.detail, atMs: this.now };
      else violation = { invariant: 'no-crash', detail: (err as Error).stack ?? String(err), atMs: this.now };
    }
    this.stats.committedIndex = this.checker.maxCommitted;
    return {
      seed: this.opts.seed,
      ok: violation === null,
      violation,
      stats: this.stats,
      fingerprint: (this.fingerprint >>> 0).toString(16).padStart(8, '0'),
      trace: this.traceLines,
    };
  }

  private process(ev: SimEvent): void {
    this.stats.events++;
    this.mix(ev.type);
    switch (ev.type) {
      case 'tick': {
        const node = this.nodes.get(ev.node) as SimNode;
        if (node.core === null || node.incarnation !== ev.incarnation) return;
        this.queue.push(this.now + TICK_MS, ev);
        if (node.pausedUntil !== null) return;
        this.stepNode(node, { type: 'Tick' });
        return;
      }
      case 'deliver': {
        const node = this.nodes.get(ev.to) as SimNode;
        if (node.core === null) return;
        this.mix(ev.from * 31 + ev.to);
        if (node.pausedUntil !== null) {
          if (node.inbox.length < 10_000) node.inbox.push({ from: ev.from, msg: ev.msg });
          return;
        }
        this.stepNode(node, { type: 'Receive', from: ev.from, msg: ev.msg });
        return;
      }
      case 'input': {
        const node = this.nodes.get(ev.node) as SimNode;
        if (node.core === null || node.incarnation !== ev.incarnation) return;
        if (node.pausedUntil !== null) {
          this.queue.push(node.pausedUntil + 1, ev);
          return;
        }
        this.stepNode(node, ev.input);
        return;
      }
      case 'fault':
        if (this.healed) return;
        this.injectFault();
        this.queue.push(this.now + this.expDelay(this.faults.faultEveryMs), { type: 'fault' });
        return;
      case 'write':
        if (this.healed) return;
        this.randomWrite();
        this.queue.push(this.now + this.expDelay(this.faults.writeEveryMs), { type: 'write' });
        return;
      case 'restart': {
        const node = this.nodes.get(ev.node) as SimNode;
        if (node.core === null) this.start(node);
        return;
      }
      case 'unpause': {
        const node = this.nodes.get(ev.node) as SimNode;
        this.unpause(node);
        return;
      }
      case 'heal-partition':
        if (ev.generation === this.partitionGeneration) this.blocked.clear();
        return;
    }
  }

  // ------------------------------------------------------------------ nodes

  private start(node: SimNode): void {
    node.incarnation++;
    const overrides = { ...this.opts.core, ...(this.opts.unsafe ? { unsafe: this.opts.unsafe } : {}) };
    node.core = new CoreNode(simCoreConfig(node.id, this.ids, this.opts.seed * 1000 + node.id * 17 + node.incarnation, overrides), {
      hardState: node.disk.hardState,
      base: node.disk.base,
      entries: node.disk.entries,
      appliedIndex: node.sm.appliedIndex,
    });
    node.pausedUntil = null;
    node.inbox = [];
    node.tornCrashPending = false;
    node.lastCheckedCommit = node.core.status().commitIndex;
    this.trace(`n${node.id} start incarnation ${node.incarnation} (term ${node.disk.hardState.term}, log ${node.disk.base.index}+${node.disk.entries.length}, applied ${node.sm.appliedIndex})`);
    this.queue.push(this.now + 1 + this.rng.intUpTo(TICK_MS - 1), { type: 'tick', node: node.id, incarnation: node.incarnation });
  }

  private crash(node: SimNode, why: string): void {
    if (node.core === null) return;
    node.core = null;
    node.inbox = [];
    node.pausedUntil = null;
    this.stats.crashes++;
    this.trace(`n${node.id} crash (${why})`);
  }

  private unpause(node: SimNode): void {
    if (node.pausedUntil === null) return;
    node.pausedUntil = null;
    const inbox = node.inbox;
    node.inbox = [];
    this.trace(`n${node.id} resumes with ${inbox.length} queued messages`);
    for (const m of inbox) {
      if (node.core === null) return;
      this.stepNode(node, { type: 'Receive', from: m.from, msg: m.msg });
    }
  }

  private stepNode(node: SimNode, input: Input): void {
    const core = node.core as CoreNode;
    const ready = core.step(input);
    this.carryOut(node, ready);
    if (node.core !== null) this.checkNode(node);
  }

  /** The simulated shell: what the real node runtime does with a Ready, in the same order. */
  private carryOut(node: SimNode, ready: Ready): void {
    const disk = node.disk;
    this.checkNode(node);
    if (node.tornCrashPending && (ready.entriesToAppend.length > 0 || ready.hardState !== null)) {
      // Crash while persisting: a random prefix reaches the disk, nothing is sent or applied.
      if (ready.hardState !== null && this.rng.chance(0.5)) disk.hardState = ready.hardState;
      if (ready.truncateFrom !== null) disk.entries = disk.entries.filter((e) => e.index < (ready.truncateFrom as number));
      const keep = this.rng.intUpTo(ready.entriesToAppend.length);
      disk.entries.push(...ready.entriesToAppend.slice(0, Math.max(0, keep - 1)));
      this.crash(node, 'torn write');
      this.queue.push(this.now + 500 + this.rng.intUpTo(3000), { type: 'restart', node: node.id });
      return;
    }
    // 1. persist
    if (ready.hardState !== null) disk.hardState = ready.hardState;
    if (ready.truncateFrom !== null) disk.entries = disk.entries.filter((e) => e.index < (ready.truncateFrom as number));
    if (ready.snapshotToInstall !== null) {
      const { meta, data } = ready.snapshotToInstall;
      const sm = SimStateMachine.restore(data);
      this.checker.checkSnapshot(node.id, meta.index, sm.appliedChainHash);
      node.sm = sm;
      const keep = disk.entries.find((e) => e.index === meta.index)?.chainHash === meta.chainHash;
      disk.entries = keep ? disk.entries.filter((e) => e.index > meta.index) : [];
      disk.base = meta;
      this.stats.snapshotsInstalled++;
      this.later(node, { type: 'SnapshotInstalled', meta }, 1);
    }
    if (ready.entriesToAppend.length > 0) {
      const first = (ready.entriesToAppend[0] as Entry).index;
      const last = disk.entries.length > 0 ? (disk.entries[disk.entries.length - 1] as Entry).index : disk.base.index;
      if (first !== last + 1) throw new InvariantViolation('log-contiguous', `node ${node.id} appends ${first} after ${last}`);
      disk.entries.push(...ready.entriesToAppend);
      const tail = ready.entriesToAppend[ready.entriesToAppend.length - 1] as Entry;
      this.later(node, { type: 'Persisted', index: tail.index, term: tail.term }, 0);
    }
    // 2. send
    for (const m of ready.messages) this.send(node.id, m.to, m.msg);
    // 3. apply
    for (const e of ready.committed) {
      if (e.index <= node.sm.appliedIndex) continue;
      if (e.index !== node.sm.appliedIndex + 1) throw new InvariantViolation('apply-in-order', `node ${node.id} applies ${e.index} after ${node.sm.appliedIndex}`);
      const { result, duplicateOf } = node.sm.apply(e);
      if (duplicateOf !== null) this.stats.duplicateEntriesSkipped++;
      this.checker.checkApplied(node.id, e, node.sm.effectsOf(e.requestId));
      this.later(node, { type: 'Applied', index: e.index, result }, 0);
    }
    if (ready.compactUpTo !== null && ready.compactUpTo.index > disk.base.index) {
      const meta = ready.compactUpTo;
      disk.entries = disk.entries.filter((e) => e.index > meta.index);
      disk.base = meta;
    }
    // 4. replies, prepare, snapshots
    for (const r of ready.replies) this.onReply(node, r.requestId, r.outcome);
    // Prepared writes come back one by one or as a batch, as the real executor sends them.
    const batch: ProposeItem[] = [];
    for (const p of ready.prepare) {
      if (p.command.startsWith('bad ')) {
        this.later(node, { type: 'PrepareFailed', requestId: p.requestId, origin: p.origin, error: { code: ErrorCode.SQL_ERROR, message: 'simulated SQL error' } }, 1 + this.rng.intUpTo(5));
      } else if (this.rng.chance(0.5)) {
        batch.push({ requestId: p.requestId, origin: p.origin, payload: p.command, result: null });
      } else {
        this.later(node, { type: 'Propose', requestId: p.requestId, origin: p.origin, payload: p.command, result: null }, 1 + this.rng.intUpTo(5));
      }
    }
    if (batch.length > 0) this.later(node, { type: 'ProposeBatch', items: batch }, 1 + this.rng.intUpTo(5));
    for (const to of ready.snapshotRequests) {
      this.later(node, { type: 'SnapshotReady', to, index: node.sm.appliedIndex, data: node.sm.serialize() }, 2);
    }
    for (const ev of ready.events) {
      if (ev.type === 'became-coordinator') this.stats.elections++;
      if (ev.type === 'checksum-mismatch') this.stats.checksumMismatches++;
      if (this.opts.trace && ev.type !== 'peer-online' && ev.type !== 'replication-rejected') this.trace(`n${node.id} ${JSON.stringify(ev)}`);
    }
  }

  private later(node: SimNode, input: Input, delayMs: number): void {
    this.queue.push(this.now + delayMs, { type: 'input', node: node.id, incarnation: node.incarnation, input });
  }

  private checkNode(node: SimNode): void {
    const core = node.core as CoreNode;
    const st = core.status();
    if (st.role === 'leader') this.checker.checkLeader(node.id, st.term);
    if (st.commitIndex > node.lastCheckedCommit) {
      const log = core.logView();
      for (let i = Math.max(node.lastCheckedCommit + 1, log.firstIndex()); i <= st.commitIndex; i++) {
        const e = log.entry(i);
        if (e === undefined) throw new InvariantViolation('committed-in-log', `node ${node.id} commit ${st.commitIndex} beyond its log ${log.lastIndex()}`);
        this.checker.checkCommitted(node.id, e);
      }
      node.lastCheckedCommit = st.commitIndex;
    }
  }

  // ------------------------------------------------------------------ network

  private send(from: NodeId, to: NodeId, msg: Message): void {
    this.stats.messagesSent++;
    if (this.blocked.has(`${from}>${to}`)) {
      this.stats.messagesDropped++;
      return;
    }
    if (this.lossyNetwork && this.rng.chance(this.faults.dropProbability)) {
      this.stats.messagesDropped++;
      return;
    }
    let delivered = msg;
    if (this.lossyNetwork && msg.type === 'REPLICATE' && msg.entries.length > 0 && this.rng.chance(this.faults.corruptProbability)) {
      const k = this.rng.intUpTo(msg.entries.length - 1);
      const entries = msg.entries.map((e, i) => (i === k ? { ...e, payload: e.payload + '\u0000' } : e));
      delivered = { ...msg, entries };
    }
    const copies = this.lossyNetwork && this.rng.chance(this.faults.duplicateProbability) ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      let delay = 1 + this.rng.intUpTo(10);
      if (this.lossyNetwork && this.rng.chance(this.faults.reorderProbability)) delay += this.rng.intUpTo(400);
      this.queue.push(this.now + delay, { type: 'deliver', from, to, msg: delivered });
    }
  }

  // ------------------------------------------------------------------ faults

  private injectFault(): void {
    const r = this.rng.next();
    const live = this.ids.filter((id) => this.nodes.get(id)?.core !== null);
    const pick = (): NodeId => this.ids[this.rng.intUpTo(this.ids.length - 1)] as NodeId;
    const heal = (): void => {
      const gen = ++this.partitionGeneration;
      this.queue.push(this.now + 1000 + this.rng.intUpTo(6000), { type: 'heal-partition', generation: gen });
    };
    if (r < 0.2) {
      // symmetric split into two sides
      this.blocked.clear();
      const side = new Set(this.ids.filter(() => this.rng.chance(0.5)));
      for (const a of this.ids) for (const b of this.ids) if (a !== b && side.has(a) !== side.has(b)) this.blocked.add(`${a}>${b}`);
      this.trace(`partition {${[...side].join(',')}} | rest`);
      heal();
    } else if (r < 0.3) {
      // asymmetric: one node cannot send to (or cannot hear from) the others
      this.blocked.clear();
      const n = pick();
      const outbound = this.rng.chance(0.5);
      for (const o of this.ids) if (o !== n) this.blocked.add(outbound ? `${n}>${o}` : `${o}>${n}`);
      this.trace(`asymmetric partition: node ${n} ${outbound ? 'cannot send' : 'cannot hear'}`);
      heal();
    } else if (r < 0.4) {
      // partial: a few links cut both ways
      this.blocked.clear();
      const cuts = 1 + this.rng.intUpTo(this.ids.length);
      for (let i = 0; i < cuts; i++) {
        const a = pick();
        const b = pick();
        if (a !== b) {
          this.blocked.add(`${a}>${b}`);
          this.blocked.add(`${b}>${a}`);
        }
      }
      this.trace(`partial partition: ${[...this.blocked].join(' ')}`);
      heal();
    } else if (r < 0.6) {
      if (live.length === 0) return;
      const n = this.nodes.get(live[this.rng.intUpTo(live.length - 1)] as NodeId) as SimNode;
      if (this.rng.chance(0.3)) {
        n.tornCrashPending = true;
        this.trace(`n${n.id} will crash during its next write`);
      } else {
        this.crash(n, 'kill -9');
        this.queue.push(this.now + 300 + this.rng.intUpTo(8000), { type: 'restart', node: n.id });
      }
    } else if (r < 0.7) {
      if (live.length === 0) return;
      const n = this.nodes.get(live[this.rng.intUpTo(live.length - 1)] as NodeId) as SimNode;
      if (n.pausedUntil !== null) return;
      const ms = 200 + this.rng.intUpTo(3000);
      n.pausedUntil = this.now + ms;
      this.trace(`n${n.id} paused for ${ms} ms`);
      this.queue.push(this.now + ms, { type: 'unpause', node: n.id });
    } else if (r < 0.8) {
      this.blocked.clear();
      this.trace('partitions healed');
    } else if (r < 0.85) {
      // the node's database becomes unavailable for a while (a coordinator must hand over)
      if (live.length === 0) return;
      const n = this.nodes.get(live[this.rng.intUpTo(live.length - 1)] as NodeId) as SimNode;
      if (n.pausedUntil !== null) return;
      const ms = 500 + this.rng.intUpTo(4000);
      this.trace(`n${n.id} database unavailable for ${ms} ms`);
      this.stepNode(n, { type: 'SetHealthy', healthy: false });
      this.later(n, { type: 'SetHealthy', healthy: true }, ms);
    } else {
      // retry an earlier request at another node (exercises de-duplication)
      const ids = [...this.requests.keys()];
      if (ids.length === 0) return;
      const rid = ids[this.rng.intUpTo(Math.min(ids.length, 50) - 1) + Math.max(0, ids.length - 50)] as string;
      const st = this.requests.get(rid) as ClientRequestState;
      const target = pick();
      const node = this.nodes.get(target) as SimNode;
      if (node.core === null) return;
      this.trace(`retry ${rid} at n${target}`);
      this.stepNode(node, { type: 'ClientWrite', requestId: rid, command: st.command, ack: st.ack });
    }
  }

  private commandOf(rid: string): string {
    // commands are derived from the request id so a retry carries the same command
    return `set k${Number(rid.replace(/\D/g, '')) % 23} `;
  }

  private healEverything(): void {
    this.healed = true;
    this.lossyNetwork = false;
    this.blocked.clear();
    this.partitionGeneration++;
    for (const node of this.nodes.values()) {
      node.tornCrashPending = false;
      if (node.core === null) this.start(node);
      else this.unpause(node);
    }
    this.trace('--- healed: all nodes up, network reliable ---');
  }

  // ------------------------------------------------------------------ clients

  private randomWrite(): void {
    const live = this.ids.filter((id) => this.nodes.get(id)?.core !== null);
    if (live.length === 0) return;
    const target = live[this.rng.intUpTo(live.length - 1)] as NodeId;
    const r = this.rng.next();
    const ack: AckLevel = r < 0.7 ? 'quorum' : r < 0.9 ? 'all' : 'one';
    this.submitWrite(target, ack, null);
  }

  private submitWrite(target: NodeId, ack: AckLevel, label: string | null): string {
    const n = ++this.writeCounter;
    const rid = label === null ? `r${n}` : `${label}${n}`;
    const bad = label === null && this.rng.chance(0.03);
    const command = bad ? `bad statement ${rid}` : `${this.commandOf(rid)}${rid}`;
    this.requests.set(rid, { ack, command, outcomes: 0 });
    this.stats.writesSubmitted++;
    const node = this.nodes.get(target) as SimNode;
    if (node.core === null || node.pausedUntil !== null) return rid;
    this.stepNode(node, { type: 'ClientWrite', requestId: rid, command, ack });
    return rid;
  }

  private onReply(node: SimNode, requestId: string, outcome: import('../core/types.js').Outcome): void {
    const st = this.requests.get(requestId);
    if (st === undefined) throw new InvariantViolation('reply-to-known-request', `node ${node.id} answered unknown request ${requestId}`);
    st.outcomes++;
    if (outcome.ok) {
      this.stats.writesAcknowledged++;
      if (st.ack !== 'one') this.checker.checkAcknowledged(requestId, outcome.index);
    } else {
      this.stats.writesFailed++;
      if (requestId.startsWith('probe') && this.healed) {
        // after healing the probe must succeed; retry it if it raced the final election
        this.later(node, { type: 'ClientWrite', requestId, command: st.command, ack: 'quorum' }, 200);
      }
    }
  }

  // ------------------------------------------------------------------ convergence

  private converged(probe: string): boolean {
    const cores = this.ids.map((id) => (this.nodes.get(id) as SimNode).core);
    if (cores.some((c) => c === null)) return false;
    const statuses = cores.map((c) => (c as CoreNode).status());
    const leaders = statuses.filter((s) => s.role === 'leader');
    if (leaders.length !== 1) return false;
    const leader = leaders[0] as (typeof statuses)[number];
    // Bully priority: with everyone alive and caught up, the highest id coordinates.
    if (leader.nodeId !== Math.max(...this.ids)) return false;
    if (!this.checker.acknowledged.has(probe)) return false;
    return statuses.every((s) => s.coordinator === leader.nodeId && s.term === leader.term && s.appliedIndex === leader.lastIndex && s.lastIndex === leader.lastIndex);
  }

  private finalChecks(): void {
    const sms = this.ids.map((id) => (this.nodes.get(id) as SimNode).sm);
    const first = sms[0] as SimStateMachine;
    for (const [i, sm] of sms.entries()) {
      if (sm.appliedChainHash !== first.appliedChainHash || sm.contentKey() !== first.contentKey()) {
        throw new InvariantViolation('replicas-identical', `node ${i + 1} differs from node 1 after convergence`);
      }
    }
    for (const [rid] of this.checker.acknowledged) {
      for (const [i, sm] of sms.entries()) {
        if (!sm.hasApplied(rid)) throw new InvariantViolation('acknowledged-not-lost', `acknowledged request ${rid} missing on node ${i + 1}`);
      }
    }
  }

  private describe(): string {
    return this.ids
      .map((id) => {
        const n = this.nodes.get(id) as SimNode;
        if (n.core === null) return `n${id}:down`;
        const s = n.core.status();
        const matches = s.role === 'leader' ? ` match[${s.nodes.map((x) => `${x.id}:${x.matchIndex}`).join(',')}] base ${s.firstIndex - 1}` : '';
        return `n${id}:${s.role}/t${s.term}/c${s.commitIndex}/a${s.appliedIndex}/l${s.lastIndex}/coord${s.coordinator}${matches}`;
      })
      .join(' ');
  }

  // ------------------------------------------------------------------ utilities

  private expDelay(meanMs: number): number {
    return Math.max(1, Math.round(-Math.log(1 - this.rng.next()) * meanMs));
  }

  private mix(v: string | number): void {
    const s = typeof v === 'number' ? String(v) : v;
    let h = this.fingerprint;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    h ^= this.now & 0xffff;
    this.fingerprint = Math.imul(h, 0x01000193) >>> 0;
  }

  private trace(line: string): void {
    this.mix(line);
    if (this.opts.trace) this.traceLines.push(`${(this.now / 1000).toFixed(3)}s ${line}`);
  }
}

export function runSimulation(opts: SimOptions): SimResult {
  return new Simulator(opts).run();
}
