// Client write routing (etcd keeps this outside raft; here it is part of the pure core): the origin
// side (a write this node's client is waiting for, routed to the coordinator, retried, timed out)
// and the coordinator side (queued, prepared by the shell, appended, answered at its ack level),
// plus de-duplication by request id (the ids of the retained log and a bounded cache of results).
//
// The CoreNode owns one ClientRequests and tells it what happens (client inputs, FORWARDs, log
// appends and truncations, applies, role changes); the requests see the node only through
// RequestHost. Pure and deterministic like the rest of src/core.
import { assertNever, ErrorCode, errorInfo, type ClusterErrorCode, type ErrorInfo } from '../errors.js';
import { BoundedMap } from './bounded-map.js';
import { majorityOf } from './quorum.js';
import type { ReadyBuilder } from './ready-builder.js';
import type { AckLevel, CoreConfig, Entry, ForwardMsg, ForwardReplyMsg, Message, NodeId, Outcome } from './types.js';

/** What the requests need from the node: read-only views of its state, and three actions. */
export interface RequestHost {
  now(): number;
  term(): number;
  isLeader(): boolean;
  /** The coordinator this node follows (itself when coordinating), or null. */
  leaderId(): NodeId | null;
  hasLiveLeader(): boolean;
  /** Peers the failure detector considers online (not counting this node). */
  onlineCount(): number;
  /** This node plus the peers heard from within the failure timeout. */
  countRecentlyHeard(): number;
  majority(): number;
  /** The coordinator committed an entry of its term and may serve writes. */
  coordinatorReady(): boolean;
  /** The node the coordinator is handing over to, or null. */
  transferTarget(): NodeId | null;
  persistedIndex(): number;
  appliedIndex(): number;
  termAt(index: number): number | undefined;
  /** Every peer's log matches the coordinator's up to `index`. */
  allPeersMatch(index: number): boolean;
  /** Every peer the failure detector considers online reported it applied `index`. */
  allOnlinePeersApplied(index: number): boolean;
  /** The current step's output (replies, prepare requests). */
  out(): ReadyBuilder;
  send(to: NodeId, msg: Message): void;
  /** Appends a command entry of the current term to the coordinator's log. */
  appendCommand(requestId: string, payload: string): Entry;
}

/** A write this node's clients are waiting for. */
interface OriginRequest {
  readonly requestId: string;
  readonly command: string;
  readonly ack: AckLevel;
  readonly deadlineTick: number;
  readonly coordinatorDeadlineTick: number;
  /**
   * waiting: no coordinator to send to; sent: handed to the coordinator (maybe ourselves); applying:
   * committed, answered once this node has applied it too (`committed` holds the outcome).
   */
  state: 'waiting' | 'sent' | 'applying';
  committed: (Outcome & { readonly ok: true }) | null;
  sentTo: NodeId | null;
  sentAtTick: number;
  /** Attempts handed to a coordinator that have not been definitely refused. */
  unresolvedAttempts: number;
  /** A coordinator reported it logged the write but could not finish it. */
  possiblyLogged: boolean;
}

/** A write the coordinator is handling, for one or more origins. */
interface CoordinatorRequest {
  readonly requestId: string;
  readonly command: string;
  readonly ack: AckLevel;
  origins: NodeId[];
  state: 'queued' | 'preparing' | 'appended';
  index: number;
  preparedResult: unknown;
  duplicate: boolean;
}

/** Errors by which a coordinator says it did not log the write. */
const DEFINITE_REFUSALS: ReadonlySet<string> = new Set([ErrorCode.NOT_COORDINATOR, ErrorCode.NO_COORDINATOR, ErrorCode.NO_QUORUM, ErrorCode.OVERLOADED, ErrorCode.TRANSACTION_ABORTED]);
const REROUTABLE: ReadonlySet<string> = new Set([ErrorCode.NOT_COORDINATOR, ErrorCode.NO_COORDINATOR, ErrorCode.UNKNOWN_OUTCOME]);

export class ClientRequests {
  // every node
  private readonly originRequests = new Map<string, OriginRequest>();
  /** requestId -> index, for entries in the retained log. */
  private readonly requestIndex = new Map<string, number>();
  /** requestId -> (index, result) of applied entries, bounded. */
  private readonly resultCache: BoundedMap<string, { index: number; result: unknown }>;

  // coordinator
  private readonly coordinatorRequests = new Map<string, CoordinatorRequest>();
  private readonly appliedResults = new Map<number, unknown>();

  private readonly id: NodeId;

  constructor(
    private readonly cfg: CoreConfig,
    private readonly host: RequestHost,
  ) {
    this.id = cfg.selfId;
    this.resultCache = new BoundedMap(cfg.requestCacheSize);
  }

  // ------------------------------------------------------------------ de-duplication bookkeeping

  /** An entry is in the log (recovered, appended or received). */
  noteLogged(e: Entry): void {
    if (e.requestId !== null) this.requestIndex.set(e.requestId, e.index);
  }

  /** The entry at `index` left the log (truncated or compacted). */
  forgetLogged(requestId: string, index: number): void {
    if (this.requestIndex.get(requestId) === index) this.requestIndex.delete(requestId);
  }

  /** A snapshot replaced the log up to an entry carrying `requestId`. */
  forgetRequest(requestId: string): void {
    this.requestIndex.delete(requestId);
  }

  /** A snapshot replaced the whole log. */
  forgetAllLogged(): void {
    this.requestIndex.clear();
  }

  /** The database applied `index`; its result answers retries of the same request id. */
  noteApplied(index: number, requestId: string | null, result: unknown): void {
    if (requestId !== null) this.resultCache.set(requestId, { index, result });
    if (this.host.isLeader()) this.appliedResults.set(index, result);
  }

  /** A write waits for every online node to apply it: followers must report their applies. */
  wantsApplyReports(): boolean {
    for (const r of this.coordinatorRequests.values()) if (r.ack === 'all-applied') return true;
    return false;
  }

  /** A write is being prepared by the shell (the coordinator does not hand over meanwhile). */
  hasPreparing(): boolean {
    for (const r of this.coordinatorRequests.values()) if (r.state === 'preparing') return true;
    return false;
  }

  // ------------------------------------------------------------------ client writes: origin side

  onClientWrite(requestId: string, command: string, ack: AckLevel): void {
    const done = this.resultCache.get(requestId);
    if (done !== undefined) {
      this.host.out().replies.push({ requestId, outcome: { ok: true, index: done.index, result: done.result, duplicate: true } });
      return;
    }
    if (this.originRequests.has(requestId)) return; // already in flight; its reply will come once
    if (this.originRequests.size >= this.cfg.maxPendingWrites) {
      this.host.out().replies.push({ requestId, outcome: fail(ErrorCode.OVERLOADED, `more than ${this.cfg.maxPendingWrites} writes are waiting on node ${this.id}`) });
      return;
    }
    const req: OriginRequest = {
      requestId,
      command,
      ack,
      deadlineTick: this.host.now() + this.cfg.writeTimeoutTicks,
      coordinatorDeadlineTick: this.host.now() + this.cfg.coordinatorWaitTicks,
      state: 'waiting',
      sentTo: null,
      sentAtTick: this.host.now(),
      unresolvedAttempts: 0,
      possiblyLogged: false,
      committed: null,
    };
    this.originRequests.set(requestId, req);
    this.routeOriginRequest(req);
  }

  private routeOriginRequest(req: OriginRequest): void {
    if (this.host.isLeader()) {
      req.state = 'sent';
      req.sentTo = this.id;
      req.sentAtTick = this.host.now();
      req.unresolvedAttempts++;
      this.acceptAtCoordinator(req.requestId, this.id, req.command, req.ack);
      return;
    }
    const leader = this.host.leaderId();
    if (leader !== null && this.host.hasLiveLeader()) {
      req.state = 'sent';
      req.sentTo = leader;
      req.sentAtTick = this.host.now();
      req.unresolvedAttempts++;
      this.host.send(leader, { type: 'FORWARD', term: this.host.term(), requestId: req.requestId, command: req.command, ack: req.ack });
      return;
    }
    req.state = 'waiting';
    req.sentTo = null;
    if (1 + this.host.onlineCount() < majorityOf(this.cfg.nodeIds.length)) {
      this.finishOrigin(req.requestId, this.noQuorumOutcome(req));
    }
  }

  private noQuorumOutcome(req: OriginRequest): Outcome {
    const reachable = 1 + this.host.onlineCount();
    const needed = majorityOf(this.cfg.nodeIds.length);
    const msg = `node ${this.id} reaches ${reachable} of ${this.cfg.nodeIds.length} nodes; a majority of ${needed} is needed to write`;
    return mayHaveBeenApplied(req) ? fail(ErrorCode.UNKNOWN_OUTCOME, `${msg}; an earlier attempt may have been applied`) : fail(ErrorCode.NO_QUORUM, msg);
  }

  routeWaitingOriginRequests(): void {
    for (const req of this.originRequests.values()) if (req.state === 'waiting') this.routeOriginRequest(req);
  }

  /** Delivers an outcome produced by the coordinator (possibly ourselves) to the waiting origin request. */
  private onOutcomeForOrigin(requestId: string, outcome: Outcome): void {
    const req = this.originRequests.get(requestId);
    if (!req || req.state === 'applying') return; // already committed; a late duplicate answer
    if (!outcome.ok) {
      if (DEFINITE_REFUSALS.has(outcome.error.code)) req.unresolvedAttempts = Math.max(0, req.unresolvedAttempts - 1);
      else if (outcome.error.code === ErrorCode.UNKNOWN_OUTCOME) req.possiblyLogged = true;
    }
    if (!outcome.ok && REROUTABLE.has(outcome.error.code) && this.host.now() < req.deadlineTick) {
      // The coordinator could not finish it (handover, step-down): wait for a coordinator and
      // route again with the same id; de-duplication at the coordinator makes this safe.
      const refusedBy = req.sentTo;
      req.state = 'waiting';
      req.sentTo = null;
      req.sentAtTick = this.host.now();
      const target = this.host.isLeader() ? this.id : this.host.leaderId();
      if (target !== null && target !== refusedBy) this.routeOriginRequest(req);
      return;
    }
    if (!outcome.ok && outcome.error.code !== ErrorCode.UNKNOWN_OUTCOME && mayHaveBeenApplied(req) && DEFINITE_REFUSALS.has(outcome.error.code)) {
      this.finishOrigin(requestId, fail(ErrorCode.UNKNOWN_OUTCOME, `${outcome.error.message}; an earlier attempt may have been applied`, outcome.error.code === ErrorCode.SQL_ERROR ? null : outcome.error.coordinatorHint));
      return;
    }
    this.finishOrigin(requestId, outcome);
  }

  private finishOrigin(requestId: string, outcome: Outcome): void {
    const req = this.originRequests.get(requestId);
    if (req === undefined || req.state === 'applying') return;
    if (outcome.ok && req.ack !== 'one' && this.host.appliedIndex() < outcome.index) {
      // Acknowledged means visible here: every session on this node must see the write once its
      // client is answered, so the answer waits for this node's own apply ('one' does not wait:
      // it answers before any node applied the write).
      req.state = 'applying';
      req.committed = outcome;
      return;
    }
    this.originRequests.delete(requestId);
    this.host.out().replies.push({ requestId, outcome });
  }

  /** This node applied more entries: answer the committed writes they cover. */
  releaseApplied(): void {
    const applied = this.host.appliedIndex();
    for (const req of this.originRequests.values()) {
      if (req.state !== 'applying' || req.committed === null || req.committed.index > applied) continue;
      this.originRequests.delete(req.requestId);
      this.host.out().replies.push({ requestId: req.requestId, outcome: req.committed });
    }
  }

  expireOriginRequests(): void {
    for (const req of [...this.originRequests.values()]) {
      if (req.state === 'applying') {
        if (this.host.now() < req.deadlineTick || req.committed === null) continue;
        // Committed, but this node's database is behind (or unavailable): the write is not lost,
        // so the client gets its success; the event says that local sessions may not see it yet.
        this.originRequests.delete(req.requestId);
        this.host.out().events.push({ type: 'acknowledged-before-local-apply', requestId: req.requestId, index: req.committed.index, appliedIndex: this.host.appliedIndex() });
        this.host.out().replies.push({ requestId: req.requestId, outcome: req.committed });
        continue;
      }
      if (req.state === 'waiting') {
        if (this.host.now() < req.deadlineTick && this.host.now() - req.sentAtTick >= this.cfg.heartbeatIntervalTicks * 2 && (this.host.isLeader() || this.host.hasLiveLeader())) {
          this.routeOriginRequest(req);
          continue;
        }
        if (this.host.now() >= req.coordinatorDeadlineTick || this.host.now() >= req.deadlineTick) {
          if (1 + this.host.onlineCount() < majorityOf(this.cfg.nodeIds.length)) this.finishOrigin(req.requestId, this.noQuorumOutcome(req));
          else
            this.finishOrigin(
              req.requestId,
              mayHaveBeenApplied(req)
                ? fail(ErrorCode.UNKNOWN_OUTCOME, `no coordinator answered within the write timeout; the write may have been applied`)
                : fail(ErrorCode.NO_COORDINATOR, `no coordinator elected within ${this.cfg.coordinatorWaitTicks} ticks; retry`, this.host.leaderId()),
            );
        }
        continue;
      }
      if (this.host.now() >= req.deadlineTick) {
        this.finishOrigin(req.requestId, fail(ErrorCode.UNKNOWN_OUTCOME, `no outcome within the write timeout; the write may or may not have been applied`, this.host.leaderId()));
        continue;
      }
      // Resend a forward whose reply may have been lost; the coordinator de-duplicates by request id.
      if (req.sentTo !== null && req.sentTo !== this.id && this.host.now() - req.sentAtTick >= this.cfg.heartbeatIntervalTicks * 2) {
        this.routeOriginRequest(req);
      }
    }
  }

  onForwardReply(_from: NodeId, msg: ForwardReplyMsg): void {
    this.onOutcomeForOrigin(msg.requestId, msg.outcome);
  }

  // ------------------------------------------------------------------ client writes: coordinator side

  onForward(from: NodeId, msg: ForwardMsg): void {
    if (!this.host.isLeader()) {
      this.host.send(from, {
        type: 'FORWARD_REPLY',
        term: this.host.term(),
        requestId: msg.requestId,
        outcome: fail(ErrorCode.NOT_COORDINATOR, `node ${this.id} is not the coordinator`, this.host.leaderId()),
      });
      return;
    }
    this.acceptAtCoordinator(msg.requestId, from, msg.command, msg.ack);
  }

  private acceptAtCoordinator(requestId: string, origin: NodeId, command: string, ack: AckLevel): void {
    const existing = this.coordinatorRequests.get(requestId);
    if (existing) {
      if (!existing.origins.includes(origin)) existing.origins.push(origin);
      return;
    }
    const done = this.resultCache.get(requestId);
    if (done !== undefined) {
      this.replyTo(origin, requestId, { ok: true, index: done.index, result: done.result, duplicate: true });
      return;
    }
    const logged = this.requestIndex.get(requestId);
    if (logged !== undefined) {
      // Already in the log (an earlier attempt): wait for it instead of appending it twice.
      this.coordinatorRequests.set(requestId, {
        requestId,
        command,
        ack,
        origins: [origin],
        state: 'appended',
        index: logged,
        preparedResult: null,
        duplicate: true,
      });
      this.completeCoordinatorRequests();
      return;
    }
    if (this.host.countRecentlyHeard() < this.host.majority()) {
      this.replyTo(
        origin,
        requestId,
        fail(ErrorCode.NO_QUORUM, `coordinator ${this.id} reaches ${this.host.countRecentlyHeard()} of ${this.cfg.nodeIds.length} nodes; a majority of ${this.host.majority()} is needed`),
      );
      return;
    }
    const handingOverTo = this.host.transferTarget();
    if (handingOverTo !== null) {
      this.replyTo(origin, requestId, fail(ErrorCode.NOT_COORDINATOR, `coordinator ${this.id} is handing over to node ${handingOverTo}`, handingOverTo));
      return;
    }
    if (this.coordinatorRequests.size >= this.cfg.maxPendingWrites) {
      this.replyTo(origin, requestId, fail(ErrorCode.OVERLOADED, `coordinator ${this.id} has ${this.coordinatorRequests.size} writes in flight`));
      return;
    }
    const req: CoordinatorRequest = {
      requestId,
      command,
      ack,
      origins: [origin],
      state: 'queued',
      index: 0,
      preparedResult: null,
      duplicate: false,
    };
    this.coordinatorRequests.set(requestId, req);
    if (this.host.coordinatorReady()) this.dispatch(req);
  }

  private dispatch(req: CoordinatorRequest): void {
    req.state = 'preparing';
    this.host.out().prepare.push({ requestId: req.requestId, origin: req.origins[0] as NodeId, command: req.command });
  }

  dispatchQueued(): void {
    if (!this.host.coordinatorReady() || this.host.transferTarget() !== null) return;
    for (const req of this.coordinatorRequests.values()) if (req.state === 'queued') this.dispatch(req);
  }

  onPropose(requestId: string, origin: NodeId, payload: string, result: unknown): void {
    const req = this.coordinatorRequests.get(requestId);
    if (!this.host.isLeader() || !req || req.state !== 'preparing') {
      // Not appended anywhere: the origin may safely route it again.
      this.replyTo(origin, requestId, fail(ErrorCode.NOT_COORDINATOR, `node ${this.id} is no longer the coordinator`, this.host.leaderId()));
      return;
    }
    const entry = this.host.appendCommand(requestId, payload);
    req.state = 'appended';
    req.index = entry.index;
    req.preparedResult = result;
  }

  onPrepareFailed(requestId: string, error: ErrorInfo): void {
    const req = this.coordinatorRequests.get(requestId);
    if (!req) return;
    this.coordinatorRequests.delete(requestId);
    for (const o of req.origins) this.replyTo(o, requestId, { ok: false, error });
  }

  private replyTo(origin: NodeId, requestId: string, outcome: Outcome): void {
    if (origin === this.id) this.onOutcomeForOrigin(requestId, outcome);
    else this.host.send(origin, { type: 'FORWARD_REPLY', term: this.host.term(), requestId, outcome });
  }

  /** Answers every appended request whose ack level is now satisfied. */
  completeCoordinatorRequests(): void {
    if (!this.host.isLeader()) return;
    for (const req of [...this.coordinatorRequests.values()]) {
      if (req.state !== 'appended') continue;
      const idx = req.index;
      let ready = false;
      let result: unknown = req.preparedResult;
      switch (req.ack) {
        case 'one':
          ready = this.host.persistedIndex() >= idx && this.host.termAt(idx) !== undefined && req.preparedResult !== null;
          if (!ready && this.host.appliedIndex() >= idx) {
            ready = true;
            result = this.appliedResults.get(idx) ?? req.preparedResult;
          }
          break;
        case 'quorum':
          ready = this.host.appliedIndex() >= idx;
          result = this.appliedResults.get(idx) ?? this.resultCache.get(req.requestId)?.result ?? req.preparedResult;
          break;
        case 'all':
          ready = this.host.appliedIndex() >= idx && this.host.allPeersMatch(idx);
          result = this.appliedResults.get(idx) ?? this.resultCache.get(req.requestId)?.result ?? req.preparedResult;
          break;
        case 'all-applied':
          ready = this.host.appliedIndex() >= idx && this.host.allOnlinePeersApplied(idx);
          result = this.appliedResults.get(idx) ?? this.resultCache.get(req.requestId)?.result ?? req.preparedResult;
          break;
        default:
          assertNever(req.ack, 'ack level');
      }
      if (!ready) continue;
      this.coordinatorRequests.delete(req.requestId);
      for (const o of req.origins) this.replyTo(o, req.requestId, { ok: true, index: idx, result: result ?? null, duplicate: req.duplicate });
    }
    if (this.appliedResults.size > 0) {
      let minWaiting = Infinity;
      for (const r of this.coordinatorRequests.values()) if (r.state === 'appended') minWaiting = Math.min(minWaiting, r.index);
      for (const i of [...this.appliedResults.keys()]) if (i < minWaiting) this.appliedResults.delete(i);
    }
  }

  failCoordinatorRequests(): void {
    for (const req of this.coordinatorRequests.values()) {
      const outcome =
        req.state === 'appended'
          ? fail(ErrorCode.UNKNOWN_OUTCOME, `coordinator ${this.id} stepped down after logging the write at index ${req.index}`)
          : fail(ErrorCode.NOT_COORDINATOR, `coordinator ${this.id} stepped down before logging the write`);
      for (const o of req.origins) this.replyTo(o, req.requestId, outcome);
    }
    this.coordinatorRequests.clear();
    this.appliedResults.clear();
  }
}

function mayHaveBeenApplied(req: OriginRequest): boolean {
  return req.possiblyLogged || req.unresolvedAttempts > 0;
}

function fail(code: ClusterErrorCode, message: string, coordinatorHint?: NodeId | null): Outcome {
  return { ok: false, error: errorInfo(code, message, coordinatorHint ?? undefined) };
}
