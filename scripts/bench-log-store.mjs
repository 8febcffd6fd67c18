#!/usr/bin/env node
// Append + sync throughput of FileLogStore on this machine's disk.
// Usage: node --import tsx scripts/bench-log-store.mjs [entries=10000] [payloadBytes=200] [dir=os.tmpdir()]
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileLogStore } from '../src/durability/log-store.ts';

const total = Number(process.argv[2] ?? 10_000);
const payloadBytes = Number(process.argv[3] ?? 200);
const parent = process.argv[4] ?? tmpdir();

function entry(index) {
  const payload = JSON.stringify({ sql: `INSERT INTO t VALUES (${index}, ?)`, params: ['x'.repeat(payloadBytes)] });
  const md5 = createHash('md5').update(payload).digest('hex');
  return { index, term: 1, kind: 'command', requestId: `r${index}`, payload, md5, chainHash: md5 };
}
const entries = Array.from({ length: total }, (_, i) => entry(i + 1));

function run(batch, sync) {
  const dir = mkdtempSync(join(parent, 'replisql-bench-log-'));
  const store = FileLogStore.open(dir);
  const lat = [];
  const t0 = performance.now();
  for (let i = 0; i < total; i += batch) {
    const s = performance.now();
    store.append(entries.slice(i, i + batch));
    if (sync) store.sync();
    lat.push(performance.now() - s);
  }
  const ms = performance.now() - t0;
  store.close();
  const t1 = performance.now();
  const reopened = FileLogStore.open(dir);
  const n = reopened.load().entries.length;
  const recoverMs = performance.now() - t1;
  reopened.close();
  rmSync(dir, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  const pct = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(3);
  console.log(
    `batch=${String(batch).padStart(4)} sync=${sync ? 'yes' : 'no '}  ${Math.round((total / ms) * 1000).toString().padStart(8)} entries/s` +
      `  ${Math.round((lat.length / ms) * 1000).toString().padStart(7)} batches/s  batch p50=${pct(0.5)}ms p99=${pct(0.99)}ms` +
      `  reopen+load ${n} entries: ${recoverMs.toFixed(1)}ms`,
  );
}

console.log(`node ${process.version}, ${total} entries, ~${payloadBytes + 150} bytes each, dir ${parent}`);
for (const batch of [1, 10, 100]) run(batch, true);
run(100, false);
