#!/usr/bin/env node
// Read latency and throughput at each read consistency level (docs/consistency.md), on a follower
// and on the coordinator of a local 3-node SQLite cluster, side by side with the same point read
// run directly with better-sqlite3 in the same run; and write latency at writeAck quorum vs
// all-applied.
//
//   npm run build && node scripts/bench-reads.mjs [--clients 8] [--reads 4000] [--rows 2000] [--writes 1000]
//
// Every node process is killed at the end, also on error or Ctrl-C.
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReplisqlClient } from '../dist/client/client.js';
import { commandLine, gitInfo, installExitHook, machineInfo, parseArgs, pointReadPhase, positiveInt, readKeys, removeOnExit, resultTable, startCluster, summarize, waitForCoordinator } from './bench-lib.mjs';

const USAGE = 'usage: node scripts/bench-reads.mjs [--clients N] [--reads TOTAL] [--rows N] [--writes TOTAL]';
const opts = parseArgs(process.argv.slice(2), { clients: [8, positiveInt], reads: [10000, positiveInt], rows: [2000, positiveInt], writes: [1000, positiveInt] }, USAGE);
const CREATE = 'CREATE TABLE IF NOT EXISTS bench (k INTEGER PRIMARY KEY, v TEXT NOT NULL)';
const SELECT = 'SELECT v FROM bench WHERE k = ?';
const LEVELS = [
  ['local', { consistency: 'local' }],
  ['session', { consistency: 'session' }],
  ['bounded 1000 ms', { consistency: 'bounded', maxStalenessMs: 1000 }],
  ['bounded 0 ms', { consistency: 'bounded', maxStalenessMs: 0 }],
  ['linearizable', { consistency: 'linearizable' }],
];

installExitHook();
const workDir = mkdtempSync(join(tmpdir(), 'replisql-bench-reads-'));
removeOnExit(workDir);
const results = [];
const notes = [];
console.log(`command: ${commandLine()}`);
console.log(machineInfo());
console.log(gitInfo());
console.log(`workload: ${opts.rows} rows; ${opts.reads} point reads ("${SELECT}") per level and node, ${opts.clients} clients; ${opts.writes} single-row UPDATEs per write ack level`);
console.log('');

// Direct: the database's own rate, one connection, no network.
{
  const db = new Database(join(workDir, 'direct.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(CREATE);
  const ins = db.prepare('INSERT INTO bench (k, v) VALUES (?, ?)');
  db.transaction(() => {
    for (let k = 1; k <= opts.rows; k++) ins.run(k, `value-${k}`);
  })();
  const sel = db.prepare(SELECT);
  const lat = [];
  const t0 = performance.now();
  for (const k of readKeys(opts.reads, opts.rows)) {
    const s = performance.now();
    sel.get(k);
    lat.push(performance.now() - s);
  }
  results.push(summarize('direct SQLite point read', lat, performance.now() - t0, '1 connection, sequential'));
  db.close();
}

let failed = false;
const cluster = await startCluster({ dir: join(workDir, 'cluster') });
try {
  const { coordinator } = await waitForCoordinator(cluster.endpoints, CREATE, { connectTimeoutMs: 5000 });
  const loader = await ReplisqlClient.connect(cluster.endpoints, { timeoutMs: 30_000 });
  for (let k = 1; k <= opts.rows; k += 200) {
    const values = Array.from({ length: Math.min(200, opts.rows - k + 1) }, (_, i) => `(${k + i}, 'value-${k + i}')`).join(', ');
    await loader.query(`INSERT INTO bench (k, v) VALUES ${values}`);
  }
  await loader.close();
  const follower = cluster.procs.find((p) => p.id !== coordinator);
  const coord = cluster.procs.find((p) => p.id === coordinator);
  // Warm-up (JIT, SQLite page cache, connections), not reported: otherwise the first level measured pays for it.
  for (const p of [follower, coord]) await pointReadPhase({ endpoint: p.endpoint, nodeId: p.id, role: 'warm-up', sql: SELECT, keys: readKeys(opts.reads, opts.rows, 999), clients: opts.clients, notes });
  for (const [name, queryOpts] of LEVELS) {
    for (const [p, role] of [[follower, 'follower'], [coord, 'coordinator']]) {
      results.push(await pointReadPhase({ endpoint: p.endpoint, nodeId: p.id, role, sql: SELECT, keys: readKeys(opts.reads, opts.rows), clients: opts.clients, notes, queryOpts, mode: `point read, ${name}` }));
    }
  }
  // Writes: single-row UPDATEs through the follower, acknowledged at quorum vs all-applied.
  for (const ack of ['quorum', 'all-applied']) {
    const conns = await Promise.all(Array.from({ length: opts.clients }, () => ReplisqlClient.connect([follower.endpoint], { timeoutMs: 30_000 })));
    const lat = [];
    let next = 0;
    let errors = 0;
    const t0 = performance.now();
    await Promise.all(
      conns.map(async (cl) => {
        while (next < opts.writes) {
          const i = next++;
          const s = performance.now();
          try {
            await cl.query('UPDATE bench SET v = ? WHERE k = ?', [`w-${i}`, 1 + (i % opts.rows)], { ack });
            lat.push(performance.now() - s);
          } catch (err) {
            if (errors++ === 0) notes.push(`ack ${ack}: ${err.code}: ${err.message}`);
          }
        }
      }),
    );
    const elapsed = performance.now() - t0;
    await Promise.all(conns.map((c) => c.close()));
    results.push(summarize(`update, ack ${ack}`, lat, elapsed, `${opts.clients} clients -> node ${follower.id} (follower)${errors ? `, ${errors} ERRORS` : ''}`));
  }
} catch (err) {
  failed = true;
  console.error(`bench failed: ${err.stack ?? err}`);
} finally {
  await cluster.stop();
}

console.log(resultTable(results));
for (const n of notes) console.log(`note: ${n}`);
console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
process.exit(failed ? 1 : 0);
