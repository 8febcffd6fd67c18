#!/usr/bin/env node
// Write and read throughput / latency of MariaDB used directly, side by side with a local 3-node
// replisql cluster whose nodes each run on their own MariaDB instance, in one run.
//
//   npm run build && node scripts/bench-mysql.mjs
//   node scripts/bench-mysql.mjs [--clients 16] [--ops 4000] [--reads 4000] [--serial-ops 1000]
//                                [--acks quorum,one,all] [--phase-seconds 60] [--buffer-pool 64M] [--keep true]
//
// Needs Linux, root, a `mysql` user, mariadbd and mariadb-install-db. It starts 3 independent MariaDB
// servers (scripts/bench-lib.mjs startMariaDbs, as test/mysql/mariadb-harness.ts does: one datadir
// made by mariadb-install-db, copied 3 times; own port, socket, pid file), each with
// innodb_flush_log_at_trx_commit=1: every commit is durable (redo log fsynced) before it is
// answered, as a cluster write is durable in the replisql log before it is acknowledged.
//
// Workload: `CREATE TABLE bench (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB`,
// `clients` concurrent clients, each running `INSERT INTO bench(v) VALUES (?)` one after the other
// (the id is generated), then point reads `SELECT v FROM bench WHERE id = ?`.
//
// Modes:
//  - direct MariaDB insert, N clients: instance 1, a mysql2 pool of `clients` connections, autocommit,
//    text protocol (mysql2 `query`, as the replisql engine uses), each INSERT its own transaction.
//    InnoDB's group commit may fuse concurrent commits into one redo-log fsync. Run first and again
//    at the end, because the disk's fsync latency drifts.
//  - direct MariaDB insert, 1 client: `serial-ops` INSERTs on one connection, one after the other: the
//    latency of one durable commit with nothing to group it with.
//  - direct MariaDB insert, N rows/txn: the same rows, `clients` rows per transaction, one connection:
//    what perfect batching could reach on this disk.
//  - cluster insert, writeAck X: per ack level, fresh `replisql` databases on the 3 instances and a
//    fresh cluster of 3 child processes (`node bin/replisql.js node --config ... --id N`), node i on
//    instance i, demo timings (heartbeat 2 s, tick 100 ms). Timing starts once a coordinator has
//    committed the CREATE TABLE. Client c connects to node c mod 3; writes reaching a follower are
//    forwarded to the coordinator. Afterwards the script waits for every instance to hold all the
//    acknowledged rows and compares `CHECKSUM TABLE bench` on the three.
//  - point reads: direct through the pool on instance 1, and through one follower node (which
//    answers from its own MariaDB), `clients` concurrent clients each; on the first cluster only.
//
// Every node and every mariadbd is killed at the end, also on error or Ctrl-C, and the temp dir is
// removed (unless --keep true) (the bench-lib exit hook; a watchdog shell per child kills it if this
// process dies by kill -9).
import { chmodSync, mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { ReplisqlClient } from '../dist/client/client.js';
import {
  commandLine,
  cpuSeconds,
  gitInfo,
  installExitHook,
  machineInfo,
  mysqlQuery,
  nodeLogTail,
  parseArgs,
  pointReadPhase,
  positiveInt,
  readKeys,
  removeOnExit,
  resultTable,
  rssMiB,
  startCluster,
  startMariaDbs,
  stopChild,
  summarize,
  table,
  waitForCoordinator,
} from './bench-lib.mjs';

const USAGE = `usage: node scripts/bench-mysql.mjs [--clients N] [--ops TOTAL] [--reads TOTAL] [--serial-ops TOTAL]
                                [--acks quorum,one,all] [--phase-seconds S] [--buffer-pool 64M] [--keep true]`;
const ACKS = ['one', 'quorum', 'all'];
const opts = parseArgs(
  process.argv.slice(2),
  {
    clients: [16, positiveInt],
    ops: [4000, positiveInt],
    reads: [4000, positiveInt],
    'serial-ops': [1000, positiveInt],
    acks: [
      ['quorum', 'one', 'all'],
      (s) => {
        const list = s.split(',').map((x) => x.trim());
        for (const a of list) if (!ACKS.includes(a)) throw new Error(`unknown ack level "${a}"; expected ${ACKS.join(', ')}`);
        return list;
      },
    ],
    'phase-seconds': [60, positiveInt],
    'buffer-pool': [
      '64M',
      (s) => {
        if (!/^\d+[KMG]?$/.test(s)) throw new Error(`expected a size like 64M, got "${s}"`);
        return s;
      },
    ],
    keep: [false, (s) => s === 'true' || s === '1'],
  },
  USAGE,
);

const clients = opts.clients;
const perClient = Math.max(1, Math.round(opts.ops / clients));
const totalOps = perClient * clients;
const phaseMs = opts['phase-seconds'] * 1000;
const DB = 'replisql';
const DIRECT_DB = 'direct';
const VALUE = (c, i) => `value-${c}-${i}-`.padEnd(32, 'x');
const INSERT = 'INSERT INTO bench(v) VALUES (?)';
const SELECT = 'SELECT v FROM bench WHERE id = ?';
const CREATE = 'CREATE TABLE IF NOT EXISTS bench (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64) NOT NULL) ENGINE=InnoDB';

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmtRss = (pid) => (rssMiB(pid) ?? NaN).toFixed(0);

// ---------------------------------------------------------------- MariaDB instances

const connSettings = (port, database) => ({ host: '127.0.0.1', port, user: 'root', password: '', ...(database ? { database } : {}) });

async function freshDatabase(s, name) {
  await mysqlQuery(s.port, undefined, `DROP DATABASE IF EXISTS \`${name}\``, `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
}

// ---------------------------------------------------------------- bookkeeping

installExitHook(); // Ctrl-C / SIGTERM at any point: exit, killing every child and removing the temp dir
const workDir = mkdtempSync(join(tmpdir(), 'replisql-bench-mysql-'));
chmodSync(workDir, 0o755); // the mysql user must reach the datadirs
if (!opts.keep) removeOnExit(workDir);

const results = [];
const memory = [];
const cpu = [];
const checks = [];
const notes = [];
const runStarted = performance.now();
let servers = [];

function cpuSnapshot(procs) {
  return { procs: procs.map((p) => cpuSeconds(p.pid)), bench: process.cpuUsage() };
}
/** CPU seconds each of `procs` (and this process) used since `before`, as table cells. */
function cpuRow(label, procs, before, elapsedMs) {
  const used = procs.map((p, i) => (cpuSeconds(p.pid) ?? NaN) - (before.procs[i] ?? NaN));
  const b = process.cpuUsage(before.bench);
  const benchCpu = (b.user + b.system) / 1e6;
  const busy = used.reduce((x, y) => x + y, 0) + benchCpu;
  return [label, (elapsedMs / 1000).toFixed(2), ...used.map((v) => v.toFixed(2)), benchCpu.toFixed(2), `${Math.round((busy / (elapsedMs / 1000)) * 100)}%`];
}

const STATUS_VARS = ['Questions', 'Com_commit', 'Innodb_log_writes', 'Innodb_data_fsyncs'];
const dbCounters = [];

/** Global status counters of every instance (SHOW GLOBAL STATUS; the query itself counts as 1 question). */
async function dbStatus() {
  return Promise.all(
    servers.map(async (s) => {
      const rows = await mysqlQuery(s.port, undefined, `SHOW GLOBAL STATUS WHERE Variable_name IN (${STATUS_VARS.map((v) => `'${v}'`).join(', ')})`);
      return Object.fromEntries(rows.map((r) => [r.Variable_name, Number(r.Value)]));
    }),
  );
}

/** Rows of the counters table: what each instance did during a phase of `rows` inserts. */
function pushCounters(label, before, after, rows, onlyFirst = false) {
  after.forEach((a, i) => {
    if (onlyFirst && i > 0) return;
    const d = (v) => a[v] - before[i][v] - (v === 'Questions' ? 1 : 0);
    dbCounters.push([
      label,
      `mariadbd ${i + 1}`,
      d('Questions'),
      (d('Questions') / rows).toFixed(2),
      d('Com_commit'),
      d('Innodb_log_writes'),
      d('Innodb_data_fsyncs'),
      d('Innodb_data_fsyncs') > 0 ? (rows / d('Innodb_data_fsyncs')).toFixed(1) : '-',
    ]);
  });
}

// ---------------------------------------------------------------- direct MariaDB

/** `clients` concurrent pool clients, each running `perClient` autocommit INSERTs. */
async function directInserts(label) {
  const s = servers[0];
  await freshDatabase(s, DIRECT_DB);
  await mysqlQuery(s.port, DIRECT_DB, CREATE);
  const pool = mysql.createPool({ ...connSettings(s.port, DIRECT_DB), connectionLimit: clients, maxIdle: clients });
  try {
    const conns = await Promise.all(Array.from({ length: clients }, () => pool.getConnection())); // open all N before timing
    conns.forEach((c) => c.release());
    const lat = [];
    const statusBefore = await dbStatus();
    const before = cpuSnapshot(servers);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let i = 0; i < perClient; i++) {
          const st = performance.now();
          await pool.query(INSERT, [VALUE(c, i)]); // autocommit: one transaction, one durable commit
          lat.push(performance.now() - st);
        }
      }),
    );
    const elapsed = performance.now() - t0;
    cpu.push(cpuRow(label, servers, before, elapsed));
    pushCounters(label, statusBefore, await dbStatus(), lat.length, true);
    results.push(summarize(label, lat, elapsed, `instance 1, pool of ${plural(clients, 'connection')}, autocommit`));
    return pool;
  } catch (err) {
    await pool.end();
    throw err;
  }
}

async function directSerialInserts() {
  const s = servers[0];
  const c = await mysql.createConnection(connSettings(s.port, DIRECT_DB));
  try {
    await c.query('CREATE TABLE bench_serial LIKE bench');
    const lat = [];
    const t0 = performance.now();
    for (let i = 0; i < opts['serial-ops']; i++) {
      const st = performance.now();
      await c.query('INSERT INTO bench_serial(v) VALUES (?)', [VALUE(0, i)]);
      lat.push(performance.now() - st);
    }
    results.push(summarize('direct MariaDB insert, 1 client', lat, performance.now() - t0, 'instance 1, 1 connection, autocommit'));
  } finally {
    await c.end();
  }
}

async function directBatchedInserts() {
  const s = servers[0];
  const c = await mysql.createConnection(connSettings(s.port, DIRECT_DB));
  try {
    await c.query('CREATE TABLE bench_batched LIKE bench');
    const lat = [];
    const t0 = performance.now();
    for (let i = 0; i < perClient; i++) {
      const st = performance.now();
      await c.query('START TRANSACTION');
      for (let k = 0; k < clients; k++) await c.query('INSERT INTO bench_batched(v) VALUES (?)', [VALUE(k, i)]);
      await c.query('COMMIT');
      const ms = performance.now() - st;
      for (let k = 0; k < clients; k++) lat.push(ms); // every row of the transaction waits for its commit
    }
    results.push(summarize(`direct MariaDB insert, ${plural(clients, 'row')}/txn`, lat, performance.now() - t0, 'batching ceiling, 1 connection'));
  } finally {
    await c.end();
  }
}

async function directReads(pool) {
  const [[{ n }]] = await pool.query('SELECT COUNT(*) AS n FROM bench');
  const keys = readKeys(opts.reads, Number(n));
  const lat = [];
  let missing = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < keys.length) {
        const k = keys[next++];
        const st = performance.now();
        const [rows] = await pool.query(SELECT, [k]);
        if (rows.length === 0) missing++;
        lat.push(performance.now() - st);
      }
    }),
  );
  results.push(summarize('direct MariaDB point read', lat, performance.now() - t0, `instance 1, ${plural(clients, 'client')}${missing ? `, ${missing} MISSING` : ''}`));
}

// ---------------------------------------------------------------- cluster on MariaDB

/** Starts 3 nodes in `dir`, node i on MariaDB instance i; resolves once every node printed "ready". */
function startMysqlCluster(dir, ack) {
  return startCluster({
    dir,
    nodes: servers.length,
    overrides: { cluster: 'bench-mysql', writeAck: ack },
    node: (n, i) => ({
      id: n.id,
      host: '127.0.0.1',
      port: n.port,
      storage: { engine: 'mysql', host: '127.0.0.1', port: servers[i].port, user: 'root', password: '', database: DB },
    }),
    startTimeoutMs: 30_000,
  });
}

async function clusterInserts(cluster, ack) {
  const eps = cluster.endpoints;
  const conns = await Promise.all(
    Array.from({ length: clients }, (_, c) => ReplisqlClient.connect([...eps.slice(c % eps.length), ...eps.slice(0, c % eps.length)], { timeoutMs: 30_000 })),
  );
  const lat = [];
  const errors = new Map();
  let stoppedEarly = false;
  const procs = [...cluster.procs, ...servers];
  const statusBefore = await dbStatus();
  const before = cpuSnapshot(procs);
  const t0 = performance.now();
  const deadline = t0 + phaseMs;
  await Promise.all(
    conns.map(async (cl, c) => {
      for (let i = 0; i < perClient; i++) {
        if (performance.now() > deadline) {
          stoppedEarly = true;
          return;
        }
        const st = performance.now();
        try {
          await cl.query(INSERT, [VALUE(c, i)]);
          lat.push(performance.now() - st);
        } catch (err) {
          const key = `${err.code ?? 'error'}: ${err.message}`;
          errors.set(key, (errors.get(key) ?? 0) + 1);
        }
      }
    }),
  );
  const elapsed = performance.now() - t0;
  cpu.push(cpuRow(`cluster writeAck ${ack}`, procs, before, elapsed));
  pushCounters(`cluster writeAck ${ack}`, statusBefore, await dbStatus(), lat.length);
  await Promise.all(conns.map((cl) => cl.close()));
  const errCount = [...errors.values()].reduce((a, b) => a + b, 0);
  const note = [`${plural(clients, 'client')} over ${eps.length} nodes`, stoppedEarly ? `STOPPED at the ${opts['phase-seconds']} s limit` : '', errCount > 0 ? `${errCount} ERRORS` : '']
    .filter((x) => x !== '')
    .join(', ');
  for (const [e, n] of errors) notes.push(`writeAck ${ack}: ${n} x ${e}`);
  results.push(summarize(`cluster insert, writeAck ${ack}`, lat, elapsed, note));
  return lat.length;
}

/**
 * Waits (up to `waitMs`) until every instance's `bench` holds `expected` rows, then compares
 * CHECKSUM TABLE on the three. Reads the MariaDB servers directly, not through the nodes.
 */
async function checkInstances(ack, expected, waitMs = 60_000) {
  const t0 = performance.now();
  const counts = [];
  const sums = [];
  for (const s of servers) {
    let n = -1;
    for (;;) {
      const [{ c }] = await mysqlQuery(s.port, DB, 'SELECT COUNT(*) AS c FROM bench');
      n = Number(c);
      if (n >= expected || performance.now() - t0 > waitMs) break;
      await sleep(100);
    }
    counts.push(n);
    const [{ Checksum }] = await mysqlQuery(s.port, DB, 'CHECKSUM TABLE bench');
    sums.push(String(Checksum));
  }
  const caughtUpMs = performance.now() - t0;
  const same = sums.every((x) => x === sums[0]);
  checks.push([
    `writeAck ${ack}`,
    expected,
    counts.join(' / '),
    same ? `identical (${sums[0]})` : `DIFFERENT: ${sums.join(' / ')}`,
    `${(caughtUpMs / 1000).toFixed(1)} s`,
  ]);
  if (!same || counts.some((n) => n < expected)) notes.push(`writeAck ${ack}: instances disagree or miss rows: counts ${counts.join('/')}, checksums ${sums.join('/')}`);
}

async function clusterReads(cluster, coordinator) {
  const p = cluster.procs.find((x) => x.id !== coordinator) ?? cluster.procs[0];
  const role = p.id === coordinator ? 'coordinator' : 'follower';
  const [{ n }] = await mysqlQuery(servers[p.id - 1].port, DB, 'SELECT COUNT(*) AS n FROM bench');
  const keys = readKeys(opts.reads, Number(n));
  results.push(await pointReadPhase({ endpoint: p.endpoint, nodeId: p.id, role, sql: SELECT, keys, clients, notes }));
}

async function clusterRun(ack, withReads) {
  await Promise.all(servers.map((s) => freshDatabase(s, DB)));
  const dir = join(workDir, `cluster-${ack}`);
  const t0 = performance.now();
  const cluster = await startMysqlCluster(dir, ack);
  try {
    const started = performance.now() - t0;
    const { ms, coordinator } = await waitForCoordinator(cluster.endpoints, CREATE); // a test write: the coordinator accepts and commits writes
    console.log(
      `writeAck ${ack}: nodes ready in ${Math.round(started)} ms (pids ${cluster.procs.map((p) => `${p.id}:${p.pid}`).join(', ')}), ` +
        `coordinator node ${coordinator} accepting writes ${Math.round(ms)} ms later`,
    );
    const done = await clusterInserts(cluster, ack);
    cpu[cpu.length - 1][0] += ` (coord. node ${coordinator})`;
    await checkInstances(ack, done);
    console.log(`writeAck ${ack}: ${done} inserts acknowledged; ${checks[checks.length - 1].slice(2).join('; ')}`);
    if (withReads) await clusterReads(cluster, coordinator);
    memory.push([`cluster writeAck ${ack}`, ...cluster.procs.map((p) => fmtRss(p.pid)), ...servers.map((s) => fmtRss(s.pid))]);
  } catch (err) {
    for (const p of cluster.procs) {
      notes.push(`node ${p.id} (${p.child.exitCode !== null || p.child.signalCode !== null ? 'exited' : 'running'}), last lines of logs/node${p.id}.log:\n  ${nodeLogTail(dir, p.id, 20)}`);
    }
    throw err;
  } finally {
    await cluster.stop();
  }
}

// ---------------------------------------------------------------- run

console.log(`command: ${commandLine()}`);
console.log(machineInfo());
console.log(gitInfo());
console.log(
  `workload: ${clients} clients x ${perClient} INSERTs = ${totalOps} rows ("${INSERT}", AUTO_INCREMENT id, v = 32 chars); ${opts.reads} point reads; ` +
    `acks ${opts.acks.join(',')}; temp dir ${workDir}`,
);

let failed = false;
try {
  const t0 = performance.now();
  servers = await startMariaDbs({ workDir, count: 3, bufferPool: opts['buffer-pool'], maxConnections: 100 });
  console.log(`MariaDB: ${servers.length} servers up ${((performance.now() - t0) / 1000).toFixed(1)} s after mariadb-install-db started (pids ${servers.map((s) => `${s.id}:${s.pid}`).join(', ')}; ports ${servers.map((s) => s.port).join(', ')})`);
  const [v] = await mysqlQuery(
    servers[0].port,
    undefined,
    'SELECT @@version AS version, @@innodb_flush_log_at_trx_commit AS flush_at_commit, @@innodb_flush_method AS flush_method, @@innodb_doublewrite AS doublewrite, ' +
      '@@log_bin AS log_bin, @@innodb_buffer_pool_size AS pool, @@innodb_log_file_size AS redo, @@innodb_autoinc_lock_mode AS autoinc, @@tx_isolation AS iso',
  );
  console.log(
    `MariaDB ${v.version}: innodb_flush_log_at_trx_commit=${v.flush_at_commit}, innodb_flush_method=${v.flush_method}, innodb_doublewrite=${v.doublewrite}, ` +
      `log_bin=${v.log_bin}, buffer pool ${Number(v.pool) / 2 ** 20} MiB, redo log ${Number(v.redo) / 2 ** 20} MiB, innodb_autoinc_lock_mode=${v.autoinc}, ${v.iso}`,
  );
  console.log('');

  const pool = await directInserts(`direct MariaDB insert, ${plural(clients, 'client')}`);
  try {
    await directReads(pool);
  } finally {
    await pool.end();
  }
  await directSerialInserts();
  await directBatchedInserts();
  await mysqlQuery(servers[0].port, undefined, `DROP DATABASE IF EXISTS \`${DIRECT_DB}\``);
  memory.push(['after the direct phases', '-', '-', '-', ...servers.map((s) => fmtRss(s.pid))]);

  for (const [i, ack] of opts.acks.entries()) await clusterRun(ack, i === 0);

  // The disk's fsync latency drifts: measure the direct baseline again.
  const again = await directInserts(`direct MariaDB insert, ${plural(clients, 'client')}, again`);
  await again.end();
  await mysqlQuery(servers[0].port, undefined, `DROP DATABASE IF EXISTS \`${DIRECT_DB}\``);
} catch (err) {
  failed = true;
  console.error(`bench failed: ${err.stack ?? err}`);
}

const mariadbRss = servers.map((s) => fmtRss(s.pid));
await Promise.all(servers.map((s) => stopChild(s.child, 20_000)));

console.log('');
console.log(resultTable(results));
if (memory.length > 0) {
  console.log('');
  console.log('RSS in MiB (VmRSS) of each node at the end of its cluster run, and of each mariadbd at that moment:');
  console.log(table(['when', 'node 1', 'node 2', 'node 3', 'mariadbd 1', 'mariadbd 2', 'mariadbd 3'], memory));
  console.log(`mariadbd RSS at the end, before shutdown: ${mariadbRss.join(', ')} MiB`);
}
if (checks.length > 0) {
  console.log('');
  console.log('Replicas after each cluster run (read from the MariaDB servers directly):');
  console.log(table(['cluster', 'acked rows', 'rows on instance 1 / 2 / 3', 'CHECKSUM TABLE bench', 'all rows present after'], checks));
}
if (cpu.length > 0) {
  console.log('');
  console.log(`CPU seconds used during each insert phase (user+system, from /proc; ${cpus().length} CPUs = ${cpus().length * 100}% max):`);
  const direct = cpu.filter((r) => r.length === 7).map((r) => [r[0], r[1], '-', '-', '-', ...r.slice(2)]);
  const cluster = cpu.filter((r) => r.length === 10);
  console.log(table(['phase', 'wall s', 'node 1', 'node 2', 'node 3', 'mariadbd 1', 'mariadbd 2', 'mariadbd 3', 'bench', 'total busy'], [...direct, ...cluster]));
}
if (dbCounters.length > 0) {
  console.log('');
  console.log(
    'What each MariaDB instance did during each insert phase (SHOW GLOBAL STATUS deltas; a follower may still be applying when the phase ends, ' +
      'and InnoDB background work counts too):',
  );
  console.log(table(['phase', 'instance', 'statements', 'per row', 'Com_commit', 'Innodb_log_writes', 'Innodb_data_fsyncs', 'rows per fsync'], dbCounters));
}
console.log('');
console.log(`bench process RSS at the end: ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
for (const n of notes) console.log(`note: ${n}`);
console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(`total wall time: ${((performance.now() - runStarted) / 1000).toFixed(1)} s`);
if (opts.keep) console.log(`kept ${workDir}`);
process.exit(failed ? 1 : 0);
