// Deterministic simulation of N nodes in one process, from one seed: each node is the real node
// driver (src/node/driver.ts) around the real core, on simulated ports (sim-cluster.ts). The
// network delays, drops, duplicates, reorders and corrupts messages and can be partitioned
// (symmetric, asymmetric, partial); nodes are killed, crash in the middle of an fsync (losing what
// was not synced), restart from what reached their simulated disk, pause, and lose their database
// for a while. Invariants are checked after every event; after the fault phase everything heals
// and the cluster must converge in bounded time.
import { Prng } from '../core/prng.js';
import type { AckLevel, ClientReply, CoreConfig, CoreEvent, NodeId, ReadIndexAnswer, UnsafeFlags } from '../core/types.js';
import type { DriverUnsafeFlags } from '../node/driver.js';
import { deriveCoreConfig } from '../node/core-config.js';
import { InvariantViolation } from './invariants.js';
import { SimCluster, TICK_MS, RELIABLE_NETWORK, type ClusterStats } from './sim-cluster.js';

export { TICK_MS };
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
  /** Deliberately broken driver ordering rules (see DriverUnsafeFlags). */
  readonly driverUnsafe?: DriverUnsafeFlags;
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

export interface SimStats extends ClusterStats {
  writesSubmitted: number;
  writesAcknowledged: number;
  writesFailed: number;
  readsAnswered: number;
  readsRefused: number;
  committedIndex: number;
  convergedAfterMs: number | null;
}

/**
 * The core configuration in simulation: timing derived by the node's own function (deriveCoreConfig)
 * from a faster clock (heartbeat 200 ms, failure timeout 1 s at 100 ms ticks), and small limits so
 * that batching, flow control, compaction and snapshots happen within a short run.
 */
export function simCoreConfig(id: NodeId, ids: readonly NodeId[], seed: number, overrides: Partial<CoreConfig> = {}): CoreConfig {
  return deriveCoreConfig(
    id,
    ids,
    { heartbeatIntervalTicks: 2, failureTimeoutTicks: 10, writeTimeoutTicks: 60, defaultAck: 'quorum', seed },
    {
      maxEntriesPerMessage: 16,
      maxBytesPerMessage: 4096,
      maxInflightMessages: 4,
      logRetentionEntries: 40,
      compactionBatchEntries: 20,
      ...overrides,
    },
  );
}

interface ClientRequestState {
  readonly ack: AckLevel;
  readonly command: string;
  outcomes: number;
}

export class Simulator {
  private readonly rng: Prng;
  private readonly cluster: SimCluster;
  private readonly ids: readonly NodeId[];
  private readonly faults: FaultProfile;
  private readonly requests = new Map<string, ClientRequestState>();
  private partitionGeneration = 0;
  private writeCounter = 0;
  private healed = false;
  private readonly traceLines: string[] = [];
  private readonly extra = { writesSubmitted: 0, writesAcknowledged: 0, writesFailed: 0, readsAnswered: 0, readsRefused: 0, committedIndex: 0, convergedAfterMs: null as number | null };
  /** Highest index of a write acknowledged (quorum or all) to any client so far. */
  private maxAcknowledgedIndex = 0;
  /** Linearizable reads in flight: the acknowledged index each must cover. */
  private readonly reads = new Map<string, number>();
  private readCounter = 0;

  constructor(private readonly opts: SimOptions) {
    this.rng = new Prng(opts.seed * 2654435761 + 1);
    this.faults = opts.faults ?? DEFAULT_FAULTS;
    const rng = this.rng;
    const overrides = { ...opts.core, ...(opts.unsafe ? { unsafe: opts.unsafe } : {}) };
    this.cluster = new SimCluster({
      size: opts.nodes,
      rng,
      coreConfig: (id, ids, incarnation) => simCoreConfig(id, ids, opts.seed * 1000 + id * 17 + incarnation, overrides),
      delays: { network: () => 1 + rng.intUpTo(10), database: () => rng.intUpTo(3), prepare: () => 1 + rng.intUpTo(5) },
      autoTick: true,
      batchProposals: true,
      ...(opts.driverUnsafe ? { driverUnsafe: opts.driverUnsafe } : {}),
      onReply: (node, reply) => this.onReply(node, reply),
      onReadIndex: (node, answer) => this.onReadIndex(node, answer),
      onEvent: (node: NodeId, ev: CoreEvent) => {
        if (ev.type === 'acknowledged-before-local-apply') this.answeredBeforeApply.add(`${node}:${ev.requestId}`);
        if (opts.trace && ev.type !== 'peer-online' && ev.type !== 'replication-rejected') this.cluster.trace(`n${node} ${JSON.stringify(ev)}`);
      },
      trace: (line) => {
        if (opts.trace) this.traceLines.push(line);
      },
    });
    this.ids = this.cluster.ids;
    this.cluster.network = this.faults;
    for (const id of this.ids) this.cluster.start(id);
  }

  get stats(): SimStats {
    return { ...this.cluster.stats, ...this.extra };
  }

  // ------------------------------------------------------------------ running

  run(): SimResult {
    const c = this.cluster;
    const faultEndMs = this.opts.steps * TICK_MS;
    const healEndMs = faultEndMs + (this.opts.healTicks ?? 400) * TICK_MS;
    const everyFault = (): void => {
      if (this.healed) return;
      this.injectFault();
      c.at(c.now + this.expDelay(this.faults.faultEveryMs), 'fault', everyFault);
    };
    const everyWrite = (): void => {
      if (this.healed) return;
      this.randomWrite();
      if (this.rng.chance(0.3)) this.randomRead();
      c.at(c.now + this.expDelay(this.faults.writeEveryMs), 'write', everyWrite);
    };
    c.at(this.expDelay(this.faults.faultEveryMs), 'fault', everyFault);
    c.at(this.expDelay(this.faults.writeEveryMs), 'write', everyWrite);
    let violation: SimResult['violation'] = null;
    let probe: string | null = null;
    try {
      while (c.runNext()) {
        if (!this.healed && c.now >= faultEndMs) {
          this.healEverything();
          probe = this.submitWrite(this.ids[this.rng.intUpTo(this.ids.length - 1)] as NodeId, 'quorum', 'probe');
        }
        if (c.now >= healEndMs) {
          throw new InvariantViolation('converges-after-heal', `no convergence ${this.opts.healTicks ?? 400} ticks after healing: ${c.describe()}`);
        }
        if (c.stats.events > MAX_EVENTS_PER_RUN) {
          throw new InvariantViolation('bounded-work', `more than ${MAX_EVENTS_PER_RUN} events (a message storm or livelock): ${c.describe()}`);
        }
        if (this.healed && probe !== null && this.converged(probe)) {
          this.extra.convergedAfterMs = c.now - faultEndMs;
          this.finalChecks();
          break;
        }
      }
    } catch (err) {
      if (err instanceof InvariantViolation) violation = { invariant: err.invariant, detail: err.detail, atMs: c.now };
      else violation = { invariant: 'no-crash', detail: (err as Error).stack ?? String(err), atMs: c.now };
    }
    this.extra.committedIndex = c.checker.maxCommitted;
    return {
      seed: this.opts.seed,
      ok: violation === null,
      violation,
      stats: this.stats,
      fingerprint: c.fingerprint(),
      trace: this.traceLines,
    };
  }

  // ------------------------------------------------------------------ faults

  private injectFault(): void {
    const c = this.cluster;
    const r = this.rng.next();
    const live = this.ids.filter((id) => c.isUp(id));
    const pick = (): NodeId => this.ids[this.rng.intUpTo(this.ids.length - 1)] as NodeId;
    const pickLive = (): NodeId => live[this.rng.intUpTo(live.length - 1)] as NodeId;
    const heal = (): void => {
      const gen = ++this.partitionGeneration;
      c.at(c.now + 1000 + this.rng.intUpTo(6000), 'heal-partition', () => {
        if (gen === this.partitionGeneration) c.blocked.clear();
      });
    };
    if (r < 0.2) {
      // symmetric split into two sides
      const side = this.ids.filter(() => this.rng.chance(0.5));
      c.partition(side, this.ids.filter((id) => !side.includes(id)));
      c.trace(`partition {${side.join(',')}} | rest`);
      heal();
    } else if (r < 0.3) {
      // asymmetric: one node cannot send to (or cannot hear from) the others
      c.blocked.clear();
      const n = pick();
      const outbound = this.rng.chance(0.5);
      for (const o of this.ids) if (o !== n) c.blocked.add(outbound ? `${n}>${o}` : `${o}>${n}`);
      c.trace(`asymmetric partition: node ${n} ${outbound ? 'cannot send' : 'cannot hear'}`);
      heal();
    } else if (r < 0.4) {
      // partial: a few links cut both ways
      c.blocked.clear();
      const cuts = 1 + this.rng.intUpTo(this.ids.length);
      for (let i = 0; i < cuts; i++) {
        const a = pick();
        const b = pick();
        if (a !== b) {
          c.blocked.add(`${a}>${b}`);
          c.blocked.add(`${b}>${a}`);
        }
      }
      c.trace(`partial partition: ${[...c.blocked].join(' ')}`);
      heal();
    } else if (r < 0.6) {
      if (live.length === 0) return;
      const n = pickLive();
      if (this.rng.chance(0.3)) {
        c.crashDuringNextSync(n);
        c.trace(`n${n} will crash during its next fsync`);
      } else {
        c.crash(n, 'kill -9');
        c.at(c.now + 300 + this.rng.intUpTo(8000), `restart n${n}`, () => c.start(n));
      }
    } else if (r < 0.7) {
      if (live.length === 0) return;
      c.pause(pickLive(), 200 + this.rng.intUpTo(3000));
    } else if (r < 0.8) {
      c.blocked.clear();
      c.trace('partitions healed');
    } else if (r < 0.85) {
      // the node's database becomes unavailable for a while (a coordinator must hand over)
      if (live.length === 0) return;
      const n = pickLive();
      if (c.isPaused(n)) return;
      const ms = 500 + this.rng.intUpTo(4000);
      c.trace(`n${n} database unavailable for ${ms} ms`);
      c.step(n, { type: 'SetHealthy', healthy: false });
      const incarnation = c.node(n).incarnation;
      c.at(c.now + ms, `database back n${n}`, () => {
        if (c.node(n).incarnation === incarnation) c.step(n, { type: 'SetHealthy', healthy: true });
      });
    } else {
      // retry an earlier request at another node (exercises de-duplication)
      const ids = [...this.requests.keys()];
      if (ids.length === 0) return;
      const rid = ids[this.rng.intUpTo(Math.min(ids.length, 50) - 1) + Math.max(0, ids.length - 50)] as string;
      const st = this.requests.get(rid) as ClientRequestState;
      const target = pick();
      if (!c.isUp(target)) return;
      c.trace(`retry ${rid} at n${target}`);
      c.step(target, { type: 'ClientWrite', requestId: rid, command: st.command, ack: st.ack });
    }
  }

  private commandOf(rid: string): string {
    // commands are derived from the request id so a retry carries the same command
    return `set k${Number(rid.replace(/\D/g, '')) % 23} `;
  }

  private healEverything(): void {
    const c = this.cluster;
    this.healed = true;
    c.network = RELIABLE_NETWORK;
    c.blocked.clear();
    this.partitionGeneration++;
    for (const id of this.ids) {
      c.crashDuringNextSync(id, false);
      if (!c.isUp(id)) c.start(id);
      else c.unpause(id);
    }
    c.trace('--- healed: all nodes up, network reliable ---');
  }

  // ------------------------------------------------------------------ clients

  private randomWrite(): void {
    const live = this.ids.filter((id) => this.cluster.isUp(id));
    if (live.length === 0) return;
    const target = live[this.rng.intUpTo(live.length - 1)] as NodeId;
    const r = this.rng.next();
    const ack: AckLevel = r < 0.6 ? 'quorum' : r < 0.8 ? 'all' : r < 0.9 ? 'all-applied' : 'one';
    this.submitWrite(target, ack, null);
  }

  /** A linearizable read: its read index must cover every write acknowledged before it was asked. */
  private randomRead(): void {
    const live = this.ids.filter((id) => this.cluster.isUp(id) && !this.cluster.isPaused(id));
    if (live.length === 0) return;
    const target = live[this.rng.intUpTo(live.length - 1)] as NodeId;
    const rid = `q${++this.readCounter}`;
    this.reads.set(rid, this.maxAcknowledgedIndex);
    this.cluster.step(target, { type: 'ReadIndex', requestId: rid });
  }

  private onReadIndex(node: NodeId, answer: ReadIndexAnswer): void {
    const floor = this.reads.get(answer.requestId);
    if (floor === undefined) throw new InvariantViolation('reply-to-known-request', `node ${node} answered unknown read ${answer.requestId}`);
    this.reads.delete(answer.requestId);
    if (!answer.ok) {
      this.extra.readsRefused++;
      return;
    }
    this.extra.readsAnswered++;
    if (answer.index < floor) {
      throw new InvariantViolation('reads-linearizable', `node ${node} gave read ${answer.requestId} index ${answer.index}, but a write at ${floor} was acknowledged before the read started`);
    }
  }

  private submitWrite(target: NodeId, ack: AckLevel, label: string | null): string {
    const n = ++this.writeCounter;
    const rid = label === null ? `r${n}` : `${label}${n}`;
    const bad = label === null && this.rng.chance(0.03);
    const command = bad ? `bad statement ${rid}` : `${this.commandOf(rid)}${rid}`;
    this.requests.set(rid, { ack, command, outcomes: 0 });
    this.extra.writesSubmitted++;
    if (!this.cluster.isUp(target) || this.cluster.isPaused(target)) return rid;
    this.cluster.step(target, { type: 'ClientWrite', requestId: rid, command, ack });
    return rid;
  }

  /** node:requestId of writes the core answered before its node applied them (it says so with an event). */
  private readonly answeredBeforeApply = new Set<string>();

  private onReply(node: NodeId, { requestId, outcome }: ClientReply): void {
    const st = this.requests.get(requestId);
    if (st === undefined) throw new InvariantViolation('reply-to-known-request', `node ${node} answered unknown request ${requestId}`);
    st.outcomes++;
    if (outcome.ok) {
      this.extra.writesAcknowledged++;
      if (st.ack !== 'one') {
        this.cluster.checker.checkAcknowledged(requestId, outcome.index);
        this.maxAcknowledgedIndex = Math.max(this.maxAcknowledgedIndex, outcome.index);
        // Acknowledged means visible where it was acknowledged: the answering node applied it.
        if (!this.cluster.node(node).db.sm.hasApplied(requestId) && !this.answeredBeforeApply.has(`${node}:${requestId}`)) {
          throw new InvariantViolation('acknowledged-visible-locally', `node ${node} acknowledged ${requestId} (index ${outcome.index}, duplicate ${outcome.duplicate}, ack ${st.ack}) before applying it; core applied ${this.cluster.core(node).status().appliedIndex}, database applied ${this.cluster.node(node).db.sm.appliedIndex}`);
        }
      }
    } else {
      this.extra.writesFailed++;
      if (requestId.startsWith('probe') && this.healed) {
        // after healing the probe must succeed; retry it if it raced the final election
        const c = this.cluster;
        c.at(c.now + 200, `retry ${requestId}`, () => c.step(node, { type: 'ClientWrite', requestId, command: st.command, ack: 'quorum' }));
      }
    }
  }

  // ------------------------------------------------------------------ convergence

  private converged(probe: string): boolean {
    const c = this.cluster;
    if (this.ids.some((id) => !c.isUp(id))) return false;
    const statuses = this.ids.map((id) => c.core(id).status());
    const leaders = statuses.filter((s) => s.role === 'leader');
    if (leaders.length !== 1) return false;
    const leader = leaders[0] as (typeof statuses)[number];
    // Bully priority: with everyone alive and caught up, the highest id coordinates.
    if (leader.nodeId !== Math.max(...this.ids)) return false;
    if (!c.checker.acknowledged.has(probe)) return false;
    return statuses.every((s) => s.coordinator === leader.nodeId && s.term === leader.term && s.appliedIndex === leader.lastIndex && s.lastIndex === leader.lastIndex);
  }

  private finalChecks(): void {
    const sms = this.ids.map((id) => this.cluster.node(id).db.sm);
    const first = sms[0] as (typeof sms)[number];
    for (const [i, sm] of sms.entries()) {
      if (sm.appliedChainHash !== first.appliedChainHash || sm.contentKey() !== first.contentKey()) {
        throw new InvariantViolation('replicas-identical', `node ${i + 1} differs from node 1 after convergence`);
      }
    }
    for (const [rid] of this.cluster.checker.acknowledged) {
      for (const [i, sm] of sms.entries()) {
        if (!sm.hasApplied(rid)) throw new InvariantViolation('acknowledged-not-lost', `acknowledged request ${rid} missing on node ${i + 1}`);
      }
    }
  }

  // ------------------------------------------------------------------ utilities

  private expDelay(meanMs: number): number {
    return Math.max(1, Math.round(-Math.log(1 - this.rng.next()) * meanMs));
  }
}

export function runSimulation(opts: SimOptions): SimResult {
  return new Simulator(opts).run();
}
