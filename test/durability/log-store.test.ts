import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, unlinkSync, writeFileSync, appendFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Entry, HardState, Ready, SnapshotMeta } from '../../src/core/types.js';
import { EMPTY_SNAPSHOT } from '../../src/core/types.js';
import { crc32 } from '../../src/durability/crc32.js';
import { writeStateFileAtomic } from '../../src/durability/hard-state-file.js';
import { FileLogStore, LogStoreError, RECORD_HEADER_BYTES, applyReadyPersistence } from '../../src/durability/log-store.js';
import { makeEntries, makeEntry, metaOf } from './fixtures/log-store-entries.js';

const root = mkdtempSync(join(tmpdir(), 'replisql-log-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (): string => join(root, `d${dirCount++}`);

interface Opened {
  store: FileLogStore;
  warnings: string[];
}
function open(dir: string, segmentMaxBytes?: number): Opened {
  const warnings: string[] = [];
  const store = FileLogStore.open(dir, { ...(segmentMaxBytes === undefined ? {} : { segmentMaxBytes }), onWarning: (m) => warnings.push(m) });
  return { store, warnings };
}
function reopen(dir: string, segmentMaxBytes?: number): Opened & { loaded: ReturnType<FileLogStore['load']> } {
  const o = open(dir, segmentMaxBytes);
  return { ...o, loaded: o.store.load() };
}
function segFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.seg'))
    .sort();
}
function seg(firstIndex: number): string {
  return `log-${String(firstIndex).padStart(20, '0')}.seg`;
}
function expectCode(fn: () => unknown, code: string, ...fragments: string[]): LogStoreError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof LogStoreError, `expected LogStoreError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  for (const f of fragments) assert.ok(caught.message.includes(f), `message should mention ${JSON.stringify(f)}: ${caught.message}`);
  return caught;
}
/** Writes 1..n (term 1) into a fresh store, closes it, returns the dir and the byte offset of each record. */
function buildLog(n: number, segmentMaxBytes?: number): { dir: string; entries: Entry[] } {
  const dir = freshDir();
  const { store } = open(dir, segmentMaxBytes);
  const entries = makeEntries(1, n);
  store.append(entries);
  store.sync();
  store.close();
  return { dir, entries };
}
/** Record start offsets in a segment file, by walking the headers. */
function recordOffsets(file: string): number[] {
  const buf = readFileSync(file);
  const out: number[] = [];
  let off = 0;
  while (off < buf.length) {
    out.push(off);
    off += RECORD_HEADER_BYTES + buf.readUInt32LE(off + 4);
  }
  return out;
}

describe('FileLogStore basics', () => {
  it('starts empty, round-trips appended entries across reopen', () => {
    const dir = freshDir();
    const { store } = open(dir);
    const first = store.load();
    assert.deepEqual(first, { hardState: { term: 0, votedFor: null }, base: EMPTY_SNAPSHOT, entries: [] });
    assert.equal(store.lastIndex(), 0);
    const entries = makeEntries(1, 57);
    store.append(entries.slice(0, 1));
    store.append(entries.slice(1, 30));
    store.sync();
    store.append(entries.slice(30));
    store.sync();
    assert.equal(store.lastIndex(), 57);
    assert.deepEqual(store.load().entries, entries, 'a later load() reads the current log');
    store.close();
    assert.equal(existsSync(join(dir, 'LOCK')), false, 'close releases the lock');
    const r = reopen(dir);
    assert.deepEqual(r.loaded.entries, entries);
    assert.equal(r.store.lastIndex(), 57);
    assert.deepEqual(r.warnings, []);
    r.store.close();
  });

  it('rejects non-contiguous appends and use after close', () => {
    const dir = freshDir();
    const { store } = open(dir);
    expectCode(() => store.append([makeEntry(2)]), 'LOG_MISUSE', 'index 2', 'expected');
    store.append(makeEntries(1, 3));
    expectCode(() => store.append([makeEntry(3)]), 'LOG_MISUSE');
    expectCode(() => store.append([makeEntry(4), makeEntry(6)]), 'LOG_MISUSE', 'index 6');
    assert.equal(store.lastIndex(), 3, 'a rejected batch writes nothing');
    store.close();
    store.close();
    expectCode(() => store.append([makeEntry(4)]), 'LOG_MISUSE', 'closed');
    assert.deepEqual(reopen(dir).loaded.entries, makeEntries(1, 3));
  });

  it('rotates segments and keeps a record larger than a segment in its own segment', () => {
    const dir = freshDir();
    const { store } = open(dir, 600);
    const entries = [...makeEntries(1, 10), makeEntry(11, 1, 5000), ...makeEntries(12, 20)];
    for (const e of entries) store.append([e]);
    store.sync();
    store.close();
    const files = segFiles(dir);
    assert.ok(files.length > 4, `expected several segments, got ${files.join(',')}`);
    assert.ok(files.includes(seg(11)) && files.includes(seg(12)), 'the big record sits alone in its segment');
    const r = reopen(dir, 600);
    assert.deepEqual(r.loaded.entries, entries);
    r.store.close();
  });

  it('truncates then appends different entries, also across segments', () => {
    const dir = freshDir();
    const { store } = open(dir, 1000);
    store.append(makeEntries(1, 40, 1));
    store.sync();
    const before = segFiles(dir);
    assert.ok(before.length >= 4, 'needs several segments');
    store.truncateFrom(41); // beyond the end: no-op
    assert.equal(store.lastIndex(), 40);
    store.truncateFrom(12);
    assert.equal(store.lastIndex(), 11);
    store.append(makeEntries(12, 20, 2));
    store.sync();
    store.truncateFrom(18);
    store.append(makeEntries(18, 25, 3));
    store.sync();
    store.close();
    const want = [...makeEntries(1, 11, 1), ...makeEntries(12, 17, 2), ...makeEntries(18, 25, 3)];
    const r = reopen(dir, 1000);
    assert.deepEqual(r.loaded.entries, want);
    assert.deepEqual(r.warnings, []);
    // Truncating exactly at a segment's first index removes that segment.
    const firstIndexes = segFiles(dir).map((n) => Number(n.slice(4, 24)));
    const boundary = firstIndexes[firstIndexes.length - 1]!;
    assert.ok(boundary > 1);
    r.store.truncateFrom(boundary);
    assert.equal(segFiles(dir).includes(seg(boundary)), false);
    r.store.append([makeEntry(boundary, 9)]);
    r.store.close();
    const r2 = reopen(dir, 1000);
    assert.deepEqual(r2.loaded.entries, [...want.slice(0, boundary - 1), makeEntry(boundary, 9)]);
    // Truncating everything.
    r2.store.truncateFrom(1);
    assert.equal(r2.store.lastIndex(), 0);
    assert.deepEqual(segFiles(dir), []);
    r2.store.append(makeEntries(1, 2, 4));
    r2.store.close();
    assert.deepEqual(reopen(dir).loaded.entries, makeEntries(1, 2, 4));
  });

  it('round-trips the hard state and reports a damaged hard state file', () => {
    const dir = freshDir();
    const { store } = open(dir);
    store.saveHardState({ term: 3, votedFor: 2 });
    store.saveHardState({ term: 4, votedFor: null });
    store.sync();
    store.close();
    let r = reopen(dir);
    assert.deepEqual(r.loaded.hardState, { term: 4, votedFor: null });
    r.store.saveHardState({ term: 7, votedFor: 5 });
    r.store.close();
    r = reopen(dir);
    assert.deepEqual(r.loaded.hardState, { term: 7, votedFor: 5 });
    expectCode(() => r.store.saveHardState({ term: -1, votedFor: null } as HardState), 'LOG_MISUSE');
    r.store.close();
    assert.equal(readdirSync(dir).some((n) => n.endsWith('.tmp')), false);
    const file = join(dir, 'hardstate.json');
    writeFileSync(file, readFileSync(file, 'utf8').replace('"term":7', '"term":8'));
    expectCode(() => open(dir), 'LOG_CORRUPT', 'hardstate.json', 'checksum');
    // A leftover temporary file of an interrupted write is ignored and removed.
    writeFileSync(file, readFileSync(file, 'utf8').replace('"term":8', '"term":7'));
    writeFileSync(file + '.tmp', 'garbage');
    r = reopen(dir);
    assert.deepEqual(r.loaded.hardState, { term: 7, votedFor: 5 });
    assert.equal(existsSync(file + '.tmp'), false);
    r.store.close();
  });

  it('compacts: drops whole segments below the base, keeps the suffix and the base across reopen', () => {
    const dir = freshDir();
    const { store } = open(dir, 700);
    const entries = makeEntries(1, 100);
    store.append(entries);
    store.sync();
    const nBefore = segFiles(dir).length;
    expectCode(() => store.compact({ ...metaOf(entries[56]!), term: 9 }), 'LOG_MISUSE', 'does not match');
    expectCode(() => store.compact(metaOf(makeEntry(101))), 'LOG_MISUSE', 'beyond');
    store.compact(metaOf(entries[56]!)); // index 57
    const files = segFiles(dir);
    assert.ok(files.length < nBefore, 'some segments were removed');
    const firstKept = Number(files[0]!.slice(4, 24));
    assert.ok(firstKept > 1 && firstKept <= 57, `first kept segment starts at ${firstKept} and must hold 57`);
    expectCode(() => store.truncateFrom(57), 'LOG_MISUSE', 'compacted');
    store.compact(metaOf(entries[10]!)); // older than the base: no-op
    store.close();
    const r = reopen(dir, 700);
    assert.deepEqual(r.loaded.base, metaOf(entries[56]!));
    assert.deepEqual(r.loaded.entries, entries.slice(57));
    assert.equal(r.store.lastIndex(), 100);
    r.store.append(makeEntries(101, 110));
    r.store.compact(metaOf(makeEntry(110))); // everything: the active segment stays
    r.store.close();
    const r2 = reopen(dir, 700);
    assert.deepEqual(r2.loaded.base, metaOf(makeEntry(110)));
    assert.deepEqual(r2.loaded.entries, []);
    assert.equal(r2.store.lastIndex(), 110);
    r2.store.append(makeEntries(111, 112));
    r2.store.close();
    assert.deepEqual(reopen(dir, 700).loaded.entries, makeEntries(111, 112));
  });

  it('finishes a compaction interrupted after the base was written', () => {
    const { dir, entries } = buildLog(100, 700);
    const n = segFiles(dir).length;
    writeStateFileAtomic(dir, 'base.json', { ...metaOf(entries[59]!), resetPending: false }, null, false);
    const r = reopen(dir, 700);
    assert.deepEqual(r.loaded.base, metaOf(entries[59]!));
    assert.deepEqual(r.loaded.entries, entries.slice(60));
    assert.ok(segFiles(dir).length < n, 'leftover segments were removed');
    r.store.close();
  });

  it('resetTo drops every entry and moves the base, durably', () => {
    const { dir } = buildLog(30, 800);
    const { store } = open(dir, 800);
    const meta: SnapshotMeta = { index: 100, term: 5, chainHash: 'c'.repeat(32) };
    store.resetTo(meta);
    assert.equal(store.lastIndex(), 100);
    assert.deepEqual(segFiles(dir), []);
    expectCode(() => store.append([makeEntry(31)]), 'LOG_MISUSE');
    store.append(makeEntries(101, 105, 5));
    store.sync();
    store.close();
    let r = reopen(dir, 800);
    assert.deepEqual(r.loaded.base, meta);
    assert.deepEqual(r.loaded.entries, makeEntries(101, 105, 5));
    assert.equal(segFiles(dir)[0], seg(101), 'no segment of the old log is left');
    // A reset to an index below the current log also drops everything.
    r.store.resetTo(metaOf(makeEntry(50, 4)));
    assert.equal(r.store.lastIndex(), 50);
    r.store.append(makeEntries(51, 52, 4));
    r.store.close();
    r = reopen(dir, 800);
    assert.deepEqual(r.loaded.base, metaOf(makeEntry(50, 4)));
    assert.deepEqual(r.loaded.entries, makeEntries(51, 52, 4));
    assert.deepEqual(r.warnings, []);
    r.store.close();
  });

  it('resetTo keeps the entries that continue the snapshot, like the core\'s log', () => {
    const { dir, entries } = buildLog(30, 800);
    const { store } = open(dir, 800);
    store.resetTo(metaOf(entries[19]!));
    assert.equal(store.lastIndex(), 30);
    store.resetTo(metaOf(entries[19]!)); // the base itself: no-op
    assert.equal(store.lastIndex(), 30);
    store.close();
    let r = reopen(dir, 800);
    assert.deepEqual(r.loaded.base, metaOf(entries[19]!));
    assert.deepEqual(r.loaded.entries, entries.slice(20));
    // Same index, other term: nothing continues it.
    r.store.resetTo(metaOf(makeEntry(25, 2)));
    assert.equal(r.store.lastIndex(), 25);
    r.store.close();
    r = reopen(dir, 800);
    assert.deepEqual(r.loaded.base, metaOf(makeEntry(25, 2)));
    assert.deepEqual(r.loaded.entries, []);
    r.store.close();
  });

  it('recovers a reset interrupted before the old segments were removed', () => {
    // Old log 1..40; crash after base.json (pending) was written, before the segments went.
    const { dir } = buildLog(40, 800);
    const meta: SnapshotMeta = { index: 30, term: 7, chainHash: 'f'.repeat(32) };
    writeStateFileAtomic(dir, 'base.json', { ...meta, resetPending: true }, null, false);
    let r = reopen(dir, 800);
    assert.deepEqual(r.loaded.base, meta);
    assert.deepEqual(r.loaded.entries, [], 'entries that do not continue the snapshot are dropped');
    assert.equal(r.store.lastIndex(), 30);
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /interrupted snapshot reset/);
    assert.deepEqual(segFiles(dir), []);
    r.store.append(makeEntries(31, 32, 7));
    r.store.close();
    r = reopen(dir, 800);
    assert.deepEqual(r.loaded.entries, makeEntries(31, 32, 7));
    assert.deepEqual(r.warnings, [], 'the pending marker was cleared');
    r.store.close();
    // Snapshot beyond the end of the old log.
    const b = buildLog(10);
    writeStateFileAtomic(b.dir, 'base.json', { ...meta, resetPending: true }, null, false);
    r = reopen(b.dir);
    assert.deepEqual(r.loaded.entries, []);
    assert.equal(r.store.lastIndex(), 30);
    r.store.append([makeEntry(31)]);
    r.store.close();
    assert.deepEqual(reopen(b.dir).loaded.entries, [makeEntry(31)]);
  });

  it('keeps, after an interrupted reset, a suffix that continues the snapshot', () => {
    const { dir, entries } = buildLog(40, 800);
    writeStateFileAtomic(dir, 'base.json', { ...metaOf(entries[19]!), resetPending: true }, null, false);
    const r = reopen(dir, 800);
    assert.deepEqual(r.loaded.base, metaOf(entries[19]!));
    assert.deepEqual(r.loaded.entries, entries.slice(20));
    assert.deepEqual(r.warnings, []);
    r.store.close();
    // Crash in the middle of removing segments (the last ones go first): what is left is all below the base.
    const b = buildLog(40, 800);
    const files = segFiles(b.dir);
    writeStateFileAtomic(b.dir, 'base.json', { index: 35, term: 8, chainHash: 'e'.repeat(32), resetPending: true }, null, false);
    for (const f of files.slice(-4)) unlinkSync(join(b.dir, f));
    const r2 = reopen(b.dir, 800);
    assert.deepEqual(r2.loaded.entries, []);
    assert.equal(r2.store.lastIndex(), 35);
    assert.deepEqual(segFiles(b.dir), []);
    r2.store.close();
  });

  it('refuses a base.json that the log does not continue (without a pending reset)', () => {
    const { dir } = buildLog(40);
    writeStateFileAtomic(dir, 'base.json', { index: 30, term: 7, chainHash: 'f'.repeat(32), resetPending: false }, null, false);
    expectCode(() => open(dir), 'LOG_CORRUPT', 'entry 30', 'base.json');
  });

  it('applyReadyPersistence persists in order and syncs once', () => {
    const calls: string[] = [];
    const fake = {
      saveHardState: (hs: HardState) => calls.push(`hs ${hs.term}`),
      truncateFrom: (i: number) => calls.push(`truncate ${i}`),
      append: (es: readonly Entry[]) => calls.push(`append ${es.length}`),
      sync: () => calls.push('sync'),
    };
    const none: Pick<Ready, 'hardState' | 'truncateFrom' | 'snapshotToInstall' | 'entriesToAppend'> = {
      hardState: null,
      truncateFrom: null,
      snapshotToInstall: null,
      entriesToAppend: [],
    };
    assert.equal(applyReadyPersistence(fake, none), false);
    assert.deepEqual(calls, []);
    const all = {
      hardState: { term: 2, votedFor: 1 },
      truncateFrom: 5,
      snapshotToInstall: { meta: { index: 9, term: 2, chainHash: 'x' }, data: '' },
      entriesToAppend: makeEntries(10, 11),
    };
    assert.equal(applyReadyPersistence(fake, all), true);
    assert.deepEqual(calls, ['hs 2', 'truncate 5', 'append 2', 'sync'], 'the snapshot reset is the caller\'s, after the install');

    const dir = freshDir();
    const { store } = open(dir);
    applyReadyPersistence(store, { ...none, hardState: { term: 1, votedFor: 3 }, entriesToAppend: makeEntries(1, 5) });
    applyReadyPersistence(store, { ...none, truncateFrom: 4, entriesToAppend: makeEntries(4, 6, 2) });
    store.close();
    const r = reopen(dir);
    assert.deepEqual(r.loaded.hardState, { term: 1, votedFor: 3 });
    assert.deepEqual(r.loaded.entries, [...makeEntries(1, 3), ...makeEntries(4, 6, 2)]);
    r.store.close();
  });
});

describe('FileLogStore recovery', () => {
  it('truncates a torn tail at every byte offset of the last record, keeping all previous records', () => {
    const { dir, entries } = buildLog(6);
    const file = join(dir, seg(1));
    const original = readFileSync(file);
    const lastStart = recordOffsets(file).at(-1)!;
    assert.ok(original.length - lastStart > 100);
    for (let cut = lastStart; cut < original.length; cut++) {
      const d = freshDir();
      cpSync(dir, d, { recursive: true });
      truncateSync(join(d, seg(1)), cut);
      const r = reopen(d);
      assert.deepEqual(r.loaded.entries, entries.slice(0, 5), `cut at ${cut}`);
      assert.equal(r.store.lastIndex(), 5);
      if (cut === lastStart) assert.deepEqual(r.warnings, []);
      else {
        assert.equal(r.warnings.length, 1, `cut at ${cut}: ${r.warnings.join('; ')}`);
        assert.ok(r.warnings[0]!.includes(seg(1)) && r.warnings[0]!.includes(`offset ${lastStart}`), r.warnings[0]);
      }
      // The log is usable: the lost entry can be written again.
      r.store.append([entries[5]!]);
      r.store.close();
      const again = reopen(d);
      assert.deepEqual(again.loaded.entries, entries, `cut at ${cut}, after re-append`);
      assert.deepEqual(again.warnings, []);
      again.store.close();
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('treats a checksum failure or zeros in the last record as a torn tail', () => {
    const { dir, entries } = buildLog(6, 100_000);
    const file = join(dir, seg(1));
    const lastStart = recordOffsets(file).at(-1)!;
    const buf = readFileSync(file);
    buf[buf.length - 3]! ^= 0x40;
    writeFileSync(file, buf);
    let r = reopen(dir);
    assert.deepEqual(r.loaded.entries, entries.slice(0, 5));
    assert.match(r.warnings[0]!, /checksum mismatch/);
    assert.ok(r.warnings[0]!.includes(`offset ${lastStart}`));
    r.store.close();
    appendFileSync(file, Buffer.alloc(8192)); // size grew, data never made it
    r = reopen(dir);
    assert.deepEqual(r.loaded.entries, entries.slice(0, 5));
    assert.equal(r.warnings.length, 1);
    r.store.close();
  });

  it('drops a last segment that holds only a torn record', () => {
    const { dir, entries } = buildLog(30, 500);
    const files = segFiles(dir);
    const lastFile = files.at(-1)!;
    const lastFirst = Number(lastFile.slice(4, 24));
    truncateSync(join(dir, lastFile), 7);
    const r = reopen(dir, 500);
    const kept = entries.slice(0, lastFirst - 1);
    assert.deepEqual(r.loaded.entries, kept);
    assert.equal(segFiles(dir).includes(lastFile), false);
    r.store.append(entries.slice(lastFirst - 1));
    r.store.close();
    assert.deepEqual(reopen(dir, 500).loaded.entries, entries);
  });

  it('refuses to open when a record in the middle is corrupt, naming file, offset and index', () => {
    const { dir } = buildLog(6);
    const file = join(dir, seg(1));
    const offsets = recordOffsets(file);
    const buf = readFileSync(file);
    buf[offsets[2]! + RECORD_HEADER_BYTES + 20]! ^= 0x01; // body of entry 3
    writeFileSync(file, buf);
    const err = expectCode(() => open(dir), 'LOG_CORRUPT', seg(1), `offset ${offsets[2]}`, 'index 3', 'checksum mismatch');
    assert.equal(err.offset, offsets[2]);
    assert.equal(err.index, 3);
    assert.equal(readFileSync(file).length, buf.length, 'nothing was truncated');
    assert.equal(existsSync(join(dir, 'LOCK')), false, 'a failed open releases the lock');
  });

  it('refuses a damaged header in the middle and a damaged last record of a non-last segment', () => {
    let { dir } = buildLog(6);
    let file = join(dir, seg(1));
    const offsets = recordOffsets(file);
    const buf = readFileSync(file);
    buf.writeUInt32LE(0xdeadbeef, offsets[1]!); // magic of entry 2
    writeFileSync(file, buf);
    expectCode(() => open(dir), 'LOG_CORRUPT', 'index 2', 'bad record magic');

    ({ dir } = buildLog(30, 500));
    const files = segFiles(dir);
    assert.ok(files.length >= 3);
    file = join(dir, files[0]!);
    const b = readFileSync(file);
    b[b.length - 2]! ^= 0x01;
    writeFileSync(file, b);
    expectCode(() => open(dir), 'LOG_CORRUPT', files[0]!, 'later segments follow');
  });

  it('refuses a missing segment (gap in the indexes)', () => {
    const { dir } = buildLog(30, 500);
    const files = segFiles(dir);
    assert.ok(files.length >= 3);
    unlinkSync(join(dir, files[1]!));
    expectCode(() => open(dir), 'LOG_CORRUPT', files[2]!, 'previous segment ends');
  });

  it('refuses a record whose index does not continue the sequence', () => {
    const dir = freshDir();
    const { store } = open(dir);
    store.append(makeEntries(1, 3));
    store.close();
    // Forge a valid record for index 5 after index 3 (as a bug elsewhere might).
    const other = freshDir();
    const o = open(other);
    o.store.resetTo(metaOf(makeEntry(4)));
    o.store.append([makeEntry(5)]);
    o.store.close();
    appendFileSync(join(dir, seg(1)), readFileSync(join(other, seg(5))));
    expectCode(() => open(dir), 'LOG_CORRUPT', 'holds index 5 where 4 was expected');
  });
});

describe('crc32', () => {
  function bitwise(b: Uint8Array): number {
    let c = 0xffffffff;
    for (const x of b) {
      c ^= x;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    return (c ^ 0xffffffff) >>> 0;
  }

  it('matches the IEEE check value and a bitwise reference, also when chained', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
    assert.equal(crc32(Buffer.alloc(0)), 0);
    let seed = 12345;
    for (let n = 0; n < 300; n++) {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
      assert.equal(crc32(b), bitwise(b), `length ${n}`);
      const cut = n === 0 ? 0 : seed % n;
      assert.equal(crc32(b, cut, n, crc32(b, 0, cut)), bitwise(b), `chained at ${cut} of ${n}`);
      assert.equal(crc32(b, 1, n), bitwise(b.subarray(1)));
    }
  });
});
