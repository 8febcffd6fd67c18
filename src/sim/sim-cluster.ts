// N nodes in one process on one simulated clock: each node is the real NodeDriver around a
// CoreNode, composed with the simulated ports of sim-ports.ts. The cluster owns the event queue,
// the network (delays, loss, duplication, reordering, corruption, partitions, an interceptor),
// crashes, restarts and pauses, and runs the safety checkers after every event. The randomized
// simulator (simulator.ts) and the scripted scenarios (scenario-cluster.ts) both drive it.
import { CoreNode } from '../core/node.js';
import type { Prng } from '../core/prng.js';
import type { ClientReply, CoreConfig, CoreEvent, Input, Message, NodeId, ReadIndexAnswer, Ready } from '../core/types.js';
import { NodeDriver, type DriverUnsafeFlags } from '../node/driver.js';
import { EventQueue } from './event-queue.js';
import { InvariantChecker, InvariantViolation } from './invariants.js';
import { SimDatabase, SimDisk, SimulatedCrash, SimWrites, type SimDelays } from './sim-ports.js';
import { SimStateMachine } from './state-machine.js';

export const TICK_MS = 100;

/** How the simulated network misbehaves; all zero: a reliable FIFO network. */
export interface NetworkFaults {
  readonly dropProbability: number;
  readonly duplicateProbability: number;
  readonly corruptProbability: number;
  readonly reorderProbability: number;
}
export const RELIABLE_NETWORK: NetworkFaults = { dropProbability: 0, duplicateProbability: 0, corruptProbability: 0, reorderProbability: 0 };

export interface SimClusterOptions {
  readonly size: number;
  readonly rng: Prng;
  /** The core configuration of node `id` (of the cluster's `ids`) in its `incarnation`-th run. */
  readonly coreConfig: (id: NodeId, ids: readonly NodeId[], incarnation: number) => CoreConfig;
  readonly delays: SimDelays & {
    /** Milliseconds a message spends in the network (before reordering delays). */
    network(): number;
  };
  /** Whether nodes tick by themselves every TICK_MS (the randomized simulator) or only when told (scenarios). */
  readonly autoTick: boolean;
  /** Whether prepared writes sometimes come back as a batch. */
  readonly batchProposals: boolean;
  readonly driverUnsafe?: DriverUnsafeFlags;
  /** Every client answer a node gives. */
  readonly onReply: (node: NodeId, reply: ClientReply) => void;
  /** Every answer to a ReadIndex input (linearizable reads). */
  readonly onReadIndex?: (node: NodeId, answer: ReadIndexAnswer) => void;
  /** Every core event (after the checkers saw the step). */
  readonly onEvent?: (node: NodeId, event: CoreEvent) => void;
  /** Every input stepped and the Ready it produced. */
  readonly observe?: (node: NodeId, input: Input, ready: Ready) => void;
  /** A line per notable happening (crashes, restarts, partitions...). */
  readonly trace?: (line: string) => void;
}

export interface ClusterStats {
  events: number;
  messagesSent: number;
  messagesDropped: number;
  elections: number;
  crashes: number;
  /** Crashes in the middle of an fsync (part of the synced writes lost). */
  machineCrashes: number;
  /** TAKEOVER requests held because the receiver's database lagged. */
  takeoversHeld: number;
  snapshotsInstalled: number;
  checksumMismatches: number;
  /** Entries whose request id was already applied: skipped by the state machine. */
  duplicateEntriesSkipped: number;
}

type ClusterEvent =
  | { readonly type: 'tick'; readonly node: NodeId; readonly incarnation: number }
  | { readonly type: 'deliver'; readonly from: NodeId; readonly to: NodeId; readonly msg: Message }
  | { readonly type: 'local'; readonly node: NodeId; readonly incarnation: number; readonly run: () => void }
  | { readonly type: 'timer'; readonly label: string; readonly run: () => void };

export interface SimNode {
  readonly id: NodeId;
  driver: NodeDriver | null;
  incarnation: number;
  readonly disk: SimDisk;
  /** The database; survives crashes (its applied index is in it, like a fencing row). */
  readonly db: { sm: SimStateMachine };
  pausedUntil: number | null;
  inbox: { from: NodeId; msg: Message }[];
  lastCheckedCommit: number;
  /** What the node told peers it holds on disk: its last successful REPLICATE_ACK and its last granted vote. */
  promises: { ack: { term: number; index: number; entryTerm: number } | null; vote: { term: number; candidate: NodeId } | null };
}

export class SimCluster {
  readonly ids: readonly NodeId[];
  readonly checker = new InvariantChecker();
  readonly stats: ClusterStats = { events: 0, messagesSent: 0, messagesDropped: 0, elections: 0, crashes: 0, machineCrashes: 0, takeoversHeld: 0, snapshotsInstalled: 0, checksumMismatches: 0, duplicateEntriesSkipped: 0 };
  /** Directed links that drop everything: "from>to". */
  readonly blocked = new Set<string>();
  network: NetworkFaults = RELIABLE_NETWORK;
  /** Sees (and may replace or drop, with null) every message at delivery. */
  interceptor: ((from: NodeId, to: NodeId, msg: Message) => Message | null) | null = null;
  now = 0;
  private readonly queue = new EventQueue<ClusterEvent>();
  private readonly nodes = new Map<NodeId, SimNode>();
  private fingerprintState = 0x811c9dc5;

  constructor(private readonly opts: SimClusterOptions) {
    this.ids = Array.from({ length: opts.size }, (_, i) => i + 1);
    for (const id of this.ids) {
      this.nodes.set(id, { id, driver: null, incarnation: 0, disk: new SimDisk(id, opts.rng), db: { sm: new SimStateMachine() }, pausedUntil: null, inbox: [], lastCheckedCommit: 0, promises: { ack: null, vote: null } });
    }
  }

  get rng(): Prng {
    return this.opts.rng;
  }

  /** FNV-1a over every processed event: equal for equal seeds. */
  fingerprint(): string {
    return (this.fingerprintState >>> 0).toString(16).padStart(8, '0');
  }

  // ------------------------------------------------------------------ nodes

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  isUp(id: NodeId): boolean {
    return this.node(id).driver !== null;
  }

  core(id: NodeId): CoreNode {
    const d = this.node(id).driver;
    if (d === null) throw new Error(`node ${id} is down`);
    return d.core;
  }

  start(id: NodeId): void {
    const node = this.node(id);
    if (node.driver !== null) return;
    node.incarnation++;
    const incarnation = node.incarnation;
    const disk = node.disk.contents();
    const core = new CoreNode(this.opts.coreConfig(id, this.ids, incarnation), { ...disk, appliedIndex: node.db.sm.appliedIndex });
    const feed = (input: Input): void => this.step(id, input);
    const after = (delayMs: number, run: () => void): void => this.queue.push(this.now + delayMs, { type: 'local', node: id, incarnation, run });
    const delays = this.opts.delays;
    node.driver = new NodeDriver(
      core,
      {
        log: node.disk,
        transport: {
          send: (to, msg) => {
            this.recordPromise(node, to, msg);
            this.send(id, to, msg);
          },
        },
        stateMachine: new SimDatabase(id, node.db, feed, after, delays, this.checker, this.stats),
        writes: new SimWrites(feed, after, delays, this.opts.rng, this.opts.batchProposals, (r) => this.opts.onReply(id, r), (a) => this.opts.onReadIndex?.(id, a)),
        events: (ev) => this.onCoreEvent(id, ev),
      },
      { ...(this.opts.driverUnsafe ? { unsafe: this.opts.driverUnsafe } : {}), ...(this.opts.observe ? { observe: (input: Input, ready: Ready) => this.opts.observe?.(id, input, ready) } : {}) },
    );
    node.pausedUntil = null;
    node.inbox = [];
    node.lastCheckedCommit = core.status().commitIndex;
    this.trace(`n${id} start incarnation ${incarnation} (term ${disk.hardState.term}, log ${disk.base.index}+${disk.entries.length}, applied ${node.db.sm.appliedIndex})`);
    if (this.opts.autoTick) this.queue.push(this.now + 1 + this.opts.rng.intUpTo(TICK_MS - 1), { type: 'tick', node: id, incarnation });
  }

  /** kill -9: the process is gone; what it wrote is on disk (the OS had it). */
  crash(id: NodeId, why = 'kill -9'): void {
    const node = this.node(id);
    if (node.driver === null) return;
    node.disk.flushOnKill();
    this.down(node, why);
  }

  /** The machine crashes during the node's next fsync, losing part of what it was syncing. */
  crashDuringNextSync(id: NodeId, armed = true): void {
    this.node(id).disk.crashDuringNextSync(armed);
  }

  pause(id: NodeId, ms: number): void {
    const node = this.node(id);
    if (node.driver === null || node.pausedUntil !== null) return;
    node.pausedUntil = this.now + ms;
    this.trace(`n${id} paused for ${ms} ms`);
    this.at(this.now + ms, `unpause n${id}`, () => this.unpause(id));
  }

  unpause(id: NodeId): void {
    const node = this.node(id);
    if (node.pausedUntil === null) return;
    node.pausedUntil = null;
    const inbox = node.inbox;
    node.inbox = [];
    this.trace(`n${id} resumes with ${inbox.length} queued messages`);
    for (const m of inbox) {
      if (node.driver === null) return;
      this.step(id, { type: 'Receive', from: m.from, msg: m.msg });
    }
  }

  isPaused(id: NodeId): boolean {
    return this.node(id).pausedUntil !== null;
  }

  /** Steps node `id` with an input through its driver (ignored while the node is down). */
  step(id: NodeId, input: Input): void {
    const driver = this.node(id).driver;
    if (driver !== null) this.guarded(id, () => driver.feed(input));
  }

  /** Runs work of node `id`; a machine crash inside it takes the node down (it restarts later). */
  private guarded(id: NodeId, work: () => void): void {
    const node = this.node(id);
    const driver = node.driver;
    try {
      work();
    } catch (err) {
      if (!(err instanceof SimulatedCrash) || node.driver !== driver) throw err;
      this.stats.machineCrashes++;
      this.down(node, 'machine crash during fsync');
      this.checkPromisesKept(node);
      this.at(this.now + 500 + this.opts.rng.intUpTo(3000), `restart n${id}`, () => this.start(id));
      return;
    }
    if (node.driver === driver && driver !== null) this.checkNode(node);
  }


  private down(node: SimNode, why: string): void {
    node.driver = null;
    node.inbox = [];
    node.pausedUntil = null;
    node.disk.crashDuringNextSync(false);
    this.stats.crashes++;
    this.trace(`n${node.id} crash (${why})`);
  }

  // ------------------------------------------------------------------ events

  /** Runs `run` at simulated time `time`. */
  at(time: number, label: string, run: () => void): void {
    this.queue.push(time, { type: 'timer', label, run });
  }

  /** Processes the next event; false when none is due at or before `until`. */
  runNext(until = Infinity): boolean {
    const due = this.queue.peekTime();
    if (due === undefined || due > until) return false;
    const next = this.queue.pop() as { time: number; value: ClusterEvent };
    this.now = next.time;
    this.process(next.value);
    return true;
  }

  private process(ev: ClusterEvent): void {
    this.stats.events++;
    this.mix(ev.type);
    switch (ev.type) {
      case 'tick': {
        const node = this.node(ev.node);
        if (node.driver === null || node.incarnation !== ev.incarnation) return;
        this.queue.push(this.now + TICK_MS, ev);
        if (node.pausedUntil !== null) return;
        this.step(node.id, { type: 'Tick' });
        return;
      }
      case 'deliver': {
        const node = this.node(ev.to);
        if (node.driver === null) return;
        this.mix(ev.from * 31 + ev.to);
        const msg = this.interceptor === null ? ev.msg : this.interceptor(ev.from, ev.to, ev.msg);
        if (msg === null) return;
        if (node.pausedUntil !== null) {
          if (node.inbox.length < 10_000) node.inbox.push({ from: ev.from, msg });
          return;
        }
        this.step(ev.to, { type: 'Receive', from: ev.from, msg });
        return;
      }
      case 'local': {
        const node = this.node(ev.node);
        if (node.driver === null || node.incarnation !== ev.incarnation) return;
        if (node.pausedUntil !== null) {
          this.queue.push(node.pausedUntil + 1, ev);
          return;
        }
        this.guarded(node.id, ev.run);
        return;
      }
      case 'timer':
        this.mix(ev.label);
        ev.run();
        return;
    }
  }

  // ------------------------------------------------------------------ network

  private send(from: NodeId, to: NodeId, msg: Message): void {
    this.stats.messagesSent++;
    const net = this.network;
    const rng = this.opts.rng;
    if (this.blocked.has(`${from}>${to}`) || (net.dropProbability > 0 && rng.chance(net.dropProbability))) {
      this.stats.messagesDropped++;
      return;
    }
    let delivered = msg;
    if (net.corruptProbability > 0 && msg.type === 'REPLICATE' && msg.entries.length > 0 && rng.chance(net.corruptProbability)) {
      const k = rng.intUpTo(msg.entries.length - 1);
      delivered = { ...msg, entries: msg.entries.map((e, i) => (i === k ? { ...e, payload: e.payload + '\u0000' } : e)) };
    }
    const copies = net.duplicateProbability > 0 && rng.chance(net.duplicateProbability) ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      let delay = this.opts.delays.network();
      if (net.reorderProbability > 0 && rng.chance(net.reorderProbability)) delay += rng.intUpTo(400);
      this.queue.push(this.now + delay, { type: 'deliver', from, to, msg: delivered });
    }
  }

  /** Cuts every link between the groups (nodes in no group keep all their links). */
  partition(...groups: readonly NodeId[][]): void {
    this.blocked.clear();
    for (const [gi, g] of groups.entries()) for (const [hi, h] of groups.entries()) if (gi !== hi) for (const a of g) for (const b of h) this.blocked.add(`${a}>${b}`);
  }

  // ------------------------------------------------------------------ checks

  private onCoreEvent(id: NodeId, ev: CoreEvent): void {
    if (ev.type === 'became-coordinator') this.stats.elections++;
    if (ev.type === 'checksum-mismatch') this.stats.checksumMismatches++;
    if (ev.type === 'takeover-held') this.stats.takeoversHeld++;
    this.opts.onEvent?.(id, ev);
  }

  private recordPromise(node: SimNode, to: NodeId, msg: Message): void {
    if (msg.type === 'REPLICATE_ACK' && msg.success && msg.matchIndex > 0) {
      const entryTerm = node.driver?.core.logView().termAt(msg.matchIndex);
      if (entryTerm !== undefined) node.promises.ack = { term: msg.term, index: msg.matchIndex, entryTerm };
    } else if (msg.type === 'VOTE' && msg.granted && !msg.prevote) {
      node.promises.vote = { term: msg.term, candidate: to };
    }
  }

  /**
   * After a machine crash, the disk must still hold what the node promised its peers: the entries
   * it acknowledged (unless it has durably moved to a later term, whose coordinator may replace
   * them) and its vote. A driver that sends acks or votes before the fsync breaks this.
   */
  private checkPromisesKept(node: SimNode): void {
    const disk = node.disk;
    const { ack, vote } = node.promises;
    if (vote !== null && (disk.hardState.term < vote.term || (disk.hardState.term === vote.term && disk.hardState.votedFor !== vote.candidate))) {
      throw new InvariantViolation('promises-durable', `node ${node.id} granted its vote in term ${vote.term} to node ${vote.candidate} but its disk says term ${disk.hardState.term}, vote ${disk.hardState.votedFor}`);
    }
    if (ack !== null && disk.hardState.term <= ack.term && disk.log.termAt(ack.index) !== ack.entryTerm && disk.log.base().index < ack.index) {
      throw new InvariantViolation('promises-durable', `node ${node.id} acknowledged entries up to ${ack.index} in term ${ack.term}, but after a crash its disk ends at ${disk.log.lastIndex()}`);
    }
  }

  private checkNode(node: SimNode): void {
    const core = (node.driver as NodeDriver).core;
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

  describe(): string {
    return this.ids
      .map((id) => {
        if (!this.isUp(id)) return `n${id}:down`;
        const s = this.core(id).status();
        const matches = s.role === 'leader' ? ` match[${s.nodes.map((x) => `${x.id}:${x.matchIndex}`).join(',')}] base ${s.firstIndex - 1}` : '';
        return `n${id}:${s.role}/t${s.term}/c${s.commitIndex}/a${s.appliedIndex}/l${s.lastIndex}/coord${s.coordinator}${matches}`;
      })
      .join(' ');
  }

  trace(line: string): void {
    this.mix(line);
    this.opts.trace?.(`${(this.now / 1000).toFixed(3)}s ${line}`);
  }

  private mix(v: string | number): void {
    const s = typeof v === 'number' ? String(v) : v;
    let h = this.fingerprintState;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    h ^= this.now & 0xffff;
    this.fingerprintState = Math.imul(h, 0x01000193) >>> 0;
  }
}
