// Readable, fully deterministic scenarios on the simulated cluster: tick, partition, crash,
// restart, write, and look. Every node is the real driver on simulated ports (sim-cluster.ts) with
// a reliable FIFO network and no delays: after each tick, everything the tick caused (messages,
// applies, prepared writes) is processed before the next one. The simulator's checkers run throughout.
import { Prng } from '../core/prng.js';
import type { NodeStatus } from '../core/node.js';
import type { AckLevel, CoreConfig, CoreEvent, Entry, Input, Message, NodeId, Outcome, ReadIndexAnswer } from '../core/types.js';
import type { InvariantChecker } from './invariants.js';
import { SimCluster } from './sim-cluster.js';
import { simCoreConfig } from './simulator.js';
import type { SimStateMachine } from './state-machine.js';

export type Interceptor = (from: NodeId, to: NodeId, msg: Message) => Message | null;

/** More events than this after one tick means the scenario loops (a message storm). */
const MAX_EVENTS_PER_TICK = 1_000_000;

export class ScenarioCluster {
  readonly ids: readonly NodeId[];
  readonly events: { node: NodeId; event: CoreEvent }[] = [];
  readonly outcomes = new Map<string, Outcome>();
  /** Answers to `readIndex` requests, by request id. */
  readonly readIndexes = new Map<string, ReadIndexAnswer>();
  private readonly cluster: SimCluster;
  private readonly frozen = new Set<NodeId>();

  constructor(size: number, overrides: Partial<CoreConfig> = {}, startNodes: readonly NodeId[] | null = null) {
    this.cluster = new SimCluster({
      size,
      rng: new Prng(size * 7919 + 1),
      coreConfig: (id, ids, incarnation) => simCoreConfig(id, ids, id * 101 + incarnation, overrides),
      delays: { network: () => 0, database: () => 0, prepare: () => 0 },
      autoTick: false,
      batchProposals: false,
      onReply: (_node, { requestId, outcome }) => {
        this.outcomes.set(requestId, outcome);
        if (outcome.ok && outcome.index > 0 && this.checker.committedAt(outcome.index) !== undefined) this.checker.checkAcknowledged(requestId, outcome.index);
      },
      onReadIndex: (_node, answer) => this.readIndexes.set(answer.requestId, answer),
      onEvent: (node, event) => this.events.push({ node, event }),
    });
    this.ids = this.cluster.ids;
    for (const id of startNodes ?? this.ids) this.start(id);
  }

  get checker(): InvariantChecker {
    return this.cluster.checker;
  }

  set interceptor(i: Interceptor | null) {
    this.cluster.interceptor = i;
  }

  start(id: NodeId): void {
    this.cluster.start(id);
    this.settle();
  }

  crash(id: NodeId): void {
    this.cluster.crash(id);
  }

  /** Cuts every link between the groups (nodes in no group keep all their links). */
  partition(...groups: NodeId[][]): void {
    this.cluster.partition(...groups);
  }

  heal(): void {
    this.cluster.blocked.clear();
  }

  /**
   * Stops node `id`'s clock (as SIGSTOP does to a process): it gets no ticks until `thaw`, so its
   * failure detector still believes what it last heard. Messages still reach it unless partitioned.
   */
  freeze(id: NodeId): void {
    this.frozen.add(id);
  }

  thaw(id: NodeId): void {
    this.frozen.delete(id);
  }

  tick(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const id of this.ids) if (this.cluster.isUp(id) && !this.frozen.has(id)) this.cluster.step(id, { type: 'Tick' });
      this.settle();
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
    this.input(at, { type: 'ClientWrite', requestId, command, ack });
  }

  /** Writes and ticks until the client is answered. */
  writeAndWait(at: NodeId, requestId: string, command: string, ack: AckLevel = 'quorum', maxTicks = 200): Outcome {
    this.write(at, requestId, command, ack);
    this.tickUntil(() => this.outcomes.has(requestId), maxTicks, `answer to ${requestId}`);
    return this.outcomes.get(requestId) as Outcome;
  }

  /** Asks node `at` for a read index (a linearizable read) and ticks until it is answered. */
  readIndexAndWait(at: NodeId, requestId: string, maxTicks = 400): ReadIndexAnswer {
    this.readIndexes.delete(requestId);
    this.input(at, { type: 'ReadIndex', requestId });
    this.tickUntil(() => this.readIndexes.has(requestId), maxTicks, `read index ${requestId}`);
    return this.readIndexes.get(requestId) as ReadIndexAnswer;
  }

  /** Steps a node with any input (e.g. SetHealthy) and processes what follows. */
  input(id: NodeId, input: Input): void {
    this.cluster.step(id, input);
    this.settle();
  }

  status(id: NodeId): NodeStatus {
    return this.cluster.core(id).status();
  }

  isUp(id: NodeId): boolean {
    return this.cluster.isUp(id);
  }

  leader(): NodeId | null {
    const leaders = this.ids.filter((id) => this.isUp(id) && this.status(id).role === 'leader');
    if (leaders.length === 0) return null;
    // the one with the highest term is the current one
    return [...leaders].sort((a, b) => this.status(b).term - this.status(a).term)[0] as NodeId;
  }

  stateMachine(id: NodeId): SimStateMachine {
    return this.cluster.node(id).db.sm;
  }

  diskEntries(id: NodeId): readonly Entry[] {
    return this.cluster.node(id).disk.contents().entries;
  }

  describe(): string {
    return this.cluster.describe();
  }

  /** Processes everything due now (all delays are zero). */
  private settle(): void {
    for (let n = 0; this.cluster.runNext(this.cluster.now); n++) {
      if (n > MAX_EVENTS_PER_TICK) throw new Error(`more than ${MAX_EVENTS_PER_TICK} events in one tick: ${this.describe()}`);
    }
  }
}
