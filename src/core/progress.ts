// What a coordinator knows about each follower's log (etcd's tracker/): how far it matches, what
// to send next, how many REPLICATEs are in flight, whether it is being probed or waits for a
// snapshot. The coordinator's replication code (node.ts) decides what to send; this file keeps
// the per-peer bookkeeping and its rules.
import type { NodeId } from './types.js';

export class PeerProgress {
  /** Index of the next entry to send. */
  next: number;
  /** Highest index known to match the coordinator's log. */
  match = 0;
  inflight = 0;
  /** Probing: one message at a time until the follower's log matches; then pipelining. */
  probing = true;
  lastAckTick: number;
  snapshotRequestedAt: number | null = null;
  lastCatchUpEventTick = -Infinity;
  /** The commit index carried by the last REPLICATE sent to this peer. */
  sentCommit = 0;
  /** How far the peer's database has applied, as it last reported (APPLIED). */
  applied = 0;

  constructor(next: number, now: number) {
    this.next = next;
    this.lastAckTick = now;
  }

  /** How many REPLICATEs may be in flight: one while probing, else the pipeline window. */
  inflightLimit(maxInflightMessages: number): number {
    return this.probing ? 1 : maxInflightMessages;
  }

  /**
   * At a heartbeat: an ack lost in the network must not stall a follower, so a window with no ack
   * for a heartbeat interval falls back to probing from match; a snapshot request the driver
   * never answered is forgotten after the failure timeout.
   */
  onHeartbeat(now: number, heartbeatIntervalTicks: number, failureTimeoutTicks: number): void {
    if (this.inflight > 0 && now - this.lastAckTick >= heartbeatIntervalTicks) {
      this.inflight = 0;
      this.next = this.match + 1;
      this.probing = true;
    }
    if (this.snapshotRequestedAt !== null && now - this.snapshotRequestedAt >= failureTimeoutTicks) {
      this.snapshotRequestedAt = null;
    }
  }

  /** True when a snapshot should be requested now (none is pending); marks it requested. */
  requestSnapshot(now: number): boolean {
    if (this.snapshotRequestedAt !== null) return false;
    this.snapshotRequestedAt = now;
    return true;
  }

  /** The prevIndex of the last REPLICATE sent while probing: its rejection is the one that counts. */
  probeIndex: number | null = null;

  /**
   * A REPLICATE at `prevIndex` went out carrying `commitIndex`; `lastSent` is the index of its last
   * entry, null for an empty one.
   */
  sentReplicate(prevIndex: number, lastSent: number | null, commitIndex: number): void {
    if (this.probing) this.probeIndex = prevIndex;
    this.inflight++;
    if (lastSent !== null) this.next = lastSent + 1;
    this.sentCommit = Math.max(this.sentCommit, commitIndex);
  }

  /**
   * The peer should be told of a commit index it has not been sent, and nothing in flight to it will
   * carry it (every REPLICATE sent so far was acknowledged, so its ack would not trigger another).
   */
  needsCommitNotice(commitIndex: number): boolean {
    return !this.probing && this.inflight === 0 && this.sentCommit < commitIndex && this.snapshotRequestedAt === null;
  }

  snapshotSent(index: number): void {
    this.next = index + 1;
    this.inflight = 1;
  }

  acked(now: number): void {
    this.lastAckTick = now;
  }

  onSuccess(matchIndex: number, lastIndex: number): void {
    this.inflight = Math.max(0, this.inflight - 1);
    this.probing = false;
    if (matchIndex > this.match) {
      this.match = Math.min(matchIndex, lastIndex);
      this.snapshotRequestedAt = null;
    }
    this.next = Math.max(this.next, this.match + 1);
  }

  /** At most one catch-up report per heartbeat interval while the peer lags; marks it reported. */
  catchUpReportDue(now: number, heartbeatIntervalTicks: number, lastIndex: number): boolean {
    if (this.match >= lastIndex || now - this.lastCatchUpEventTick < heartbeatIntervalTicks) return false;
    this.lastCatchUpEventTick = now;
    return true;
  }

  /**
   * A rejection of a message older than the current probe is stale: acting on every one of them
   * would multiply probes (each rejected pipelined message would trigger new sends).
   */
  isStaleRejection(probeIndex: number): boolean {
    // While probing, only the rejection of the probe in flight counts (a probe with entries has
    // already moved `next` past its prevIndex, so `next - 1` is not the probe's index).
    return probeIndex < this.match || (this.probing && probeIndex !== (this.probeIndex ?? this.next - 1));
  }

  /** Back to probing, from the follower's hint (after a checksum mismatch: right after what it matched). */
  onRejection(checksumMismatch: boolean, hint: number, probeIndex: number): void {
    this.inflight = 0;
    this.probing = true;
    this.next = checksumMismatch ? Math.max(this.match + 1, hint + 1) : Math.max(this.match + 1, Math.min(probeIndex, hint + 1));
  }
}

/** The coordinator's progress of every peer; empty while not coordinating. */
export class ProgressTracker {
  private readonly peers = new Map<NodeId, PeerProgress>();

  /** A new term as coordinator: every peer is probed from just after our last entry. */
  reset(peers: readonly NodeId[], next: number, now: number): void {
    this.peers.clear();
    for (const p of peers) this.peers.set(p, new PeerProgress(next, now));
  }

  clear(): void {
    this.peers.clear();
  }

  get(peer: NodeId): PeerProgress | undefined {
    return this.peers.get(peer);
  }

  /** The peer's match index; 0 when unknown (not coordinating). */
  match(peer: NodeId): number {
    return this.peers.get(peer)?.match ?? 0;
  }
}
