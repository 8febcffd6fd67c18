// The protocol state machine of one node: failure detector, Bully election under terms and
// majorities, ordered log replication with MD5 checks, catch-up, commit. Client write routing
// (forwarding, the coordinator's request handling, de-duplication) lives in requests.ts, the
// coordinator's per-peer replication progress in progress.ts; this class owns both.
//
// Pure and deterministic: no I/O, no clocks, no Math.random, no async. Time arrives as Tick
// inputs; randomness comes from a PRNG seeded from the config. `step(input)` returns a Ready the
// shell must carry out in order (see types.ts). The object is mutable for speed, but its whole
// behaviour is a function of (config, persisted state, sequence of inputs).
import { assertNever, ErrorCode } from '../errors.js';
import { ReplicatedLog, verifyEntry } from './log.js';
import { Prng } from './prng.js';
import { ProgressTracker } from './progress.js';
import { majorityOf, quorumIndex } from './quorum.js';
import { ReadyBuilder } from './ready-builder.js';
import { ClientRequests } from './requests.js';
import { ReadIndexTracker } from './read-index.js';
import {
  EntryKind,
  Role,
  type CoreConfig,
  type ElectionMsg,
  type Entry,
  type HardState,
  type HeartbeatMsg,
  type Input,
  type Message,
  type NodeId,
  type AppliedMsg,
  type ReadProbeMsg,
  type Ready,
  type ReplicateAckMsg,
  type ReplicateMsg,
  type SnapshotMeta,
  type SnapshotMsg,
  type VoteMsg,
} from './types.js';

/** What the shell recovered from disk when the node starts. */
export interface PersistedState {
  readonly hardState: HardState;
  readonly base: SnapshotMeta;
  readonly entries: readonly Entry[];
  /** Highest index already applied to the database (from its fencing row); those entries are committed. */
  readonly appliedIndex: number;
}

export interface NodeStatus {
  readonly nodeId: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly coordinator: NodeId | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly firstIndex: number;
  readonly coordinatorReady: boolean;
  readonly nodes: readonly {
    readonly id: NodeId;
    readonly online: boolean;
    readonly lastHeardTicksAgo: number | null;
    readonly matchIndex: number | null;
  }[];
}

export class CoreNode {
  readonly id: NodeId;
  private readonly cfg: CoreConfig;
  private readonly peers: readonly NodeId[];
  private readonly prng: Prng;
  private readonly log: ReplicatedLog;

  // persisted
  private term: number;
  private votedFor: NodeId | null;

  // volatile
  private now = 0;
  private role: Role = Role.FOLLOWER;
  private leaderId: NodeId | null = null;
  private lastLeaderContactTick = 0;
  private commitIndex: number;
  private appliedIndex: number;
  private emittedIndex: number;
  private persistedIndex: number;
  private readonly lastHeard = new Map<NodeId, number>();
  private readonly online = new Set<NodeId>();
  private readonly peerLog = new Map<NodeId, { lastLogIndex: number; lastLogTerm: number }>();
  private nextHeartbeatTick = 0;
  private electionDueTick: number | null = null;
  /** No election before peers had one heartbeat interval to announce themselves. */
  private readonly firstElectionTick: number;

  // candidate
  private prevotePhase = false;
  private takeoverElection = false;
  private electionDeadlineTick = 0;
  private readonly votes = new Map<NodeId, boolean>();

  // coordinator
  private readonly progress = new ProgressTracker();
  private coordinatorReady = false;
  private becameLeaderTick = 0;
  private transfer: { target: NodeId; untilTick: number } | null = null;
  private nextTransferTick = 0;

  // every node
  /** Client writes: routing to the coordinator, the coordinator's side, de-duplication. */
  private readonly requests: ClientRequests;
  private readonly reads: ReadIndexTracker;
  /** Follower: the coordinator asked for APPLIED reports (it waits for `all-applied` writes). */
  private leaderWantsApplied = false;
  private reportedApplied = 0;
  private pendingSnapshotInstall: SnapshotMeta | null = null;
  /**
   * A TAKEOVER that arrived before this node's database applied everything committed. A coordinator
   * executes writes on its own database, so it must start from the state after every committed
   * entry: the request waits (as a network delay would) until `Applied` catches up, or is dropped
   * after half the coordinator's wait for it, and the coordinator asks again later.
   */
  private heldTakeover: { readonly from: NodeId; readonly term: number; readonly untilTick: number } | null = null;
  /** False while the shell reports the database unavailable: no coordinator role for this node. */
  private healthy = true;

  private out = new ReadyBuilder();
  private hardDirty = false;

  constructor(config: CoreConfig, persisted: PersistedState) {
    if (!config.nodeIds.includes(config.selfId)) throw new Error(`selfId ${config.selfId} is not in nodeIds`);
    this.cfg = config;
    this.id = config.selfId;
    this.peers = [...config.nodeIds].filter((n) => n !== config.selfId).sort((a, b) => a - b);
    this.prng = new Prng(config.seed);
    this.log = new ReplicatedLog(persisted.base, persisted.entries);
    this.term = persisted.hardState.term;
    this.votedFor = persisted.hardState.votedFor;
    const applied = Math.min(Math.max(persisted.appliedIndex, persisted.base.index), this.log.lastIndex());
    this.appliedIndex = applied;
    this.commitIndex = applied;
    this.emittedIndex = applied;
    this.persistedIndex = this.log.lastIndex();
    this.requests = new ClientRequests(config, {
      now: () => this.now,
      term: () => this.term,
      isLeader: () => this.role === Role.LEADER,
      leaderId: () => this.leaderId,
      hasLiveLeader: () => this.hasLiveLeader(),
      onlineCount: () => this.online.size,
      countRecentlyHeard: () => this.countRecentlyHeard(),
      majority: () => this.majority(),
      coordinatorReady: () => this.coordinatorReady,
      transferTarget: () => this.transfer?.target ?? null,
      persistedIndex: () => this.persistedIndex,
      appliedIndex: () => this.appliedIndex,
      termAt: (index) => this.log.termAt(index),
      allPeersMatch: (index) => this.peers.every((p) => this.progress.match(p) >= index),
      allOnlinePeersApplied: (index) => this.peers.every((p) => !this.online.has(p) || (this.progress.get(p)?.applied ?? 0) >= index),
      out: () => this.out,
      send: (to, msg) => this.send(to, msg),
      appendCommand: (requestId, payload) => {
        const entry = this.log.makeNext(this.term, EntryKind.COMMAND, requestId, payload);
        this.appendLocal(entry);
        return entry;
      },
    });
    this.reads = new ReadIndexTracker(config, {
      now: () => this.now,
      term: () => this.term,
      isLeader: () => this.role === Role.LEADER,
      coordinatorReady: () => this.coordinatorReady,
      leaderId: () => this.leaderId,
      hasLiveLeader: () => this.hasLiveLeader(),
      commitIndex: () => this.commitIndex,
      majority: () => this.majority(),
      peers: () => this.peers,
      send: (to, msg) => this.send(to, msg),
      out: () => this.out,
    });
    for (let i = this.log.firstIndex(); i <= this.log.lastIndex(); i++) this.requests.noteLogged(this.log.entry(i) as Entry);
    this.firstElectionTick = this.cfg.heartbeatIntervalTicks + 1;
  }

  // ------------------------------------------------------------------ public API

  step(input: Input): Ready {
    this.out = new ReadyBuilder();
    switch (input.type) {
      case 'Tick':
        this.onTick();
        break;
      case 'Receive':
        this.onReceive(input.from, input.msg);
        break;
      case 'ClientWrite':
        this.requests.onClientWrite(input.requestId, input.command, input.ack ?? this.cfg.defaultAck);
        break;
      case 'Propose':
        this.requests.onPropose(input.requestId, input.origin, input.payload, input.result);
        this.replicateNewEntries();
        break;
      case 'ProposeBatch':
        for (const item of input.items) this.requests.onPropose(item.requestId, item.origin, item.payload, item.result);
        this.replicateNewEntries();
        break;
      case 'PrepareFailed':
        this.requests.onPrepareFailed(input.requestId, input.error);
        break;
      case 'Persisted':
        if (this.log.termAt(input.index) === input.term && input.index > this.persistedIndex) {
          this.persistedIndex = Math.min(input.index, this.log.lastIndex());
          if (this.role === Role.LEADER) this.advanceCommit();
        }
        break;
      case 'Applied':
        this.onApplied(input.index, input.result);
        break;
      case 'SnapshotReady':
        this.onSnapshotReady(input.to, input.index, input.data);
        break;
      case 'SnapshotInstalled':
        this.onSnapshotInstalled(input.meta);
        break;
      case 'SetHealthy':
        this.onSetHealthy(input.healthy);
        break;
      case 'ReadIndex':
        this.reads.onReadIndex(input.requestId);
        break;
      default:
        assertNever(input, 'input');
    }
    this.finishStep();
    return this.out.build();
  }

  status(): NodeStatus {
    return {
      nodeId: this.id,
      role: this.role,
      term: this.term,
      coordinator: this.leaderId,
      commitIndex: this.commitIndex,
      appliedIndex: this.appliedIndex,
      lastIndex: this.log.lastIndex(),
      lastTerm: this.log.lastTerm(),
      firstIndex: this.log.firstIndex(),
      coordinatorReady: this.role === Role.LEADER && this.coordinatorReady,
      nodes: [this.id, ...this.peers]
        .sort((a, b) => a - b)
        .map((id) => {
          if (id === this.id) return { id, online: true, lastHeardTicksAgo: 0, matchIndex: this.role === Role.LEADER ? this.persistedIndex : null };
          const heard = this.lastHeard.get(id);
          return {
            id,
            online: this.online.has(id),
            lastHeardTicksAgo: heard === undefined ? null : this.now - heard,
            matchIndex: this.role === Role.LEADER ? this.progress.match(id) : null,
          };
        }),
    };
  }

  /** Read-only access for invariant checkers and tests. */
  logView(): ReplicatedLog {
    return this.log;
  }
  hardState(): HardState {
    return { term: this.term, votedFor: this.votedFor };
  }

  // ------------------------------------------------------------------ time

  private onTick(): void {
    this.now++;
    this.updateFailureDetector();
    this.reads.onTick();
    if (this.now >= this.nextHeartbeatTick) {
      this.nextHeartbeatTick = this.now + this.cfg.heartbeatIntervalTicks;
      this.broadcastHeartbeat();
      if (this.role === Role.LEADER) this.heartbeatReplication();
    }
    switch (this.role) {
      case Role.LEADER:
        this.leaderTick();
        break;
      case Role.CANDIDATE:
        if (this.now >= this.electionDeadlineTick) {
          this.role = Role.FOLLOWER;
          this.scheduleElection(this.cfg.electionTimeoutTicks);
        }
        break;
      case Role.FOLLOWER:
        this.followerTick();
        break;
      default:
        assertNever(this.role, 'role');
    }
    this.requests.expireOriginRequests();
    this.reviewHeldTakeover();
  }

  private updateFailureDetector(): void {
    for (const p of this.peers) {
      const heard = this.lastHeard.get(p);
      const isOnline = heard !== undefined && this.now - heard < this.cfg.failureTimeoutTicks;
      if (isOnline && !this.online.has(p)) {
        this.online.add(p);
        this.out.events.push({ type: 'peer-online', peer: p });
      } else if (!isOnline && this.online.has(p)) {
        this.online.delete(p);
        this.out.events.push({ type: 'peer-offline', peer: p, silentTicks: heard === undefined ? this.now : this.now - heard });
      }
    }
  }

  private markHeard(from: NodeId): void {
    this.lastHeard.set(from, this.now);
    if (!this.online.has(from)) {
      this.online.add(from);
      this.out.events.push({ type: 'peer-online', peer: from });
    }
  }

  private followerTick(): void {
    if (this.leaderId !== null && this.now - this.lastLeaderContactTick >= this.cfg.failureTimeoutTicks) {
      this.setLeader(null);
    }
    if (this.leaderId === null && this.now >= this.firstElectionTick && this.healthy) {
      if (this.electionDueTick === null) this.scheduleElection(0);
      else if (this.now >= this.electionDueTick) this.startElection(false);
    }
  }

  /** Bully priority: each live node with a higher id delays us by one stagger. */
  private scheduleElection(baseTicks: number): void {
    const higherLive = this.peers.filter((p) => p > this.id && this.online.has(p)).length;
    this.electionDueTick = this.now + baseTicks + higherLive * this.cfg.electionStaggerTicks + this.jitter();
  }

  private jitter(): number {
    return this.prng.intUpTo(this.cfg.electionJitterTicks);
  }

  // ------------------------------------------------------------------ election

  private majority(): number {
    if (this.cfg.unsafe?.majorityOfLiveNodes) return majorityOf(1 + this.online.size);
    return majorityOf(this.cfg.nodeIds.length);
  }

  private hasLiveLeader(): boolean {
    if (this.role === Role.LEADER) return true;
    return this.leaderId !== null && this.now - this.lastLeaderContactTick < this.cfg.failureTimeoutTicks;
  }

  private startElection(takeover: boolean): void {
    this.electionDueTick = null;
    this.role = Role.CANDIDATE;
    this.votes.clear();
    this.votes.set(this.id, true);
    this.takeoverElection = takeover;
    this.electionDeadlineTick = this.now + this.cfg.electionTimeoutTicks + this.jitter();
    if (takeover) {
      this.beginRealElection();
      return;
    }
    // Pre-vote: ask whether we could win at term+1 without disturbing anyone's term.
    this.prevotePhase = true;
    this.out.events.push({ type: 'election-started', term: this.term + 1, prevote: true, takeover: false });
    if (this.votes.size >= this.majority()) {
      this.beginRealElection();
      return;
    }
    this.broadcast({
      type: 'ELECTION',
      term: this.term + 1,
      prevote: true,
      takeover: false,
      lastLogIndex: this.log.lastIndex(),
      lastLogTerm: this.log.lastTerm(),
    });
  }

  private beginRealElection(): void {
    this.prevotePhase = false;
    this.term++;
    this.votedFor = this.id;
    this.hardDirty = true;
    this.setLeader(null);
    this.votes.clear();
    this.votes.set(this.id, true);
    this.electionDeadlineTick = this.now + this.cfg.electionTimeoutTicks + this.jitter();
    this.out.events.push({ type: 'election-started', term: this.term, prevote: false, takeover: this.takeoverElection });
    if (this.votes.size >= this.majority()) {
      this.becomeLeader();
      return;
    }
    this.broadcast({
      type: 'ELECTION',
      term: this.term,
      prevote: false,
      takeover: this.takeoverElection,
      lastLogIndex: this.log.lastIndex(),
      lastLogTerm: this.log.lastTerm(),
    });
  }

  private onElection(from: NodeId, msg: ElectionMsg): void {
    const upToDate = this.cfg.unsafe?.skipUpToDateCheck === true || this.log.isUpToDate(msg.lastLogTerm, msg.lastLogIndex);
    const leaderBlocks = this.hasLiveLeader() && !msg.takeover && this.leaderId !== from;
    if (msg.prevote) {
      let reason = '';
      if (msg.term <= this.term) reason = `proposed term ${msg.term} is not above ${this.term}`;
      else if (leaderBlocks) reason = `coordinator ${this.leaderId} is alive`;
      else if (!upToDate) reason = 'candidate log is behind';
      this.send(from, { type: 'VOTE', term: reason === '' ? msg.term : this.term, prevote: true, granted: reason === '', reason });
      return;
    }
    if (msg.term < this.term) {
      this.send(from, { type: 'VOTE', term: this.term, prevote: false, granted: false, reason: 'stale term' });
      return;
    }
    if (msg.term > this.term) {
      if (leaderBlocks) {
        this.send(from, { type: 'VOTE', term: this.term, prevote: false, granted: false, reason: `coordinator ${this.leaderId} is alive` });
        return;
      }
      this.becomeFollower(msg.term, null, `election for term ${msg.term} by node ${from}`);
    }
    const canVote = this.votedFor === null || this.votedFor === from;
    const granted = canVote && upToDate;
    if (granted) {
      this.votedFor = from;
      this.hardDirty = true;
      // Give the candidate time to win before running ourselves.
      this.electionDueTick = this.now + this.cfg.electionTimeoutTicks + this.jitter();
    }
    this.send(from, {
      type: 'VOTE',
      term: this.term,
      prevote: false,
      granted,
      reason: granted ? '' : !canVote ? `already voted for ${this.votedFor} in term ${this.term}` : 'candidate log is behind',
    });
  }

  private onVote(from: NodeId, msg: VoteMsg): void {
    if (this.role !== Role.CANDIDATE) return;
    if (msg.prevote) {
      if (!this.prevotePhase) return;
      if (msg.granted && msg.term === this.term + 1) {
        this.votes.set(from, true);
        if (this.countGranted() >= this.majority()) this.beginRealElection();
      } else if (!msg.granted && msg.term > this.term) {
        this.becomeFollower(msg.term, null, `pre-vote refused by node ${from} at term ${msg.term}`);
      }
      return;
    }
    if (this.prevotePhase || msg.term !== this.term) return;
    this.votes.set(from, msg.granted);
    if (this.countGranted() >= this.majority()) this.becomeLeader();
  }

  private countGranted(): number {
    let n = 0;
    for (const g of this.votes.values()) if (g) n++;
    return n;
  }

  private becomeLeader(): void {
    this.role = Role.LEADER;
    this.setLeader(this.id);
    this.becameLeaderTick = this.now;
    this.coordinatorReady = false;
    this.transfer = null;
    this.nextTransferTick = this.now + this.cfg.failureTimeoutTicks;
    this.electionDueTick = null;
    this.progress.reset(this.peers, this.log.lastIndex() + 1, this.now);
    this.out.events.push({ type: 'became-coordinator', term: this.term });
    this.broadcast({ type: 'COORDINATOR', term: this.term });
    // Sync phase: an entry of our own term, committed by a majority, before serving writes.
    this.appendLocal(this.log.makeNext(this.term, EntryKind.NOOP, null, ''));
    for (const p of this.peers) this.sendReplicate(p, true);
    this.advanceCommit();
    this.requests.routeWaitingOriginRequests();
  }

  private becomeFollower(term: number, leader: NodeId | null, reason: string): void {
    const wasLeader = this.role === Role.LEADER;
    if (term > this.term) {
      this.term = term;
      this.votedFor = null;
      this.hardDirty = true;
    }
    this.role = Role.FOLLOWER;
    this.prevotePhase = false;
    this.votes.clear();
    if (wasLeader) {
      this.out.events.push({ type: 'stepped-down', term: this.term, reason });
      this.requests.failCoordinatorRequests();
      this.reads.onSteppedDown();
      this.progress.clear();
      this.transfer = null;
      this.coordinatorReady = false;
    }
    this.setLeader(leader);
    if (leader === null) this.scheduleElection(wasLeader ? this.cfg.failureTimeoutTicks : 0);
  }

  private setLeader(leader: NodeId | null): void {
    if (leader !== null && leader !== this.id) {
      this.lastLeaderContactTick = this.now;
      this.electionDueTick = null;
    }
    if (leader === this.leaderId) return;
    this.leaderId = leader;
    this.leaderWantsApplied = false;
    this.reportedApplied = 0;
    this.out.events.push({ type: 'coordinator-changed', term: this.term, coordinator: leader });
    if (leader !== null) this.requests.routeWaitingOriginRequests();
  }

  // ------------------------------------------------------------------ messages

  private onReceive(from: NodeId, msg: Message): void {
    if (from === this.id || !this.peers.includes(from)) {
      this.out.events.push({ type: 'message-rejected', from, reason: `unknown node id ${from}` });
      return;
    }
    this.markHeard(from);
    // Messages that carry a coordinator's authority move us to a higher term.
    const authoritative = msg.type === 'REPLICATE' || msg.type === 'COORDINATOR' || msg.type === 'SNAPSHOT' || msg.type === 'TAKEOVER' || msg.type === 'READ_PROBE';
    if (authoritative && msg.term > this.term) {
      this.becomeFollower(msg.term, from, `coordinator ${from} has term ${msg.term}`);
    } else if ((msg.type === 'REPLICATE_ACK' || msg.type === 'READ_PROBE_ACK') && msg.term > this.term) {
      this.becomeFollower(msg.term, null, `node ${from} has term ${msg.term}`);
      return;
    }
    switch (msg.type) {
      case 'HEARTBEAT':
        this.onHeartbeat(from, msg);
        break;
      case 'ELECTION':
        this.onElection(from, msg);
        break;
      case 'VOTE':
        this.onVote(from, msg);
        break;
      case 'COORDINATOR':
        if (msg.term === this.term && this.role !== Role.LEADER) {
          if (this.role === Role.CANDIDATE) this.becomeFollower(msg.term, from, 'coordinator announced');
          this.setLeader(from);
        }
        break;
      case 'REPLICATE':
        this.onReplicate(from, msg);
        break;
      case 'REPLICATE_ACK':
        this.onReplicateAck(from, msg);
        break;
      case 'TAKEOVER':
        if (msg.term === this.term && this.leaderId === from && this.role === Role.FOLLOWER && this.healthy) {
          if (this.appliedIndex < this.commitIndex) {
            this.heldTakeover = { from, term: msg.term, untilTick: this.now + Math.floor(this.cfg.electionTimeoutTicks / 2) };
            this.out.events.push({ type: 'takeover-held', from, appliedIndex: this.appliedIndex, commitIndex: this.commitIndex });
          } else {
            this.takeOver();
          }
        }
        break;
      case 'SNAPSHOT':
        this.onSnapshot(from, msg);
        break;
      case 'FORWARD':
        this.requests.onForward(from, msg);
        break;
      case 'FORWARD_REPLY':
        this.requests.onForwardReply(from, msg);
        break;
      case 'READ_INDEX':
        this.reads.onReadIndexRequest(from, msg);
        break;
      case 'READ_INDEX_REPLY':
        this.reads.onReadIndexReply(from, msg);
        break;
      case 'READ_PROBE':
        this.onReadProbe(from, msg);
        break;
      case 'READ_PROBE_ACK':
        this.reads.onReadProbeAck(from, msg);
        break;
      case 'APPLIED':
        this.onAppliedReport(from, msg);
        break;
      default:
        assertNever(msg, 'message');
    }
  }

  /** The coordinator asks us to confirm it still leads (for a linearizable read): we do, at our term. */
  private onReadProbe(from: NodeId, msg: ReadProbeMsg): void {
    if (msg.term === this.term && this.role !== Role.LEADER) {
      if (this.role === Role.CANDIDATE) this.becomeFollower(msg.term, from, `coordinator ${from} probing`);
      this.setLeader(from);
      this.lastLeaderContactTick = this.now;
    }
    // A probe of an older term gets our higher term back, which makes its sender step down.
    if (msg.term === this.term && this.leaderId !== from) return;
    this.send(from, { type: 'READ_PROBE_ACK', term: this.term, seq: msg.seq });
  }

  private takeOver(): void {
    this.heldTakeover = null;
    this.out.events.push({ type: 'takeover-requested', term: this.term, target: this.id });
    this.startElection(true);
  }

  /** Acts on a held TAKEOVER once the database caught up; drops it when stale or too old. */
  private reviewHeldTakeover(): void {
    const held = this.heldTakeover;
    if (held === null) return;
    let reason: string | null = null;
    if (held.term !== this.term || this.leaderId !== held.from || this.role !== Role.FOLLOWER || !this.healthy) reason = 'the coordinator or term changed';
    else if (this.now > held.untilTick) reason = 'the database did not catch up in time; the coordinator will ask again';
    if (reason !== null) {
      this.heldTakeover = null;
      this.out.events.push({ type: 'takeover-dropped', from: held.from, appliedIndex: this.appliedIndex, reason });
      return;
    }
    if (this.appliedIndex >= this.commitIndex) this.takeOver();
  }

  private onHeartbeat(from: NodeId, msg: HeartbeatMsg): void {
    this.peerLog.set(from, { lastLogIndex: msg.lastLogIndex, lastLogTerm: msg.lastLogTerm });
    if (msg.leaderId === from && msg.term >= this.term && this.role !== Role.LEADER) {
      if (msg.term > this.term) this.becomeFollower(msg.term, from, `coordinator ${from} has term ${msg.term}`);
      else if (this.role === Role.CANDIDATE) this.becomeFollower(msg.term, from, 'coordinator heartbeat');
      this.setLeader(from);
      this.lastLeaderContactTick = this.now;
    }
  }

  private broadcastHeartbeat(): void {
    this.broadcast({
      type: 'HEARTBEAT',
      term: this.term,
      leaderId: this.role === Role.LEADER ? this.id : this.leaderId,
      lastLogIndex: this.log.lastIndex(),
      lastLogTerm: this.log.lastTerm(),
      commitIndex: this.commitIndex,
    });
  }

  private send(to: NodeId, msg: Message): void {
    this.out.messages.push({ to, msg });
  }

  private broadcast(msg: Message): void {
    for (const p of this.peers) this.send(p, msg);
  }

  // ------------------------------------------------------------------ replication (follower side)

  private onReplicate(from: NodeId, msg: ReplicateMsg): void {
    if (msg.term < this.term) {
      this.send(from, { type: 'REPLICATE_ACK', term: this.term, success: false, matchIndex: 0, probeIndex: 0, reason: 'stale term' });
      return;
    }
    if (this.role !== Role.FOLLOWER) this.becomeFollower(msg.term, from, `coordinator ${from} replicating`);
    this.setLeader(from);
    this.lastLeaderContactTick = this.now;
    this.leaderWantsApplied = msg.wantApplied === true;
    if (this.pendingSnapshotInstall !== null) return; // the leader will retry after the install

    let prevIndex = msg.prevIndex;
    let prevTerm = msg.prevTerm;
    let entries = msg.entries;
    const base = this.log.base();
    if (prevIndex < base.index) {
      // Everything up to our base is committed, hence identical to the coordinator's log.
      entries = entries.filter((e) => e.index > base.index);
      prevIndex = base.index;
      prevTerm = base.term;
      if (entries.length > 0 && (entries[0] as Entry).index !== base.index + 1) {
        this.ackFailure(from, msg.prevIndex, Math.max(this.commitIndex, base.index), 'gap after compacted prefix');
        return;
      }
    }
    if (this.log.termAt(prevIndex) !== prevTerm) {
      const hint = Math.max(this.commitIndex, Math.min(this.log.lastIndex(), prevIndex - 1));
      this.ackFailure(from, msg.prevIndex, hint, `no entry at ${prevIndex} with term ${prevTerm}`);
      return;
    }
    let matched = prevIndex;
    for (const e of entries) {
      if (e.index !== matched + 1) break;
      const local = this.log.termAt(e.index);
      if (local === e.term) {
        matched = e.index;
        continue;
      }
      if (this.cfg.unsafe?.skipChecksum !== true) {
        const problem = verifyEntry(e, this.log.chainHashAt(e.index - 1) as string);
        if (problem !== null) {
          this.out.events.push({ type: 'checksum-mismatch', from, index: e.index, detail: problem });
          this.commitIndex = Math.max(this.commitIndex, Math.min(msg.commitIndex, matched));
          this.ackFailure(from, msg.prevIndex, matched, ErrorCode.CHECKSUM_MISMATCH);
          return;
        }
      }
      if (local !== undefined) {
        if (e.index <= this.commitIndex) {
          throw new Error(`safety: node ${this.id} asked to overwrite committed entry ${e.index} (commit ${this.commitIndex})`);
        }
        this.truncateLocal(e.index);
      }
      this.appendLocal(e);
      matched = e.index;
    }
    this.commitIndex = Math.max(this.commitIndex, Math.min(msg.commitIndex, matched));
    this.send(from, { type: 'REPLICATE_ACK', term: this.term, success: true, matchIndex: matched, probeIndex: 0, reason: '' });
  }

  private ackFailure(to: NodeId, probeIndex: number, hint: number, reason: string): void {
    this.send(to, { type: 'REPLICATE_ACK', term: this.term, success: false, matchIndex: hint, probeIndex, reason });
  }

  private appendLocal(e: Entry): void {
    this.log.append(e);
    this.out.entriesToAppend.push(e);
    this.requests.noteLogged(e);
  }

  private truncateLocal(from: number): void {
    for (let i = from; i <= this.log.lastIndex(); i++) {
      const rid = this.log.entry(i)?.requestId;
      if (rid != null) this.requests.forgetLogged(rid, i);
    }
    this.log.truncateFrom(from);
    this.out.truncate(from);
    this.persistedIndex = Math.min(this.persistedIndex, from - 1);
  }

  private onSnapshot(from: NodeId, msg: SnapshotMsg): void {
    if (msg.term < this.term) {
      this.send(from, { type: 'REPLICATE_ACK', term: this.term, success: false, matchIndex: 0, probeIndex: 0, reason: 'stale term' });
      return;
    }
    if (this.role !== Role.FOLLOWER) this.becomeFollower(msg.term, from, `coordinator ${from} sent a snapshot`);
    this.setLeader(from);
    this.lastLeaderContactTick = this.now;
    if (msg.meta.index <= this.commitIndex || this.pendingSnapshotInstall !== null) {
      this.send(from, { type: 'REPLICATE_ACK', term: this.term, success: true, matchIndex: this.commitIndex, probeIndex: 0, reason: '' });
      return;
    }
    this.pendingSnapshotInstall = msg.meta;
    this.out.snapshotToInstall = { meta: msg.meta, data: msg.data };
  }

  private onSnapshotInstalled(meta: SnapshotMeta): void {
    if (this.pendingSnapshotInstall === null || this.pendingSnapshotInstall.index !== meta.index) return;
    this.pendingSnapshotInstall = null;
    for (let i = this.log.firstIndex(); i <= Math.min(meta.index, this.log.lastIndex()); i++) {
      const rid = this.log.entry(i)?.requestId;
      if (rid != null) this.requests.forgetRequest(rid);
    }
    const keptSuffix = this.log.termAt(meta.index) === meta.term && this.log.chainHashAt(meta.index) === meta.chainHash;
    if (!keptSuffix) this.requests.forgetAllLogged();
    this.log.resetTo(meta);
    this.commitIndex = Math.max(this.commitIndex, meta.index);
    this.appliedIndex = Math.max(this.appliedIndex, meta.index);
    this.emittedIndex = Math.max(this.emittedIndex, meta.index);
    this.persistedIndex = Math.max(Math.min(this.persistedIndex, this.log.lastIndex()), meta.index);
    this.out.events.push({ type: 'snapshot-installed', index: meta.index });
    this.requests.releaseApplied();
    if (this.leaderId !== null && this.role === Role.FOLLOWER) {
      this.send(this.leaderId, { type: 'REPLICATE_ACK', term: this.term, success: true, matchIndex: meta.index, probeIndex: 0, reason: '' });
    }
  }

  private onSetHealthy(healthy: boolean): void {
    if (healthy === this.healthy) return;
    this.healthy = healthy;
    if (healthy || this.role !== Role.LEADER) return;
    // A coordinator whose database is gone cannot execute writes: hand over to the most caught-up
    // live peer (highest id among equals) so the cluster keeps serving, then step down.
    let target: NodeId | null = null;
    let best = -1;
    for (const p of this.peers) {
      const match = this.progress.match(p);
      if (!this.online.has(p)) continue;
      if (match > best || (match === best && target !== null && p > target)) {
        best = match;
        target = p;
      }
    }
    if (target !== null && best === this.log.lastIndex()) {
      this.out.events.push({ type: 'takeover-requested', term: this.term, target });
      this.send(target, { type: 'TAKEOVER', term: this.term });
    }
    this.becomeFollower(this.term, null, 'the database is unavailable');
  }

  // ------------------------------------------------------------------ replication (coordinator side)

  private leaderTick(): void {
    const heardMajority = this.countRecentlyHeard() >= this.majority();
    if (!heardMajority && this.now - this.becameLeaderTick >= this.cfg.failureTimeoutTicks) {
      this.becomeFollower(this.term, null, `no contact with a majority for ${this.cfg.failureTimeoutTicks} ticks`);
      return;
    }
    if (this.transfer !== null && this.now >= this.transfer.untilTick) {
      this.transfer = null;
      this.nextTransferTick = this.now + this.cfg.failureTimeoutTicks;
      this.requests.dispatchQueued();
    }
    this.maybeHandOver();
  }

  private countRecentlyHeard(): number {
    let n = 1;
    for (const p of this.peers) {
      const heard = this.lastHeard.get(p);
      if (heard !== undefined && this.now - heard < this.cfg.failureTimeoutTicks) n++;
    }
    return n;
  }

  /** Bully priority: hand over to the highest live node above us once it has caught up. */
  private maybeHandOver(): void {
    if (!this.coordinatorReady || this.transfer !== null || this.now < this.nextTransferTick) return;
    if (this.requests.hasPreparing()) return;
    let target: NodeId | null = null;
    for (const p of this.peers) {
      if (p <= this.id || !this.online.has(p)) continue;
      if (this.progress.match(p) !== this.log.lastIndex()) continue;
      if (target === null || p > target) target = p;
    }
    if (target === null) return;
    this.transfer = { target, untilTick: this.now + this.cfg.electionTimeoutTicks + this.cfg.electionJitterTicks };
    this.out.events.push({ type: 'takeover-requested', term: this.term, target });
    this.send(target, { type: 'TAKEOVER', term: this.term });
  }

  private heartbeatReplication(): void {
    for (const p of this.peers) {
      this.progress.get(p)?.onHeartbeat(this.now, this.cfg.heartbeatIntervalTicks, this.cfg.failureTimeoutTicks);
      this.sendReplicate(p, true);
    }
  }

  /** After proposals: send the new entries to every peer (commit may advance for a single node). */
  private replicateNewEntries(): void {
    if (this.role !== Role.LEADER) return;
    for (const p of this.peers) this.sendReplicate(p, false);
    this.advanceCommit();
  }

  private sendReplicate(peer: NodeId, probe: boolean): void {
    const prog = this.progress.get(peer);
    if (!prog) return;
    const limit = prog.inflightLimit(this.cfg.maxInflightMessages);
    for (let rounds = 0; rounds < limit; rounds++) {
      if (prog.inflight >= limit) return;
      if (prog.next <= this.log.base().index) {
        if (prog.requestSnapshot(this.now)) this.out.snapshotRequests.push(peer);
        return;
      }
      const prevIndex = prog.next - 1;
      const prevTerm = this.log.termAt(prevIndex) as number;
      const entries = this.log.slice(prog.next, this.log.lastIndex(), this.cfg.maxEntriesPerMessage, this.cfg.maxBytesPerMessage);
      if (entries.length === 0 && !probe) return;
      this.send(peer, { type: 'REPLICATE', term: this.term, prevIndex, prevTerm, entries, commitIndex: this.commitIndex, ...this.applyReportsWanted() });
      const last = entries[entries.length - 1];
      prog.sentReplicate(prevIndex, last === undefined ? null : last.index, this.commitIndex);
      if (last === undefined) return;
      probe = false;
    }
  }

  private onReplicateAck(from: NodeId, msg: ReplicateAckMsg): void {
    if (this.role !== Role.LEADER || msg.term < this.term) return;
    const prog = this.progress.get(from);
    if (!prog) return;
    prog.acked(this.now);
    if (msg.success) {
      prog.onSuccess(msg.matchIndex, this.log.lastIndex());
      if (prog.catchUpReportDue(this.now, this.cfg.heartbeatIntervalTicks, this.log.lastIndex())) {
        if (this.log.lastIndex() - prog.match > this.cfg.maxEntriesPerMessage) {
          this.out.events.push({ type: 'catch-up', peer: from, matchIndex: prog.match, lastIndex: this.log.lastIndex() });
        }
      }
      this.advanceCommit();
    } else {
      if (prog.isStaleRejection(msg.probeIndex)) return;
      this.out.events.push({ type: 'replication-rejected', peer: from, reason: msg.reason });
      prog.onRejection(msg.reason === ErrorCode.CHECKSUM_MISMATCH, msg.matchIndex, msg.probeIndex);
    }
    this.sendReplicate(from, false);
  }

  private advanceCommit(): void {
    const matches = [this.persistedIndex];
    for (const p of this.peers) {
      if (this.cfg.unsafe?.majorityOfLiveNodes && !this.online.has(p)) continue;
      matches.push(this.progress.match(p));
    }
    const n = quorumIndex(matches, this.majority());
    if (n > this.commitIndex && this.log.termAt(n) === this.term) {
      this.commitIndex = n;
      if (!this.coordinatorReady) {
        this.coordinatorReady = true;
        this.requests.dispatchQueued();
        this.reads.onCoordinatorReady();
      }
    }
  }

  /**
   * Followers learn that the commit index advanced within one round trip, not at the next heartbeat:
   * a peer that nothing in flight will tell gets one empty REPLICATE carrying it (at most one per
   * peer per step, and none while REPLICATEs to it are unacknowledged: their acks lead to the next
   * send, which carries the newer commit index).
   */
  private notifyCommit(): void {
    for (const p of this.peers) {
      const prog = this.progress.get(p);
      if (prog === undefined || !this.online.has(p) || !prog.needsCommitNotice(this.commitIndex)) continue;
      if (prog.next <= this.log.base().index) continue;
      const prevIndex = prog.next - 1;
      this.send(p, { type: 'REPLICATE', term: this.term, prevIndex, prevTerm: this.log.termAt(prevIndex) as number, entries: [], commitIndex: this.commitIndex, ...this.applyReportsWanted() });
      prog.sentReplicate(prevIndex, null, this.commitIndex);
    }
  }

  private applyReportsWanted(): { wantApplied?: true } {
    return this.requests.wantsApplyReports() ? { wantApplied: true } : {};
  }

  /** Follower: tell the coordinator how far the database applied, while it waits for `all-applied` writes. */
  private reportApplied(): void {
    if (this.role !== Role.FOLLOWER || this.leaderId === null || !this.leaderWantsApplied || this.appliedIndex <= this.reportedApplied) return;
    this.reportedApplied = this.appliedIndex;
    this.send(this.leaderId, { type: 'APPLIED', term: this.term, appliedIndex: this.appliedIndex });
  }

  private onAppliedReport(from: NodeId, msg: AppliedMsg): void {
    if (this.role !== Role.LEADER || msg.term !== this.term) return;
    const prog = this.progress.get(from);
    if (prog === undefined || msg.appliedIndex <= prog.applied) return;
    prog.applied = msg.appliedIndex;
  }

  private onSnapshotReady(to: NodeId, index: number, data: string): void {
    const prog = this.progress.get(to);
    if (this.role !== Role.LEADER || !prog) return;
    const meta = this.log.metaAt(index);
    if (meta === undefined) {
      prog.snapshotRequestedAt = null;
      return;
    }
    this.send(to, { type: 'SNAPSHOT', term: this.term, meta, data });
    this.out.events.push({ type: 'snapshot-sent', peer: to, index });
    prog.snapshotSent(index);
  }

  // ------------------------------------------------------------------ apply and compaction

  private onApplied(index: number, result: unknown): void {
    if (index <= this.appliedIndex) return;
    this.appliedIndex = Math.min(index, this.emittedIndex);
    const e = this.log.entry(index);
    this.requests.noteApplied(index, e?.requestId ?? null, result);
    this.requests.releaseApplied();
    this.maybeCompact();
    this.reviewHeldTakeover();
  }

  private maybeCompact(): void {
    const keepFrom = this.appliedIndex - this.cfg.logRetentionEntries;
    if (keepFrom - this.log.base().index < this.cfg.compactionBatchEntries) return;
    const meta = this.log.metaAt(keepFrom);
    if (meta === undefined) return;
    for (let i = this.log.firstIndex(); i <= keepFrom; i++) {
      const rid = this.log.entry(i)?.requestId;
      if (rid != null) this.requests.forgetLogged(rid, i);
    }
    this.log.compactTo(meta);
    this.out.compactUpTo = meta;
  }

  // ------------------------------------------------------------------ end of step

  private finishStep(): void {
    const upTo = Math.min(this.commitIndex, this.log.lastIndex(), this.emittedIndex + this.cfg.maxCommittedPerReady);
    for (let i = Math.max(this.emittedIndex + 1, this.log.firstIndex()); i <= upTo; i++) {
      this.out.committed.push(this.log.entry(i) as Entry);
    }
    if (upTo > this.emittedIndex) this.emittedIndex = upTo;
    if (this.role === Role.LEADER) {
      this.requests.completeCoordinatorRequests();
      this.notifyCommit();
      this.reads.flush();
    } else {
      this.reportApplied();
    }
    if (this.hardDirty) {
      this.out.hardState = { term: this.term, votedFor: this.votedFor };
      this.hardDirty = false;
    }
  }
}

