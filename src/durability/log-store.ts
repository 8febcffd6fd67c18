// The durable log of one node: append-only segment files plus two small atomic state files.
// Why this format, the fsync discipline and what recovery does: docs/design-log-store.md.
//
//   <dir>/LOCK                       pid (and start time) of the process that has the store open
//   <dir>/hardstate.json             {term, votedFor}, atomic replace, own CRC
//   <dir>/base.json                  {index, term, chainHash, resetPending}, atomic replace, own CRC
//   <dir>/log-<firstIndex:20>.seg    records: magic u32 | body length u32 | crc32(body) u32 | JSON body
//
// All calls are synchronous (node:fs *Sync): the shell calls them between two steps of the core,
// and the durability they give (after sync()) is what makes it safe to send the step's messages.
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  ftruncateSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Entry, HardState, Ready, SnapshotMeta } from '../core/types.js';
import { EMPTY_SNAPSHOT, EntryKind } from '../core/types.js';
import { crc32 } from './crc32.js';
import { StateFileError, TMP_SUFFIX, readStateFile, writeStateFileAtomic } from './hard-state-file.js';

export const DEFAULT_SEGMENT_MAX_BYTES = 64 * 1024 * 1024;
/** Largest record body accepted on append and believed on recovery. */
export const MAX_RECORD_BODY_BYTES = 128 * 1024 * 1024;
export const RECORD_HEADER_BYTES = 12;
/** "RQL1" read as a little-endian u32. */
const RECORD_MAGIC = 0x314c5152;
const MAGIC_BYTES = Buffer.from([0x52, 0x51, 0x4c, 0x31]);

const LOCK_FILE = 'LOCK';
const HARD_STATE_FILE = 'hardstate.json';
const BASE_FILE = 'base.json';
const SEGMENT_RE = /^log-(\d{20})\.seg$/;
const INITIAL_HARD_STATE: HardState = { term: 0, votedFor: null };

export const LogStoreErrorCode = {
  /** On-disk data is damaged or inconsistent in a way recovery must not paper over. */
  CORRUPT: 'LOG_CORRUPT',
  /** Another live process (or another FileLogStore in this process) has the directory open. */
  LOCKED: 'LOG_LOCKED',
  /** The caller broke the API contract (non-contiguous append, truncating compacted entries, use after close). */
  MISUSE: 'LOG_MISUSE',
  /** A write or fsync failed; the store refuses further use until it is reopened (and recovered). */
  IO: 'LOG_IO',
} as const;
export type LogStoreErrorCode = (typeof LogStoreErrorCode)[keyof typeof LogStoreErrorCode];

export class LogStoreError extends Error {
  constructor(
    readonly code: LogStoreErrorCode,
    message: string,
    readonly file: string | null = null,
    readonly offset: number | null = null,
    readonly index: number | null = null,
  ) {
    super(message);
    this.name = 'LogStoreError';
  }
}

export interface FileLogStoreOptions {
  /** A segment is closed once adding the next record would make it larger than this (default 64 MiB). */
  readonly segmentMaxBytes?: number;
  /** Called for things recovery repaired (torn tail, stale lock, interrupted snapshot reset). */
  readonly onWarning?: (msg: string) => void;
}

export interface LoadedLog {
  readonly hardState: HardState;
  readonly base: SnapshotMeta;
  /** Contiguous from base.index + 1. */
  readonly entries: Entry[];
}

interface Segment {
  readonly firstIndex: number;
  readonly name: string;
  /** Bytes of valid records. */
  size: number;
  /** offsets[i] is the byte offset of the record of entry firstIndex + i. */
  offsets: number[];
  /** Open only while this is the active (last) segment. */
  fd: number | null;
}

interface BaseFile extends SnapshotMeta {
  /** Set while resetTo() is dropping the old segments; see recovery. */
  readonly resetPending: boolean;
}

// ---------------------------------------------------------------- records

function segmentName(firstIndex: number): string {
  return `log-${String(firstIndex).padStart(20, '0')}.seg`;
}

function encodeRecord(e: Entry): Buffer {
  const json = JSON.stringify({
    index: e.index,
    term: e.term,
    kind: e.kind,
    requestId: e.requestId,
    payload: e.payload,
    md5: e.md5,
    chainHash: e.chainHash,
  });
  const bodyLen = Buffer.byteLength(json, 'utf8');
  if (bodyLen > MAX_RECORD_BODY_BYTES) {
    throw new LogStoreError(
      LogStoreErrorCode.MISUSE,
      `entry ${e.index} encodes to ${bodyLen} bytes, more than MAX_RECORD_BODY_BYTES=${MAX_RECORD_BODY_BYTES}`,
    );
  }
  const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES + bodyLen);
  buf.write(json, RECORD_HEADER_BYTES, 'utf8');
  buf.writeUInt32LE(RECORD_MAGIC, 0);
  buf.writeUInt32LE(bodyLen, 4);
  buf.writeUInt32LE(crc32(buf, RECORD_HEADER_BYTES, buf.length), 8);
  return buf;
}

const ENTRY_KINDS: ReadonlySet<string> = new Set(Object.values(EntryKind));

function isNonNegInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** Returns the entry, or a string saying what is wrong with the decoded body. */
function toEntry(v: unknown): Entry | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'body is not a JSON object';
  const o = v as Record<string, unknown>;
  if (!isNonNegInt(o.index) || o.index < 1) return 'index is not a positive integer';
  if (!isNonNegInt(o.term)) return 'term is not a non-negative integer';
  if (typeof o.kind !== 'string' || !ENTRY_KINDS.has(o.kind)) return `unknown kind ${JSON.stringify(o.kind)}`;
  if (o.requestId !== null && typeof o.requestId !== 'string') return 'requestId is neither a string nor null';
  if (typeof o.payload !== 'string') return 'payload is not a string';
  if (typeof o.md5 !== 'string') return 'md5 is not a string';
  if (typeof o.chainHash !== 'string') return 'chainHash is not a string';
  return {
    index: o.index,
    term: o.term,
    kind: o.kind as EntryKind,
    requestId: o.requestId,
    payload: o.payload,
    md5: o.md5,
    chainHash: o.chainHash,
  };
}

type ParsedRecord =
  | { readonly type: 'ok'; readonly entry: Entry; readonly next: number }
  /** Header and checksum fine, content not an entry: written by us, so a bug or a format mismatch. */
  | { readonly type: 'invalid'; readonly reason: string }
  /** Incomplete or checksum failure: a torn write or damage. */
  | { readonly type: 'bad'; readonly reason: string };

function parseRecordAt(buf: Buffer, off: number): ParsedRecord {
  const avail = buf.length - off;
  if (avail < RECORD_HEADER_BYTES) return { type: 'bad', reason: `partial header (${avail} of ${RECORD_HEADER_BYTES} bytes)` };
  const magic = buf.readUInt32LE(off);
  if (magic !== RECORD_MAGIC) return { type: 'bad', reason: `bad record magic 0x${magic.toString(16).padStart(8, '0')}` };
  const len = buf.readUInt32LE(off + 4);
  if (len === 0 || len > MAX_RECORD_BODY_BYTES) return { type: 'bad', reason: `implausible record length ${len}` };
  const end = off + RECORD_HEADER_BYTES + len;
  if (end > buf.length) return { type: 'bad', reason: `partial body (${avail - RECORD_HEADER_BYTES} of ${len} bytes)` };
  const want = buf.readUInt32LE(off + 8);
  const got = crc32(buf, off + RECORD_HEADER_BYTES, end);
  if (want !== got) return { type: 'bad', reason: `checksum mismatch (header ${want.toString(16)}, body ${got.toString(16)})` };
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8', off + RECORD_HEADER_BYTES, end));
  } catch (e) {
    return { type: 'invalid', reason: `checksum valid but body is not JSON (${(e as Error).message})` };
  }
  const entry = toEntry(value);
  if (typeof entry === 'string') return { type: 'invalid', reason: `checksum valid but ${entry}` };
  return { type: 'ok', entry, next: end };
}

/** Offset of the first complete record with a valid checksum at or after `from`, or null. */
function findValidRecordFrom(buf: Buffer, from: number): number | null {
  let pos = from;
  for (;;) {
    const at = buf.indexOf(MAGIC_BYTES, pos);
    if (at === -1) return null;
    if (parseRecordAt(buf, at).type !== 'bad') return at;
    pos = at + 1;
  }
}

// ---------------------------------------------------------------- lock file

/** Directories (real paths) this process has open, to tell a double open from a stale lock with our own pid. */
const openedHere = new Set<string>();

/** Start time of a process in clock ticks since boot (Linux /proc), or null if unknown. */
function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null; // field 22 overall; fields[0] here is field 3 (state)
  } catch {
    return null;
  }
}

function lockHolderAlive(pid: number, startTime: string | null): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // The pid exists; if we recorded a start time and it differs, the pid was reused.
  if (startTime !== null) {
    const now = processStartTime(pid);
    if (now !== null && now !== startTime) return false;
  }
  return true;
}

function parseLock(text: string): { pid: number; startTime: string | null } | null {
  const m = /^(\d+)\n(\d*)\n$/.exec(text);
  if (m === null) return null;
  const pid = Number(m[1]);
  return Number.isSafeInteger(pid) && pid > 0 ? { pid, startTime: m[2] === '' ? null : m[2]! } : null;
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function acquireLock(realDir: string, warn: (msg: string) => void): void {
  const lockPath = join(realDir, LOCK_FILE);
  if (openedHere.has(realDir)) {
    throw new LogStoreError(LogStoreErrorCode.LOCKED, `log store ${realDir} is already open in this process (pid ${process.pid})`, lockPath);
  }
  const mine = `${process.pid}\n${processStartTime(process.pid) ?? ''}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx', 0o644);
      try {
        writeSync(fd, mine);
      } finally {
        closeSync(fd);
      }
      openedHere.add(realDir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const text = readOrNull(lockPath);
    if (text === null) continue; // released meanwhile
    const holder = parseLock(text);
    if (holder === null) {
      // Being written by another process right now, or garbage left by a crash during that write.
      let ageMs = 0;
      try {
        ageMs = Date.now() - statSync(lockPath).mtimeMs;
      } catch {
        continue;
      }
      if (ageMs < 10_000) {
        throw new LogStoreError(LogStoreErrorCode.LOCKED, `log store ${realDir} is being locked by another process (${lockPath} is incomplete)`, lockPath);
      }
    } else if (holder.pid !== process.pid && lockHolderAlive(holder.pid, holder.startTime)) {
      throw new LogStoreError(
        LogStoreErrorCode.LOCKED,
        `log store ${realDir} is locked by live process pid ${holder.pid} (${lockPath}); is another replisql node using this data directory?`,
        lockPath,
      );
    }
    // Stale. Move it aside atomically, and make sure what we moved is what we judged stale.
    const aside = `${lockPath}.stale.${process.pid}`;
    try {
      renameSync(lockPath, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    const moved = readOrNull(aside);
    if (moved !== text) {
      // Someone else replaced the stale lock with a live one between our read and our rename: put it back.
      try {
        linkSync(aside, lockPath);
      } catch {
        /* a third process created a lock meanwhile; it wins */
      }
      unlinkSync(aside);
      continue;
    }
    unlinkSync(aside);
    warn(`${lockPath}: took over a stale lock left by pid ${holder?.pid ?? '?'} (no longer running)`);
  }
  throw new LogStoreError(LogStoreErrorCode.LOCKED, `log store ${realDir}: could not take ${lockPath} (contended)`, lockPath);
}

function releaseLock(realDir: string): void {
  openedHere.delete(realDir);
  const lockPath = join(realDir, LOCK_FILE);
  const text = readOrNull(lockPath);
  if (text !== null && parseLock(text)?.pid === process.pid) unlinkSync(lockPath);
}

// ---------------------------------------------------------------- state files

function isHardState(v: unknown): v is HardState {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return isNonNegInt(o.term) && (o.votedFor === null || (typeof o.votedFor === 'number' && Number.isSafeInteger(o.votedFor)));
}

function isSnapshotMeta(v: unknown): v is SnapshotMeta {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return isNonNegInt(o.index) && isNonNegInt(o.term) && typeof o.chainHash === 'string';
}

function readHardState(dir: string): HardState {
  const path = join(dir, HARD_STATE_FILE);
  const v = readChecked(path);
  if (v === null) return INITIAL_HARD_STATE;
  if (!isHardState(v)) throw new LogStoreError(LogStoreErrorCode.CORRUPT, `${path}: not a hard state: ${JSON.stringify(v)}`, path);
  return { term: v.term, votedFor: v.votedFor };
}

function readBase(dir: string): BaseFile {
  const path = join(dir, BASE_FILE);
  const v = readChecked(path);
  if (v === null) return { ...EMPTY_SNAPSHOT, resetPending: false };
  if (!isSnapshotMeta(v) || typeof (v as { resetPending?: unknown }).resetPending !== 'boolean') {
    throw new LogStoreError(LogStoreErrorCode.CORRUPT, `${path}: not a base snapshot meta: ${JSON.stringify(v)}`, path);
  }
  return { index: v.index, term: v.term, chainHash: v.chainHash, resetPending: (v as BaseFile).resetPending };
}

function readChecked(path: string): unknown {
  try {
    return readStateFile(path);
  } catch (e) {
    if (e instanceof StateFileError) throw new LogStoreError(LogStoreErrorCode.CORRUPT, e.message, path);
    throw e;
  }
}

function assertMeta(meta: SnapshotMeta, what: string): void {
  if (!isSnapshotMeta(meta)) throw new LogStoreError(LogStoreErrorCode.MISUSE, `${what}: invalid snapshot meta ${JSON.stringify(meta)}`);
}

// ---------------------------------------------------------------- the store

export class FileLogStore {
  private segments: Segment[] = [];
  private base: SnapshotMeta = EMPTY_SNAPSHOT;
  private hardState: HardState = INITIAL_HARD_STATE;
  private last = 0;
  /** The last segment has bytes written since its last fdatasync. */
  private activeDirty = false;
  /** Files were created, renamed or removed since the directory's last fsync. */
  private dirDirty = false;
  private status: 'open' | 'failed' | 'closed' = 'open';
  private failure: string | null = null;
  private recovered: LoadedLog | null = null;

  private constructor(
    private readonly dir: string,
    private readonly dirFd: number,
    private readonly segmentMaxBytes: number,
    private readonly warn: (msg: string) => void,
  ) {}

  static open(dir: string, opts: FileLogStoreOptions = {}): FileLogStore {
    const segmentMaxBytes = opts.segmentMaxBytes ?? DEFAULT_SEGMENT_MAX_BYTES;
    if (!Number.isSafeInteger(segmentMaxBytes) || segmentMaxBytes < 1) {
      throw new LogStoreError(LogStoreErrorCode.MISUSE, `segmentMaxBytes must be a positive integer, got ${segmentMaxBytes}`);
    }
    const warn = opts.onWarning ?? ((msg: string) => process.emitWarning(msg, 'ReplisqlLogStore'));
    mkdirSync(dir, { recursive: true });
    const realDir = realpathSync(dir);
    acquireLock(realDir, warn);
    let dirFd: number | null = null;
    try {
      dirFd = openSync(realDir, 'r');
      const store = new FileLogStore(realDir, dirFd, segmentMaxBytes, warn);
      store.recover();
      return store;
    } catch (e) {
      if (dirFd !== null) closeSync(dirFd);
      releaseLock(realDir);
      throw e;
    }
  }

  /**
   * The state recovered by open(). The first call hands over what recovery already read; later calls
   * read the segments again (and so also show entries appended since).
   */
  load(): LoadedLog {
    this.checkUsable();
    const r = this.recovered;
    if (r !== null) {
      this.recovered = null;
      return r;
    }
    return { hardState: this.hardState, base: this.base, entries: this.readAll() };
  }

  lastIndex(): number {
    return this.last;
  }

  append(entries: readonly Entry[]): void {
    this.checkUsable();
    if (entries.length === 0) return;
    let expect = this.last + 1;
    for (const e of entries) {
      if (e.index !== expect) {
        throw new LogStoreError(
          LogStoreErrorCode.MISUSE,
          `append: entry index ${e.index} where ${expect} was expected (log ends at ${this.last}; entries must be contiguous)`,
          null,
          null,
          e.index,
        );
      }
      expect++;
    }
    const records = entries.map(encodeRecord); // may throw MISUSE before anything is written
    this.guard('append', () => {
      let seg = this.segments.at(-1) ?? null;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      for (let i = 0; i < records.length; i++) {
        const rec = records[i]!;
        if (seg === null || (seg.size + pendingBytes > 0 && seg.size + pendingBytes + rec.length > this.segmentMaxBytes)) {
          if (seg !== null) {
            this.writeOut(seg, pending, pendingBytes);
            pending = [];
            pendingBytes = 0;
            this.retire(seg);
          }
          seg = this.createSegment(entries[i]!.index);
        }
        seg.offsets.push(seg.size + pendingBytes);
        pending.push(rec);
        pendingBytes += rec.length;
      }
      this.writeOut(seg!, pending, pendingBytes);
    });
    this.last = expect - 1;
  }

  /** Deletes every entry with index >= `index`, durably (the truncation is fsynced before returning). */
  truncateFrom(index: number): void {
    this.checkUsable();
    if (!Number.isSafeInteger(index) || index < 1) {
      throw new LogStoreError(LogStoreErrorCode.MISUSE, `truncateFrom: invalid index ${index}`);
    }
    if (index > this.last) return;
    if (index <= this.base.index) {
      throw new LogStoreError(
        LogStoreErrorCode.MISUSE,
        `truncateFrom(${index}): entries up to ${this.base.index} are compacted into the snapshot base and cannot be truncated`,
        null,
        null,
        index,
      );
    }
    this.guard('truncate', () => {
      let removed = false;
      // Later segments go first, last one first, so that a crash in between leaves a prefix of the log.
      while (this.segments.length > 0 && this.segments.at(-1)!.firstIndex >= index) {
        const seg = this.segments.pop()!;
        if (seg.fd !== null) closeSync(seg.fd);
        seg.fd = null;
        unlinkSync(join(this.dir, seg.name));
        removed = true;
      }
      const seg = this.segments.at(-1);
      if (seg !== undefined) {
        if (seg.fd === null) seg.fd = openSync(join(this.dir, seg.name), 'r+');
        const k = index - seg.firstIndex;
        if (k < seg.offsets.length) {
          const size = seg.offsets[k]!;
          ftruncateSync(seg.fd, size);
          seg.offsets.length = k;
          seg.size = size;
          // Durable now: otherwise old records past the cut could reappear after a crash behind the
          // new ones and be read back as if they continued the log.
          fdatasyncSync(seg.fd);
        }
      }
      // Every segment but the last is fully synced when it is retired, so nothing is dirty now
      // (the truncated segment was just fdatasynced; a removed active segment no longer matters).
      this.activeDirty = false;
      if (removed) {
        fsyncSync(this.dirFd);
        this.dirDirty = false;
      }
    });
    this.last = index - 1;
  }

  /** Replaces the hard state (atomic file replace). Durable after the next sync(). */
  saveHardState(hs: HardState): void {
    this.checkUsable();
    if (!isHardState(hs)) throw new LogStoreError(LogStoreErrorCode.MISUSE, `saveHardState: invalid hard state ${JSON.stringify(hs)}`);
    if (hs.term === this.hardState.term && hs.votedFor === this.hardState.votedFor) return;
    const value: HardState = { term: hs.term, votedFor: hs.votedFor };
    this.guard('save hard state', () => {
      writeStateFileAtomic(this.dir, HARD_STATE_FILE, value, this.dirFd, false);
      this.dirDirty = true;
    });
    this.hardState = value;
  }

  /**
   * Makes `upTo` the log's base (durably, before anything is removed) and deletes the segments whose
   * entries are all < upTo.index (the one holding upTo.index stays, so recovery can check the base
   * against it). The active segment is never deleted. `upTo` must describe an entry
   * of this log (same index, term and chainHash).
   */
  compact(upTo: SnapshotMeta): void {
    this.checkUsable();
    assertMeta(upTo, 'compact');
    if (upTo.index <= this.base.index) return;
    if (upTo.index > this.last) {
      throw new LogStoreError(LogStoreErrorCode.MISUSE, `compact: index ${upTo.index} is beyond the last entry ${this.last}`, null, null, upTo.index);
    }
    const e = this.readEntry(upTo.index);
    if (e.term !== upTo.term || e.chainHash !== upTo.chainHash) {
      throw new LogStoreError(
        LogStoreErrorCode.MISUSE,
        `compact: meta (index ${upTo.index}, term ${upTo.term}, chainHash ${upTo.chainHash}) does not match the logged entry (term ${e.term}, chainHash ${e.chainHash})`,
        null,
        null,
        upTo.index,
      );
    }
    const meta: SnapshotMeta = { index: upTo.index, term: upTo.term, chainHash: upTo.chainHash };
    this.guard('compact', () => {
      writeStateFileAtomic(this.dir, BASE_FILE, { ...meta, resetPending: false }, this.dirFd, true);
      this.dirDirty = false;
      this.base = meta;
      while (this.segments.length >= 2 && this.segments[1]!.firstIndex <= meta.index) {
        const seg = this.segments.shift()!;
        unlinkSync(join(this.dir, seg.name));
        this.dirDirty = true;
      }
    });
  }

  /**
   * After a snapshot was installed in the database: makes `base` the log's base. Like the core's
   * Log.resetTo, entries that continue the snapshot (the log holds base.index with the same term
   * and chainHash) are kept, which is a compaction; otherwise every entry is dropped.
   * Durable when it returns, except the final clearing of the reset marker (next sync()).
   */
  resetTo(base: SnapshotMeta): void {
    this.checkUsable();
    assertMeta(base, 'resetTo');
    const meta: SnapshotMeta = { index: base.index, term: base.term, chainHash: base.chainHash };
    if (this.holds(meta)) {
      this.compact(meta);
      return;
    }
    this.guard('reset', () => {
      // 1. The new base, marked pending, is durable before any segment goes: from here on a crash
      //    can only leave stale segments behind, which recovery recognises and drops.
      writeStateFileAtomic(this.dir, BASE_FILE, { ...meta, resetPending: true }, this.dirFd, true);
      for (let i = this.segments.length - 1; i >= 0; i--) {
        const seg = this.segments[i]!;
        if (seg.fd !== null) closeSync(seg.fd);
        seg.fd = null;
        unlinkSync(join(this.dir, seg.name));
      }
      this.segments = [];
      this.activeDirty = false;
      fsyncSync(this.dirFd);
      // 2. Clear the marker; its rename is made durable by the next sync().
      writeStateFileAtomic(this.dir, BASE_FILE, { ...meta, resetPending: false }, this.dirFd, false);
      this.dirDirty = true;
    });
    this.base = meta;
    this.last = meta.index;
  }

  /** fsyncs everything written since the last sync: the active segment, and the directory if files changed. */
  sync(): void {
    this.checkUsable();
    this.guard('sync', () => {
      const seg = this.segments.at(-1);
      if (this.activeDirty && seg !== undefined && seg.fd !== null) fdatasyncSync(seg.fd);
      this.activeDirty = false;
      if (this.dirDirty) fsyncSync(this.dirFd);
      this.dirDirty = false;
    });
  }

  /** Syncs (unless a previous I/O error made the store unusable), closes files, releases the lock. Idempotent. */
  close(): void {
    if (this.status === 'closed') return;
    let err: unknown = null;
    if (this.status === 'open') {
      try {
        this.sync();
      } catch (e) {
        err = e;
      }
    }
    for (const seg of this.segments) {
      if (seg.fd !== null) closeSync(seg.fd);
      seg.fd = null;
    }
    closeSync(this.dirFd);
    releaseLock(this.dir);
    this.status = 'closed';
    this.recovered = null;
    if (err !== null) throw err;
  }

  // -------------------------------------------------------------- internals

  private checkUsable(): void {
    if (this.status === 'closed') throw new LogStoreError(LogStoreErrorCode.MISUSE, `log store ${this.dir} is closed`);
    if (this.status === 'failed') {
      throw new LogStoreError(LogStoreErrorCode.IO, `log store ${this.dir} failed earlier (${this.failure}); close and reopen it to recover`);
    }
  }

  /**
   * Runs an I/O action. If it throws, what reached the disk is unknown (a failed fsync may even have
   * dropped the dirty pages), so the store refuses further use; reopening recovers from the files.
   */
  private guard(what: string, action: () => void): void {
    try {
      action();
    } catch (e) {
      if (e instanceof LogStoreError) throw e;
      const msg = `${what} failed: ${(e as Error).message}`;
      this.status = 'failed';
      this.failure = msg;
      throw new LogStoreError(LogStoreErrorCode.IO, `log store ${this.dir}: ${msg}; the store is unusable until reopened`);
    }
  }

  private createSegment(firstIndex: number): Segment {
    const name = segmentName(firstIndex);
    const fd = openSync(join(this.dir, name), 'wx+', 0o644);
    const seg: Segment = { firstIndex, name, size: 0, offsets: [], fd };
    this.segments.push(seg);
    this.dirDirty = true;
    return seg;
  }

  /** A full segment is synced before the next one is created: only the last segment can have a torn tail. */
  private retire(seg: Segment): void {
    if (seg.fd === null) return;
    if (this.activeDirty) fdatasyncSync(seg.fd);
    this.activeDirty = false;
    closeSync(seg.fd);
    seg.fd = null;
  }

  private writeOut(seg: Segment, parts: Buffer[], bytes: number): void {
    if (bytes === 0) return;
    if (seg.fd === null) seg.fd = openSync(join(this.dir, seg.name), 'r+');
    const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, bytes);
    let off = 0;
    while (off < bytes) off += writeSync(seg.fd, buf, off, bytes - off, seg.size + off);
    seg.size += bytes;
    this.activeDirty = true;
  }

  /** Whether the log's base or one of its entries is exactly `meta`. */
  private holds(meta: SnapshotMeta): boolean {
    if (meta.index === this.base.index) return meta.term === this.base.term && meta.chainHash === this.base.chainHash;
    if (meta.index < this.base.index || meta.index > this.last) return false;
    const e = this.readEntry(meta.index);
    return e.term === meta.term && e.chainHash === meta.chainHash;
  }

  private segmentOf(index: number): Segment | undefined {
    let lo = 0;
    let hi = this.segments.length - 1;
    let found: Segment | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.segments[mid]!;
      if (s.firstIndex <= index) {
        found = s;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found !== undefined && index - found.firstIndex < found.offsets.length ? found : undefined;
  }

  private readEntry(index: number): Entry {
    const seg = this.segmentOf(index);
    if (seg === undefined) throw new LogStoreError(LogStoreErrorCode.MISUSE, `entry ${index} is not in the log`, null, null, index);
    const k = index - seg.firstIndex;
    const start = seg.offsets[k]!;
    const end = k + 1 < seg.offsets.length ? seg.offsets[k + 1]! : seg.size;
    const buf = Buffer.allocUnsafe(end - start);
    const path = join(this.dir, seg.name);
    const fd = seg.fd ?? openSync(path, 'r');
    try {
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, start + got);
        if (n === 0) break;
        got += n;
      }
    } finally {
      if (fd !== seg.fd) closeSync(fd);
    }
    const r = parseRecordAt(buf, 0);
    if (r.type !== 'ok' || r.entry.index !== index) {
      throw new LogStoreError(LogStoreErrorCode.CORRUPT, `${path} offset ${start}: cannot read back entry ${index}`, path, start, index);
    }
    return r.entry;
  }

  /** Entries after the base, read from the (already recovered) segments. */
  private readAll(): Entry[] {
    const out: Entry[] = [];
    for (const seg of this.segments) {
      const path = join(this.dir, seg.name);
      const buf = readFileSync(path).subarray(0, seg.size);
      for (let k = 0; k < seg.offsets.length; k++) {
        if (seg.firstIndex + k <= this.base.index) continue;
        const r = parseRecordAt(buf, seg.offsets[k]!);
        if (r.type !== 'ok') {
          throw new LogStoreError(LogStoreErrorCode.CORRUPT, `${path} offset ${seg.offsets[k]}: ${r.reason}`, path, seg.offsets[k]!, seg.firstIndex + k);
        }
        out.push(r.entry);
      }
    }
    return out;
  }

  private corrupt(path: string, offset: number | null, index: number | null, detail: string): LogStoreError {
    const where = offset === null ? path : `${path} at offset ${offset}`;
    const idx = index === null ? '' : ` (entry index ${index})`;
    return new LogStoreError(
      LogStoreErrorCode.CORRUPT,
      `log corrupted: ${where}${idx}: ${detail}. Refusing to open: dropping it could lose acknowledged entries. ` +
        `Restore this node's data directory from a replica or remove it to resync the node from the cluster.`,
      path,
      offset,
      index,
    );
  }

  private removeSegmentFile(name: string): void {
    unlinkSync(join(this.dir, name));
    this.dirDirty = true;
  }

  private recover(): void {
    const dir = this.dir;
    this.hardState = readHardState(dir);
    const baseFile = readBase(dir);
    const base: SnapshotMeta = { index: baseFile.index, term: baseFile.term, chainHash: baseFile.chainHash };
    this.base = base;

    let segs: { firstIndex: number; name: string }[] = [];
    for (const name of readdirSync(dir)) {
      if (name.endsWith(TMP_SUFFIX) || name.startsWith(`${LOCK_FILE}.stale.`)) {
        unlinkSync(join(dir, name)); // an interrupted atomic write or lock takeover
        this.dirDirty = true;
        continue;
      }
      const m = SEGMENT_RE.exec(name);
      if (m === null) continue;
      const firstIndex = Number(m[1]);
      if (!Number.isSafeInteger(firstIndex) || firstIndex < 1) throw this.corrupt(join(dir, name), null, null, 'segment name has an invalid first index');
      segs.push({ firstIndex, name });
    }
    segs.sort((a, b) => a.firstIndex - b.firstIndex);

    // Segments wholly below the base are leftovers of an interrupted compaction. The segment holding
    // base.index itself stays, so that the base can be checked against the logged entry.
    while (segs.length >= 2 && segs[1]!.firstIndex <= base.index) {
      this.removeSegmentFile(segs.shift()!.name);
    }

    const segments: Segment[] = [];
    let atBase: Entry | null = null;
    const entries: Entry[] = [];
    let expectNext = 0;
    for (let i = 0; i < segs.length; i++) {
      const { firstIndex, name } = segs[i]!;
      const path = join(dir, name);
      const isLast = i === segs.length - 1;
      if (i > 0 && firstIndex !== expectNext) {
        throw this.corrupt(path, null, expectNext, `segment starts at index ${firstIndex} but the previous segment ends at ${expectNext - 1}`);
      }
      const buf = readFileSync(path);
      const offsets: number[] = [];
      let expect = firstIndex;
      let off = 0;
      while (off < buf.length) {
        const r = parseRecordAt(buf, off);
        if (r.type === 'ok') {
          if (r.entry.index !== expect) {
            throw this.corrupt(path, off, expect, `record holds index ${r.entry.index} where ${expect} was expected`);
          }
          offsets.push(off);
          if (expect === base.index) atBase = r.entry;
          else if (expect > base.index) entries.push(r.entry);
          expect++;
          off = r.next;
          continue;
        }
        if (r.type === 'invalid') throw this.corrupt(path, off, expect, r.reason);
        if (!isLast) throw this.corrupt(path, off, expect, `${r.reason}, and later segments follow`);
        const later = findValidRecordFrom(buf, off + 1);
        if (later !== null) throw this.corrupt(path, off, expect, `${r.reason}, followed by a valid record at offset ${later}`);
        this.warn(
          `${path}: torn tail at offset ${off} (${r.reason}); truncating ${buf.length - off} bytes ` +
            `(entries from index ${expect} were not completely written, so never synced)`,
        );
        const fd = openSync(path, 'r+');
        try {
          ftruncateSync(fd, off);
          fdatasyncSync(fd);
        } finally {
          closeSync(fd);
        }
        break;
      }
      if (offsets.length === 0) {
        if (!isLast) throw this.corrupt(path, 0, firstIndex, 'empty segment in the middle of the log');
        this.removeSegmentFile(name); // created, crashed before its first record reached the disk
        continue;
      }
      segments.push({ firstIndex, name, size: off, offsets, fd: null });
      expectNext = expect;
    }

    // Do the segments continue the base?
    const lastInSegments = segments.length === 0 ? null : expectNext - 1;
    let problem: string | null = null;
    if (atBase !== null && (atBase.term !== base.term || atBase.chainHash !== base.chainHash)) {
      problem = `entry ${base.index} (term ${atBase.term}, chainHash ${atBase.chainHash}) differs from the base in ${BASE_FILE} (term ${base.term}, chainHash ${base.chainHash})`;
    } else if (atBase === null && entries.length > 0 && entries[0]!.index !== base.index + 1) {
      problem = `the log resumes at index ${entries[0]!.index} but the base ends at ${base.index}`;
    } else if (lastInSegments !== null && lastInSegments < base.index && !baseFile.resetPending) {
      problem = `the log ends at index ${lastInSegments}, before the base index ${base.index}`;
    }
    const stale = problem !== null || (lastInSegments !== null && lastInSegments < base.index);
    if (stale) {
      if (!baseFile.resetPending) throw this.corrupt(join(dir, segments[0]!.name), null, base.index, problem!);
      this.warn(
        `${join(dir, BASE_FILE)}: finishing an interrupted snapshot reset to index ${base.index}: ` +
          `dropping ${segments.length} stale segment(s)${problem === null ? '' : ` (${problem})`}`,
      );
      for (const seg of segments) this.removeSegmentFile(seg.name);
      segments.length = 0;
      entries.length = 0;
    }
    if (baseFile.resetPending) {
      writeStateFileAtomic(dir, BASE_FILE, { ...base, resetPending: false }, this.dirFd, false);
      this.dirDirty = true;
    }

    this.segments = segments;
    const active = segments.at(-1);
    if (active !== undefined) active.fd = openSync(join(dir, active.name), 'r+');
    this.last = entries.length > 0 ? entries.at(-1)!.index : base.index;
    // Make the repairs (removed files, truncated tail) durable before anything new is written.
    if (this.dirDirty) fsyncSync(this.dirFd);
    this.dirDirty = false;
    this.recovered = { hardState: this.hardState, base, entries };
  }
}

// ---------------------------------------------------------------- Ready -> disk

/** What applyReadyPersistence needs; FileLogStore and a simulated store both fit. */
export interface ReadyPersistenceTarget {
  saveHardState(hs: HardState): void;
  truncateFrom(index: number): void;
  append(entries: readonly Entry[]): void;
  sync(): void;
}

/**
 * Makes the persistence part of a Ready durable, in order: hard state, truncation, new entries,
 * then one sync. Returns whether anything was persisted (and synced). Call it before sending the
 * Ready's messages.
 *
 * Not done here, because the core does them at other moments:
 * - `ready.snapshotToInstall`: the shell first installs the data in the database, then calls
 *   `store.resetTo(meta)` and `store.sync()`, then steps `SnapshotInstalled` (that is when the core
 *   resets its own log; resetting the store earlier would leave it behind the core's log).
 * - `ready.compactUpTo`: after applying the committed entries, `store.compact(meta)`.
 */
export function applyReadyPersistence(
  store: ReadyPersistenceTarget,
  ready: Pick<Ready, 'hardState' | 'truncateFrom' | 'entriesToAppend'>,
): boolean {
  let changed = false;
  if (ready.hardState !== null) {
    store.saveHardState(ready.hardState);
    changed = true;
  }
  if (ready.truncateFrom !== null) {
    store.truncateFrom(ready.truncateFrom);
    changed = true;
  }
  if (ready.entriesToAppend.length > 0) {
    store.append(ready.entriesToAppend);
    changed = true;
  }
  if (changed) store.sync();
  return changed;
}
