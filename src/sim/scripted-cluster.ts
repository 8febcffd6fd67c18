// A scripted, fully deterministic cluster for readable scenario tests: tick, partition, crash,
// restart, write, and look. Messages are delivered in FIFO order after every tick unless a
// partition or an interceptor says otherwise. The same invariant checker as the simulator runs.
import { CoreNode } from '../core/node.js';
import { EMPTY_SNAPSHOT, type AckLevel, type CoreConfig, type Entry, type HardState, type Input, type Message, type NodeId, type Outcome, type Ready, type SnapshotMeta } from '../core/types.js';
import type { NodeStatus } from '../core/node.js';
import type { CoreEvent } from '../core/types.js';
import { InvariantChecker } from './invariants.js';
import { simCoreConfig } from './simulator.js';
import { SimStateMachine } from './state-machine.js';

export type Interceptor = (from: NodeId, to: NodeId, msg: Message) => Message | null;

interface Member {
  core: CoreNode | null;
  disk: { hardState: HardState; base: SnapshotMeta; entries: Entry[] };
  sm: SimStateMachine;
  incarnation: number;
}

export class ScriptedCluster {
  readonly ids: NodeId[];
  readonly events: { node: NodeId; event: CoreEvent }[] = [];
  readonly outcomes = new Map<string, Outcome>();
  readonly checker = new InvariantChecker();
  private readonly members = new Map<NodeId, Member>();
  private readonly blocked = new Set<string>();
  private network: { from: NodeId; to: NodeId; msg: Message }[] = [];
  private pendingInputs: { node: NodeId; input: Input }[] = [];
  interceptor: Interceptor | null = null;

  constructor(
    size: number,
    private readonly overrides: Partial<CoreConfig> = {},
    startNodes: readonly NodeId[] | null = null,
  ) {
    this.ids = Array.from({ length: size }, (_, i) => i + 1);
    for (const id of this.ids) {
      this.members.set(id, { core: null, disk: { hardState: { term: 0, votedFor: null }, base: EMPTY_SNAPSHOT, entries: [] }, sm: new SimStateMachine(), incarnation: 0 });
    }
    for (const id of startNodes ?? this.ids) this.start(id);
  }

  start(id: NodeId): void {
    const m = this.member(id);
    m.incarnation++;
    m.core = new CoreNode(simCoreConfig(id, this.ids, id * 101 + m.incarnation, this.overrides), {
      hardState: m.disk.hardState,
      base: m.disk.base,
      entries: m.disk.entries,
      appliedIndex: m.sm.appliedIndex,
    });
  }

  crash(id: NodeId): void {
    this.member(id).core = null;
    this.network = this.network.filter((m) => m.to !== id && m.from !== id);
  }

  /** Cuts every link between the groups (nodes in no group keep all their links). */
  partition(...groups: NodeId[][]): void {
    this.blocked.clear();
    for (const [gi, g] of groups.entries())
      for (const [hi, h] of groups.entries())
        if (gi !== hi) for (const a of g) for (const b of h) this.blocked.add(`${a}>${b}`);
  }

  heal(): void {
    this.blocked.clear();
  }

  tick(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const id of this.ids) if (this.member(id).core) this.step(id, { type: 'Tick' });
      this.deliverAll();
    }
  }

  /** Ticks until `cond` holds; throws after `maxTicks`. Returns the ticks taken. */
  tickUntil(cond: () => boolean, maxTicks: number, what: string): number {
    for (let i = 0; i <= maxTicks; i++) {
      if (cond()) return i;
      this.tick();
    }
    throw new Error(`not reached within ${maxTicks} ticks: ${what}; ${this.describe()}`);
  }

  write(at: NodeId, requestId: string, command: string, ack: AckLevel = 'quorum'): void {
    this.outcomes.delete(requestId);
    this.step(at, { type: 'ClientWrite', requestId, command, ack });
    this.deliverAll();
  }

  /** Writes and ticks until the client is answered. */
  writeAndWait(at: NodeId, requestId: string, command: string, ack: AckLevel = 'quorum', maxTicks = 200): Outcome {
    this.write(at, requestId, command, ack);
    this.tickUntil(() => this.outcomes.has(requestId), maxTicks, `answer to ${requestId}`);
    return this.outcomes.get(requestId) as Outcome;
  }

  /** Steps a node with any input (e.g. SetHealthy) and delivers what follows. */
  input(id: NodeId, input: Input): void {
    this.step(id, input);
    this.deliverAll();
  }

  status(id: NodeId): NodeStatus {
    const core = this.member(id).core;
    if (!core) throw new Error(`node ${id} is down`);
    return core.status();
  }

  isUp(id: NodeId): boolean {
    return this.member(id).core !== null;
  }

  leader(): NodeId | null {
    const leaders = this.ids.filter((id) => this.isUp(id) && this.status(id).role === 'leader');
    if (leaders.length === 0) return null;
    // the one with the highest term is the current one
    return leaders.sort((a, b) => this.status(b).term - this.status(a).term)[0] as NodeId;
  }

  stateMachine(id: NodeId): SimStateMachine {
    return this.member(id).sm;
  }

  diskEntries(id: NodeId): readonly Entry[] {
    return this.member(id).disk.entries;
  }

  describe(): string {
    return this.ids
      .map((id) => {
        if (!this.isUp(id)) return `n${id}:down`;
        const s = this.status(id);
        return `n${id}:${s.role}/t${s.term}/c${s.commitIndex}/a${s.appliedIndex}/l${s.lastIndex}/coord${s.coordinator}`;
      })
      .join(' ');
  }

  private member(id: NodeId): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no node ${id}`);
    return m;
  }

  private step(id: NodeId, input: Input): void {
    const m = this.member(id);
    if (!m.core) return;
    const ready = m.core.step(input);
    this.carryOut(id, m, ready);
    while (this.pendingInputs.length > 0) {
      const next = this.pendingInputs.shift() as { node: NodeId; input: Input };
      const nm = this.member(next.node);
      if (!nm.core) continue;
      this.carryOut(next.node, nm, nm.core.step(next.input));
    }
  }

  private carryOut(id: NodeId, m: Member, ready: Ready): void {
    const core = m.core as CoreNode;
    const st = core.status();
    if (st.role === 'leader') this.checker.checkLeader(id, st.term);
    const log = core.logView();
    for (let i = Math.max(log.firstIndex(), 1); i <= st.commitIndex; i++) {
      const e = log.entry(i);
      if (e) this.checker.checkCommitted(id, e);
    }
    if (ready.hardState) m.disk.hardState = ready.hardState;
    if (ready.truncateFrom !== null) m.disk.entries = m.disk.entries.filter((e) => e.index < (ready.truncateFrom as number));
    if (ready.snapshotToInstall) {
      const { meta, data } = ready.snapshotToInstall;
      m.sm = SimStateMachine.restore(data);
      m.disk.entries = [];
      m.disk.base = meta;
      this.pendingInputs.push({ node: id, input: { type: 'SnapshotInstalled', meta } });
    }
    m.disk.entries.push(...ready.entriesToAppend);
    if (ready.entriesToAppend.length > 0) {
      const last = ready.entriesToAppend[ready.entriesToAppend.length - 1] as Entry;
      this.pendingInputs.push({ node: id, input: { type: 'Persisted', index: last.index, term: last.term } });
    }
    for (const msg of ready.messages) this.network.push({ from: id, to: msg.to, msg: msg.msg });
    for (const e of ready.committed) {
      if (e.index <= m.sm.appliedIndex) continue;
      const { result } = m.sm.apply(e);
      this.checker.checkApplied(id, e, m.sm.effectsOf(e.requestId));
      this.pendingInputs.push({ node: id, input: { type: 'Applied', index: e.index, result } });
    }
    if (ready.compactUpTo && ready.compactUpTo.index > m.disk.base.index) {
      const meta = ready.compactUpTo;
      m.disk.entries = m.disk.entries.filter((e) => e.index > meta.index);
      m.disk.base = meta;
    }
    for (const r of ready.replies) {
      this.outcomes.set(r.requestId, r.outcome);
      if (r.outcome.ok && r.outcome.index > 0) {
        const rec = this.checker.committedAt(r.outcome.index);
        if (rec) this.checker.checkAcknowledged(r.requestId, r.outcome.index);
      }
    }
    for (const p of ready.prepare) {
      this.pendingInputs.push({ node: id, input: { type: 'Propose', requestId: p.requestId, origin: p.origin, payload: p.command, result: null } });
    }
    for (const to of ready.snapshotRequests) {
      this.pendingInputs.push({ node: id, input: { type: 'SnapshotReady', to, index: m.sm.appliedIndex, data: m.sm.serialize() } });
    }
    for (const event of ready.events) this.events.push({ node: id, event });
  }

  private deliverAll(): void {
    for (let rounds = 0; rounds < 1000 && this.network.length > 0; rounds++) {
      const batch = this.network;
      this.network = [];
      for (const { from, to, msg } of batch) {
        if (this.blocked.has(`${from}>${to}`) || !this.isUp(to) || !this.isUp(from)) continue;
        const delivered = this.interceptor ? this.interceptor(from, to, msg) : msg;
        if (delivered === null) continue;
        this.step(to, { type: 'Receive', from, msg: delivered });
      }
    }
  }
}
