// Linearizable reads without a log write (Raft's ReadIndex, thesis 6.4; etcd's ReadOnlySafe):
//   - a node asked for a read index forwards the request to the coordinator (READ_INDEX);
//   - the coordinator, once it has committed an entry of its own term, notes its commit index for
//     the request and confirms it still leads: one READ_PROBE round, answered by a majority at its
//     term (reads arriving in the same step share one round);
//   - then it answers the index (READ_INDEX_REPLY), and the asking node serves the read from its
//     own database once it has applied that index.
// A read that starts after a write was acknowledged anywhere thus sees it: the write was committed
// before the read arrived, so it is at or below the index the coordinator noted.
//
// The CoreNode owns one ReadIndexTracker and tells it about requests, probes' acks, role changes and
// ticks; it sees the node only through ReadIndexHost. Pure and deterministic like the rest of src/core.
import { ErrorCode, errorInfo, type ErrorInfo } from '../errors.js';
import type { ReadyBuilder } from './ready-builder.js';
import type { CoreConfig, Message, NodeId, ReadIndexMsg, ReadIndexReplyMsg, ReadProbeAckMsg } from './types.js';

export interface ReadIndexHost {
  now(): number;
  term(): number;
  isLeader(): boolean;
  /** The coordinator committed an entry of its term: its commit index covers everything acknowledged. */
  coordinatorReady(): boolean;
  leaderId(): NodeId | null;
  hasLiveLeader(): boolean;
  commitIndex(): number;
  majority(): number;
  peers(): readonly NodeId[];
  send(to: NodeId, msg: Message): void;
  out(): ReadyBuilder;
}

/** A read index request waiting on this node (the asking side). */
interface LocalRead {
  readonly requestId: string;
  readonly deadlineTick: number;
  sentTo: NodeId | null;
  sentAtTick: number;
}

/** Reads the coordinator confirms with one probe round. */
interface ProbeRound {
  readonly seq: number;
  readonly index: number;
  readonly deadlineTick: number;
  readonly requests: { readonly requestId: string; readonly origin: NodeId }[];
}

export class ReadIndexTracker {
  // asking side (every node)
  private readonly local = new Map<string, LocalRead>();
  // coordinator side
  private seq = 0;
  private sentSeq = 0;
  private probedAtTick = 0;
  private rounds: ProbeRound[] = [];
  /** Requests that arrived before the coordinator committed an entry of its term. */
  private notReady: { requestId: string; origin: NodeId }[] = [];
  private readonly ackedSeq = new Map<NodeId, number>();

  constructor(
    private readonly cfg: CoreConfig,
    private readonly host: ReadIndexHost,
  ) {}

  // ------------------------------------------------------------------ asking side

  /** A client of this node wants to read at `linearizable`. */
  onReadIndex(requestId: string): void {
    if (this.local.has(requestId)) return;
    if (this.local.size >= this.cfg.maxPendingWrites) {
      this.answer(requestId, { ok: false, error: errorInfo(ErrorCode.OVERLOADED, `more than ${this.cfg.maxPendingWrites} linearizable reads are waiting on node ${this.cfg.selfId}`) });
      return;
    }
    const read: LocalRead = { requestId, deadlineTick: this.host.now() + this.cfg.writeTimeoutTicks, sentTo: null, sentAtTick: this.host.now() };
    this.local.set(requestId, read);
    this.route(read);
  }

  private route(read: LocalRead): void {
    read.sentAtTick = this.host.now();
    if (this.host.isLeader()) {
      read.sentTo = this.cfg.selfId;
      this.accept(read.requestId, this.cfg.selfId);
      return;
    }
    const leader = this.host.leaderId();
    if (leader !== null && this.host.hasLiveLeader()) {
      read.sentTo = leader;
      this.host.send(leader, { type: 'READ_INDEX', term: this.host.term(), requestId: read.requestId });
      return;
    }
    read.sentTo = null; // routed again when a coordinator is known, or failed at the deadline
  }

  onReadIndexReply(from: NodeId, msg: ReadIndexReplyMsg): void {
    const read = this.local.get(msg.requestId);
    if (read === undefined || read.sentTo !== from) return;
    this.settle(read, msg.error === null ? { ok: true, index: msg.index } : { ok: false, error: msg.error });
  }

  private settle(read: LocalRead, result: { ok: true; index: number } | { ok: false; error: ErrorInfo }): void {
    if (!result.ok && (result.error.code === ErrorCode.NOT_COORDINATOR || result.error.code === ErrorCode.NO_COORDINATOR) && this.host.now() < read.deadlineTick) {
      read.sentTo = null; // the coordinator changed: ask the next one
      return;
    }
    this.local.delete(read.requestId);
    this.answer(read.requestId, result);
  }

  private answer(requestId: string, result: { ok: true; index: number } | { ok: false; error: ErrorInfo }): void {
    this.host.out().readIndexes.push(result.ok ? { requestId, ok: true, index: result.index } : { requestId, ok: false, error: result.error });
  }

  // ------------------------------------------------------------------ coordinator side

  onReadIndexRequest(from: NodeId, msg: ReadIndexMsg): void {
    if (!this.host.isLeader()) {
      this.reply(from, msg.requestId, 0, errorInfo(ErrorCode.NOT_COORDINATOR, `node ${this.cfg.selfId} is not the coordinator`, this.host.leaderId()));
      return;
    }
    this.accept(msg.requestId, from);
  }

  private accept(requestId: string, origin: NodeId): void {
    if (!this.host.coordinatorReady()) {
      this.notReady.push({ requestId, origin });
      return;
    }
    const open = this.rounds[this.rounds.length - 1];
    if (open !== undefined && open.seq > this.sentSeq) {
      open.requests.push({ requestId, origin });
      return;
    }
    this.rounds.push({ seq: ++this.seq, index: this.host.commitIndex(), deadlineTick: this.host.now() + this.cfg.writeTimeoutTicks, requests: [{ requestId, origin }] });
    if (this.host.majority() <= 1 || this.cfg.unsafe?.readIndexWithoutProbe === true) this.confirm(this.seq);
  }

  onReadProbeAck(from: NodeId, msg: ReadProbeAckMsg): void {
    if (!this.host.isLeader() || msg.term !== this.host.term()) return;
    if (msg.seq > (this.ackedSeq.get(from) ?? 0)) this.ackedSeq.set(from, msg.seq);
    // The highest round a majority (counting ourselves) has acknowledged.
    const acks = [...this.ackedSeq.values()].sort((a, b) => b - a);
    const confirmed = acks[this.host.majority() - 2];
    if (confirmed !== undefined) this.confirm(confirmed);
  }

  private confirm(upToSeq: number): void {
    while (this.rounds.length > 0 && (this.rounds[0] as ProbeRound).seq <= upToSeq) {
      const round = this.rounds.shift() as ProbeRound;
      for (const r of round.requests) this.replyOrAnswer(r.origin, r.requestId, round.index, null);
    }
  }

  private replyOrAnswer(origin: NodeId, requestId: string, index: number, error: ErrorInfo | null): void {
    if (origin !== this.cfg.selfId) {
      this.reply(origin, requestId, index, error);
      return;
    }
    const read = this.local.get(requestId);
    if (read !== undefined) this.settle(read, error === null ? { ok: true, index } : { ok: false, error });
  }

  private reply(to: NodeId, requestId: string, index: number, error: ErrorInfo | null): void {
    this.host.send(to, { type: 'READ_INDEX_REPLY', term: this.host.term(), requestId, index, error });
  }

  /** The coordinator committed its first entry of the term: the reads that waited for it go ahead. */
  onCoordinatorReady(): void {
    const waiting = this.notReady;
    this.notReady = [];
    for (const r of waiting) this.accept(r.requestId, r.origin);
  }

  /** This node stopped coordinating: nothing it had not confirmed may be answered. */
  onSteppedDown(): void {
    const error = errorInfo(ErrorCode.NOT_COORDINATOR, `node ${this.cfg.selfId} stopped coordinating before it could confirm the read`, this.host.leaderId());
    for (const round of this.rounds) for (const r of round.requests) this.replyOrAnswer(r.origin, r.requestId, 0, error);
    for (const r of this.notReady) this.replyOrAnswer(r.origin, r.requestId, 0, error);
    this.rounds = [];
    this.notReady = [];
    this.ackedSeq.clear();
    this.sentSeq = this.seq;
  }

  /** End of a step: probe for the rounds opened in it. */
  flush(): void {
    if (!this.host.isLeader()) return;
    // A new round, or (probes or acks lost) a round still waiting a heartbeat interval after its probe.
    const due = this.sentSeq < this.seq || (this.rounds.length > 0 && this.host.now() - this.probedAtTick >= this.cfg.heartbeatIntervalTicks);
    if (!due) return;
    this.sentSeq = this.seq;
    this.probedAtTick = this.host.now();
    for (const p of this.host.peers()) this.host.send(p, { type: 'READ_PROBE', term: this.host.term(), seq: this.seq });
  }

  /** Every tick: route waiting reads, fail those past their deadline. */
  onTick(): void {
    const now = this.host.now();
    for (const read of [...this.local.values()]) {
      if (now >= read.deadlineTick) {
        this.local.delete(read.requestId);
        this.answer(read.requestId, {
          ok: false,
          error: this.host.leaderId() === null
            ? errorInfo(ErrorCode.NO_COORDINATOR, `no coordinator confirmed the read within ${this.cfg.writeTimeoutTicks} ticks; retry`)
            : errorInfo(ErrorCode.NO_QUORUM, `coordinator ${this.host.leaderId()} could not confirm with a majority that it still leads within ${this.cfg.writeTimeoutTicks} ticks`),
        });
        continue;
      }
      const resend = read.sentTo !== null && read.sentTo !== this.cfg.selfId && now - read.sentAtTick >= this.cfg.heartbeatIntervalTicks * 2;
      if (read.sentTo === null || resend) this.route(read);
    }
    if (!this.host.isLeader()) return;
    while (this.rounds.length > 0 && now >= (this.rounds[0] as ProbeRound).deadlineTick) {
      const round = this.rounds.shift() as ProbeRound;
      const error = errorInfo(ErrorCode.NO_QUORUM, `coordinator ${this.cfg.selfId} could not confirm with a majority that it still leads`);
      for (const r of round.requests) this.replyOrAnswer(r.origin, r.requestId, 0, error);
    }
  }
}
