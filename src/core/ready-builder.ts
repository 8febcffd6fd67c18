// Accumulates one step's output. Keeps the invariant the driver relies on: a truncation removes
// any entry queued for append at or after it, and appends always follow the truncation. It also
// decides which messages may leave before the fsync (see Ready in types.ts).
import type { ClientReply, CoreEvent, Entry, HardState, OutboundMessage, PrepareRequest, ReadIndexAnswer, Ready, SnapshotMeta, NodeId } from './types.js';

export class ReadyBuilder {
  hardState: HardState | null = null;
  truncateFrom: number | null = null;
  entriesToAppend: Entry[] = [];
  snapshotToInstall: { meta: SnapshotMeta; data: string } | null = null;
  messages: OutboundMessage[] = [];
  committed: Entry[] = [];
  compactUpTo: SnapshotMeta | null = null;
  prepare: PrepareRequest[] = [];
  replies: ClientReply[] = [];
  readIndexes: ReadIndexAnswer[] = [];
  snapshotRequests: NodeId[] = [];
  events: CoreEvent[] = [];

  truncate(from: number): void {
    this.truncateFrom = this.truncateFrom === null ? from : Math.min(this.truncateFrom, from);
    this.entriesToAppend = this.entriesToAppend.filter((e) => e.index < from);
  }

  build(): Ready {
    // Only a coordinator's REPLICATE may overtake the fsync, and only when this step changes neither
    // the term, the vote nor the log's past: then it carries nothing but entries the coordinator
    // does not yet count as its own. Everything else (acks, votes, heartbeats) waits.
    const early: OutboundMessage[] = [];
    const late: OutboundMessage[] = [];
    const mayOvertake = this.hardState === null && this.truncateFrom === null;
    for (const m of this.messages) (mayOvertake && m.msg.type === 'REPLICATE' ? early : late).push(m);
    return {
      hardState: this.hardState,
      truncateFrom: this.truncateFrom,
      entriesToAppend: this.entriesToAppend,
      snapshotToInstall: this.snapshotToInstall,
      messages: early,
      messagesAfterPersist: late,
      committed: this.committed,
      compactUpTo: this.compactUpTo,
      prepare: this.prepare,
      replies: this.replies,
      readIndexes: this.readIndexes,
      snapshotRequests: this.snapshotRequests,
      events: this.events,
    };
  }
}
