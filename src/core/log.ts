// The in-memory view of a node's replicated log: a base (snapshot meta) plus contiguous entries.
// The shell keeps the durable copy (LogStore); the core tells it what changed through Ready.
import { chainHashOf, md5Hex } from './hash.js';
import type { Entry, EntryKind, SnapshotMeta } from './types.js';

export class ReplicatedLog {
  private baseMeta: SnapshotMeta;
  private entries: Entry[];

  constructor(base: SnapshotMeta, entries: readonly Entry[]) {
    this.baseMeta = base;
    this.entries = [...entries];
    for (let i = 0; i < this.entries.length; i++) {
      if ((this.entries[i] as Entry).index !== base.index + 1 + i) {
        throw new Error(`log entries are not contiguous from base ${base.index} at position ${i}`);
      }
    }
  }

  base(): SnapshotMeta {
    return this.baseMeta;
  }
  firstIndex(): number {
    return this.baseMeta.index + 1;
  }
  lastIndex(): number {
    return this.baseMeta.index + this.entries.length;
  }
  lastTerm(): number {
    return this.termAt(this.lastIndex()) ?? 0;
  }
  lastChainHash(): string {
    return this.chainHashAt(this.lastIndex()) ?? this.baseMeta.chainHash;
  }

  /** Entry at index, or undefined when compacted away or beyond the end. */
  entry(index: number): Entry | undefined {
    if (index <= this.baseMeta.index || index > this.lastIndex()) return undefined;
    return this.entries[index - this.baseMeta.index - 1];
  }

  /** Term of the entry at index; the base's term at base.index; undefined when unknown. */
  termAt(index: number): number | undefined {
    if (index === this.baseMeta.index) return this.baseMeta.term;
    return this.entry(index)?.term;
  }

  chainHashAt(index: number): string | undefined {
    if (index === this.baseMeta.index) return this.baseMeta.chainHash;
    return this.entry(index)?.chainHash;
  }

  metaAt(index: number): SnapshotMeta | undefined {
    const term = this.termAt(index);
    const chainHash = this.chainHashAt(index);
    return term === undefined || chainHash === undefined ? undefined : { index, term, chainHash };
  }

  /** Entries in [from, to] inclusive, bounded by count and bytes (at least one entry if any). */
  slice(from: number, to: number, maxEntries: number, maxBytes: number): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = Math.max(from, this.firstIndex()); i <= Math.min(to, this.lastIndex()); i++) {
      const e = this.entry(i) as Entry;
      const size = e.payload.length + 160;
      if (out.length > 0 && (out.length >= maxEntries || bytes + size > maxBytes)) break;
      out.push(e);
      bytes += size;
    }
    return out;
  }

  /** Builds the next entry (index, chain hash) without appending it. */
  makeNext(term: number, kind: EntryKind, requestId: string | null, payload: string): Entry {
    const index = this.lastIndex() + 1;
    const md5 = md5Hex(payload);
    return { index, term, kind, requestId, payload, md5, chainHash: chainHashOf(this.lastChainHash(), index, term, md5) };
  }

  append(entry: Entry): void {
    if (entry.index !== this.lastIndex() + 1) {
      throw new Error(`append of index ${entry.index} does not follow last index ${this.lastIndex()}`);
    }
    this.entries.push(entry);
  }

  /** Drops entries with index >= from. */
  truncateFrom(from: number): void {
    if (from <= this.baseMeta.index) throw new Error(`cannot truncate at ${from}: at or below base ${this.baseMeta.index}`);
    if (from > this.lastIndex()) return;
    this.entries.length = from - this.baseMeta.index - 1;
  }

  /** Drops entries up to meta.index (which must be in the log). */
  compactTo(meta: SnapshotMeta): void {
    if (meta.index <= this.baseMeta.index) return;
    const drop = Math.min(meta.index - this.baseMeta.index, this.entries.length);
    this.entries = this.entries.slice(drop);
    this.baseMeta = meta;
  }

  /** Replaces everything by a snapshot base; keeps a suffix that continues it when it matches. */
  resetTo(meta: SnapshotMeta): void {
    const local = this.termAt(meta.index);
    if (local === meta.term && this.chainHashAt(meta.index) === meta.chainHash) {
      this.compactTo(meta);
      return;
    }
    this.entries = [];
    this.baseMeta = meta;
  }

  /** Raft's up-to-date rule: is (lastTerm, lastIndex) at least as recent as this log? */
  isUpToDate(lastTerm: number, lastIndex: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }
}

/** Verifies an entry's MD5 and chain hash against its predecessor's chain hash. Returns a reason or null. */
export function verifyEntry(entry: Entry, prevChainHash: string): string | null {
  const md5 = md5Hex(entry.payload);
  if (md5 !== entry.md5) return `MD5 mismatch at index ${entry.index}: computed ${md5}, entry says ${entry.md5}`;
  const chain = chainHashOf(prevChainHash, entry.index, entry.term, entry.md5);
  if (chain !== entry.chainHash) return `chain hash mismatch at index ${entry.index}`;
  return null;
}
