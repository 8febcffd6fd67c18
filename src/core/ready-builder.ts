// Accumulates one step's output. Keeps the invariant the shell relies on: a truncation removes
// any entry queued for append at or after it, and appends always follow the truncation.
import type { ClientReply, CoreEvent, Entry, HardState, OutboundMessage, PrepareRequest, Ready, SnapshotMeta, NodeId } from './types.js';

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
  snapshotRequests: NodeId[] = [];
  events: CoreEvent[] = [];

  truncate(from: number): void {
    this.truncateFrom = this.truncateFrom === null ? from : Math.min(this.truncateFrom, from);
    this.entriesToAppend = this.entriesToAppend.filter((e) => e.index < from);
  }

  build(): Ready {
    return {
      hardState: this.hardState,
      truncateFrom: this.truncateFrom,
      entriesToAppend: this.entriesToAppend,
      snapshotToInstall: this.snapshotToInstall,
      messages: this.messages,
      committed: this.committed,
      compactUpTo: this.compactUpTo,
      prepare: this.prepare,
      replies: this.replies,
      snapshotRequests: this.snapshotRequests,
      events: this.events,
    };
  }
}
