#!/usr/bin/env node
// Write and read throughput / latency of a local 3-node replisql cluster, side by side with the
// same SQLite workload run directly with better-sqlite3, in one run.
//
//   npm run bench                                   (builds first)
//   node scripts/bench.mjs [--clients 16] [--ops 4000] [--reads 4000] [--acks one,quorum,all]
//                          [--phase-seconds 30] [--node-args "--cpu-prof --cpu-prof-dir=DIR"] [--keep true]
//
// Modes:
//  - direct insert: one better-sqlite3 connection (WAL, synchronous=FULL, the settings a node uses),
//    each INSERT its own transaction, so one fsync per row. better-sqlite3 is synchronous, so the
//    "clients" are interleaved on that one connection: this is the database's own rate, no network.
//  - direct insert, batched: the same rows, `clients` rows per transaction: what perfect group
//    commit on one disk could reach.
//  - cluster insert, writeAck one/quorum/all: a fresh 3-node cluster per ack level (child processes,
//    fresh temp data dir, free loopback ports); `clients` concurrent clients, each connected to one
//    node (spread over the three), each running its INSERTs one after the other. Writes sent to a
//    follower are forwarded to the coordinator.
//  - point reads: SELECT by primary key, directly vs through one node (reads run on that node's
//    database, whatever its role).
//
// Every node process is killed at the end, also on error or Ctrl-C (a Ctrl-C during a direct
// SQLite phase, which is synchronous, takes effect when that phase ends).
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReplisqlClient } from '../dist/client/client.js';
import { commandLine, cpuSeconds, gitInfo, installExitHook, machineInfo, parseArgs, pointReadPhase, positiveInt, readKeys, removeOnExit, resultTable, rssMiB, startCluster, summarize, table, waitForCoordinator } from './bench-lib.mjs';

const USAGE = `usage: node scripts/bench.mjs [--clients N] [--ops TOTAL] [--reads TOTAL] [--acks one,quorum,all]
                          [--phase-seconds S] [--node-args "FLAGS"] [--keep true]`;
const ACKS = ['one', 'quorum', 'all'];
const opts = parseArgs(
  process.argv.slice(2),
  {
    clients: [16, positiveInt],
    ops: [4000, positiveInt],
    reads: [4000, positiveInt],
    acks: [
      ACKS,
      (s) => {
        const list = s.split(',').map((x) => x.trim());
        for (const a of list) if (!ACKS.includes(a)) throw new Error(`unknown ack level "${a}"; expected ${ACKS.join(', ')}`);
        return list;
      },
    ],
    'phase-seconds': [30, positiveInt],
    'node-args': [[], (s) => s.split(/\s+/).filter((x) => x !== '')],
    keep: [false, (s) => s === 'true' || s === '1'],
  },
  USAGE,
);

const clients = opts.clients;
const perClient = Math.max(1, Math.round(opts.ops / clients));
const totalOps = perClient * clients;
const phaseMs = opts['phase-seconds'] * 1000;
const VALUE = (k) => `value-${k}-`.padEnd(32, 'x');
const INSERT = 'INSERT INTO bench(k, v) VALUES (?, ?)';
const SELECT = 'SELECT v FROM bench WHERE k = ?';
const CREATE = 'CREATE TABLE IF NOT EXISTS bench (k INTEGER PRIMARY KEY, v TEXT NOT NULL)';

installExitHook(); // Ctrl-C / SIGTERM at any point: exit, killing every node child and removing the temp dir
const workDir = mkdtempSync(join(tmpdir(), 'replisql-bench-'));
if (!opts.keep) removeOnExit(workDir);
const results = [];
const memory = [];
const cpu = [];
const notes = [];
const runStarted = performance.now();

console.log(`command: ${commandLine()}`);
console.log(machineInfo());
console.log(gitInfo());
console.log(`workload: ${clients} clients x ${perClient} INSERTs = ${totalOps} rows ("${INSERT}", v = 32 chars); ${opts.reads} point reads; temp dir ${workDir}`);
console.log('');

// ---------------------------------------------------------------- direct SQLite

function openDirect(path) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(CREATE);
  return db;
}

function directInserts(file = 'direct.db', label = 'direct SQLite insert, 1 row/txn') {
  const db = openDirect(join(workDir, file));
  const insert = db.prepare(INSERT);
  const lat = [];
  const t0 = performance.now();
  // Round-robin over the "clients": client c's i-th row, as the cluster run writes them.
  for (let i = 0; i < perClient; i++) {
    for (let c = 0; c < clients; c++) {
      const k = c * perClient + i + 1;
      const s = performance.now();
      insert.run(k, VALUE(k)); // autocommit: its own transaction, fsynced (synchronous=FULL)
      lat.push(performance.now() - s);
    }
  }
  results.push(summarize(label, lat, performance.now() - t0, '1 connection, sequential'));
  return db;
}

function directBatchedInserts() {
  const db = openDirect(join(workDir, 'direct-batched.db'));
  const insert = db.prepare(INSERT);
  const batch = db.transaction((rows) => {
    for (const k of rows) insert.run(k, VALUE(k));
  });
  const lat = [];
  const t0 = performance.now();
  for (let i = 0; i < perClient; i++) {
    const rows = Array.from({ length: clients }, (_, c) => c * perClient + i + 1);
    const s = performance.now();
    batch(rows);
    const ms = performance.now() - s;
    for (let c = 0; c < clients; c++) lat.push(ms); // every row of the batch waits for its commit
  }
  results.push(summarize(`direct SQLite insert, ${clients} row${clients === 1 ? '' : 's'}/txn`, lat, performance.now() - t0, 'group-commit ceiling, 1 connection'));
  db.close();
}

function directReads(db) {
  const select = db.prepare(SELECT);
  const keys = readKeys(opts.reads, totalOps);
  const lat = [];
  let missing = 0;
  const t0 = performance.now();
  for (const k of keys) {
    const s = performance.now();
    if (select.get(k) === undefined) missing++;
    lat.push(performance.now() - s);
  }
  results.push(summarize('direct SQLite point read', lat, performance.now() - t0, `1 connection, sequential${missing ? `, ${missing} MISSING` : ''}`));
}

// ---------------------------------------------------------------- cluster

/** `clients` concurrent clients, client c connected first to node c % n, each doing `perClient` INSERTs. */
async function clusterInserts(cluster, ack, coordinator) {
  const eps = cluster.endpoints;
  const conns = await Promise.all(
    Array.from({ length: clients }, (_, c) => ReplisqlClient.connect([...eps.slice(c % eps.length), ...eps.slice(0, c % eps.length)], { timeoutMs: 30_000 })),
  );
  const lat = [];
  const errors = new Map();
  let stoppedEarly = false;
  const cpuBefore = cluster.procs.map((p) => cpuSeconds(p.pid));
  const benchCpuBefore = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + phaseMs;
  await Promise.all(
    conns.map(async (cl, c) => {
      for (let i = 0; i < perClient; i++) {
        if (performance.now() > deadline) {
          stoppedEarly = true;
          return;
        }
        const k = c * perClient + i + 1;
        const s = performance.now();
        try {
          await cl.query(INSERT, [k, VALUE(k)]);
          lat.push(performance.now() - s);
        } catch (err) {
          const key = `${err.code ?? 'error'}: ${err.message}`;
          errors.set(key, (errors.get(key) ?? 0) + 1);
        }
      }
    }),
  );
  const elapsed = performance.now() - t0;
  const nodeCpu = cluster.procs.map((p, i) => (cpuSeconds(p.pid) ?? NaN) - (cpuBefore[i] ?? NaN));
  const b = process.cpuUsage(benchCpuBefore);
  const benchCpu = (b.user + b.system) / 1e6;
  const busy = nodeCpu.reduce((x, y) => x + y, 0) + benchCpu;
  cpu.push([
    `writeAck ${ack}`,
    (elapsed / 1000).toFixed(2),
    ...nodeCpu.map((v, i) => `${v.toFixed(2)}${cluster.procs[i].id === coordinator ? ' (coord.)' : ''}`),
    benchCpu.toFixed(2),
    `${Math.round((busy / (elapsed / 1000)) * 100)}%`,
  ]);
  await Promise.all(conns.map((cl) => cl.close()));
  const errCount = [...errors.values()].reduce((a, b) => a + b, 0);
  const note = [
    `${clients} client${clients === 1 ? "" : "s"} over ${eps.length} nodes`,
    stoppedEarly ? `STOPPED at the ${opts['phase-seconds']} s limit` : '',
    errCount > 0 ? `${errCount} ERRORS` : '',
  ]
    .filter((x) => x !== '')
    .join(', ');
  for (const [e, n] of errors) notes.push(`writeAck ${ack}: ${n} x ${e}`);
  results.push(summarize(`cluster insert, writeAck ${ack}`, lat, elapsed, note));
  return lat.length;
}

/** Rows in `bench` on each node, waiting up to `waitMs` for followers to apply what was committed. */
async function rowsPerNode(cluster, expected, waitMs = 10_000) {
  const counts = [];
  for (const p of cluster.procs) {
    const cl = await ReplisqlClient.connect([p.endpoint], { timeoutMs: 5000 });
    const t0 = performance.now();
    let n = -1;
    try {
      for (;;) {
        n = Number((await cl.query('SELECT count(*) FROM bench'))[0].rows[0][0]);
        if (n >= expected || performance.now() - t0 > waitMs) break;
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await cl.close();
    }
    counts.push(`node ${p.id}: ${n}`);
  }
  return counts.join(', ');
}

async function clusterReads(cluster, coordinator) {
  // A follower if there is one: reads do not involve the coordinator.
  const p = cluster.procs.find((x) => x.id !== coordinator) ?? cluster.procs[0];
  const role = p.id === coordinator ? 'coordinator' : 'follower';
  const keys = readKeys(opts.reads, totalOps);
  results.push(await pointReadPhase({ endpoint: p.endpoint, nodeId: p.id, role, sql: SELECT, keys, clients, notes }));
}

async function clusterRun(ack, withReads) {
  const dir = join(workDir, `cluster-${ack}`);
  const t0 = performance.now();
  const cluster = await startCluster({ dir, overrides: { writeAck: ack }, nodeArgs: opts['node-args'] });
  try {
    const started = performance.now() - t0;
    const { ms, coordinator } = await waitForCoordinator(cluster.endpoints, CREATE, { connectTimeoutMs: 5000 }); // a test write: the coordinator accepts and commits writes
    console.log(
      `writeAck ${ack}: nodes ready in ${Math.round(started)} ms (pids ${cluster.procs.map((p) => `${p.id}:${p.pid}`).join(', ')}), ` +
        `coordinator node ${coordinator} accepting writes ${Math.round(ms)} ms later`,
    );
    const done = await clusterInserts(cluster, ack, coordinator);
    const rows = await rowsPerNode(cluster, done);
    console.log(`writeAck ${ack}: ${done} inserts acknowledged; rows per node: ${rows}`);
    if (withReads) await clusterReads(cluster, coordinator);
    memory.push([`writeAck ${ack}`, ...cluster.procs.map((p) => `${(rssMiB(p.pid) ?? NaN).toFixed(0)} MiB`)]);
  } finally {
    await cluster.stop();
  }
}

// ---------------------------------------------------------------- run

let failed = false;
try {
  const db = directInserts();
  directBatchedInserts();
  directReads(db);
  db.close();
  for (const [i, ack] of opts.acks.entries()) await clusterRun(ack, i === 0);
  // The disk's fsync latency drifts (shared virtual disks especially): measure it again.
  directInserts('direct-again.db', 'direct SQLite insert, 1 row/txn, again').close();
} catch (err) {
  failed = true;
  console.error(`bench failed: ${err.stack ?? err}`);
}

console.log('');
console.log(resultTable(results));
console.log('');
if (memory.length > 0) {
  console.log('RSS of each node process at the end of its run (VmRSS):');
  console.log(table(['cluster', 'node 1', 'node 2', 'node 3'], memory));
}
if (cpu.length > 0) {
  console.log('');
  console.log(`CPU seconds used during each cluster insert phase (user+system, from /proc; ${cpus().length} CPUs = ${cpus().length * 100}% max):`);
  console.log(table(['cluster', 'wall s', 'node 1', 'node 2', 'node 3', 'bench', 'total busy'], cpu));
}
console.log('');
console.log(`bench process RSS at the end: ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
for (const n of notes) console.log(`note: ${n}`);
console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(`total wall time: ${((performance.now() - runStarted) / 1000).toFixed(1)} s`);
if (opts.keep) console.log(`kept ${workDir}`);
process.exit(failed ? 1 : 0);
