#!/usr/bin/env node
// sysbench OLTP workloads against MariaDB used directly, and against a local 3-node replisql cluster
// through its MySQL protocol front ends, in one run.
//
//   npm run build && node scripts/bench-sysbench.mjs
//   node scripts/bench-sysbench.mjs [--time 20] [--threads 8] [--tables 4] [--table-size 10000]
//        [--write-ack quorum] [--only direct|cluster] [--workloads oltp_point_select,oltp_insert,oltp_read_write]
//        [--warmup 5] [--buffer-pool 128M] [--db-socket on|off] [--cpu-prof DIR] [--keep true]
//
// Needs Linux, root, a `mysql` user, mariadbd, mariadb-install-db and sysbench (1.0.x). It starts 3
// independent MariaDB servers with identical settings (scripts/bench-lib.mjs startMariaDbs: one datadir
// made by mariadb-install-db, copied 3 times, own port/socket/pid file, run as mysql;
// innodb_flush_log_at_trx_commit=1, no binary log, --buffer-pool per server).
//
//  - direct: sysbench against server 1 (database sbdirect): `oltp_common prepare`, then for each
//    workload a warm-up run of --warmup seconds (not measured) and a measured run of --time seconds,
//    --threads threads, sysbench's default prepared-statement mode; then `cleanup`.
//  - cluster: 3 node processes (`node bin/replisql.js node --config ... --id N`), node i on server i
//    (database sbtest), each with a mysqlPort, mysqlUsers [{ root, "" }], writeAck --write-ack, the demo
//    timings; a node reaches its server through the server's Unix socket (storage.socketPath), as a
//    node on the database's machine would, or over TCP with --db-socket off. sysbench connects with --mysql-host=127.0.0.1 --mysql-port=p1,p2,p3 (its threads are
//    spread over the three front ends). Prepare through the cluster, the same warm-up and measured
//    runs, then the script waits until every node has applied the whole log and compares CHECKSUM
//    TABLE of every sbtest table on the three servers (read directly), then `cleanup` through the
//    cluster.
//
// For each measured run it records sysbench's tps, qps and p95 latency, and the CPU seconds of every
// node, every mariadbd, sysbench itself (cutime of this process around the run) and this process;
// and the RSS of the nodes and the servers at the end of the run.
//
// --cpu-prof DIR: the nodes run with `node --cpu-prof --cpu-prof-dir=DIR/<phase>`, and the cluster is
// restarted for every phase (prepare, then each workload), so each profile covers one phase (its
// warm-up included). The nodes are stopped with SIGTERM, which `runNode` handles by closing the runtime,
// so node writes the profile; after the run the script prints the top self-time functions per node.
// The checksum check and cleanup then run on a fresh cluster without profiling.
//
// Every process (nodes, mariadbd, sysbench) is killed and the temp dir removed at the end, also on an
// error or Ctrl-C (the bench-lib exit hook; a watchdog shell per child if this process is kill -9ed).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ReplisqlClient } from '../dist/client/client.js';
import {
  commandLine,
  cpuProfilesOf,
  gitInfo,
  installExitHook,
  keepOnExit,
  machineInfo,
  mysqlQuery,
  nodeLogTail,
  nonNegativeInt,
  parseArgs,
  positiveInt,
  cpuTimes,
  reapedChildrenCpuTimes,
  removeOnExit,
  rssMiB,
  spawnTracked,
  startMariaDbs,
  startNodes,
  stopChild,
  stopCluster,
  summarizeCpuProfile,
  table,
  waitForCoordinator,
  writeClusterConfig,
} from './bench-lib.mjs';

const USAGE = `usage: node scripts/bench-sysbench.mjs [--time 20] [--threads 8] [--tables 4] [--table-size 10000]
       [--write-ack quorum|one|all] [--only direct|cluster] [--workloads oltp_point_select,oltp_insert,oltp_read_write]
       [--warmup 5] [--buffer-pool 128M] [--db-socket on|off] [--cpu-prof DIR] [--keep true]`;
const WORKLOADS = ['oltp_point_select', 'oltp_insert', 'oltp_read_write', 'oltp_read_only', 'oltp_write_only', 'oltp_update_index', 'oltp_update_non_index', 'oltp_delete'];
const opts = parseArgs(
  process.argv.slice(2),
  {
    time: [20, positiveInt],
    threads: [8, positiveInt],
    tables: [4, positiveInt],
    'table-size': [10000, positiveInt],
    'write-ack': [
      'quorum',
      (s) => {
        if (!['one', 'quorum', 'all'].includes(s)) throw new Error(`expected one, quorum or all, got "${s}"`);
        return s;
      },
    ],
    only: [
      null,
      (s) => {
        if (s !== 'direct' && s !== 'cluster') throw new Error(`expected direct or cluster, got "${s}"`);
        return s;
      },
    ],
    workloads: [
      ['oltp_point_select', 'oltp_insert', 'oltp_read_write'],
      (s) => {
        const list = s.split(',').map((x) => x.trim()).filter((x) => x !== '');
        for (const w of list) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload "${w}"; expected some of ${WORKLOADS.join(', ')}`);
        if (list.length === 0) throw new Error('expected at least one workload');
        return list;
      },
    ],
    warmup: [5, nonNegativeInt],
    'buffer-pool': [
      '128M',
      (s) => {
        if (!/^\d+[KMG]?$/.test(s)) throw new Error(`expected a size like 128M, got "${s}"`);
        return s;
      },
    ],
    'cpu-prof': [null, (s) => resolve(s)],
    'db-socket': [
      true,
      (s) => {
        if (!['on', 'off', 'true', 'false'].includes(s)) throw new Error(`expected on or off, got "${s}"`);
        return s === 'on' || s === 'true';
      },
    ],
    keep: [false, (s) => s === 'true' || s === '1'],
  },
  USAGE,
);

const DIRECT_DB = 'sbdirect';
const CLUSTER_DB = 'sbtest';
const SYSBENCH = (() => {
  const r = spawnSync('sh', ['-c', 'command -v sysbench'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : null;
})();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (v, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : '-');
const fmtRss = (pid) => (pid === undefined ? '-' : fmt(rssMiB(pid) ?? NaN, 0));
const tableNames = Array.from({ length: opts.tables }, (_, i) => `sbtest${i + 1}`);

// ---------------------------------------------------------------- bookkeeping

installExitHook();
const workDir = mkdtempSync(join(tmpdir(), 'replisql-bench-sysbench-'));
chmodSync(workDir, 0o755); // the mysql user must reach the datadirs
if (!opts.keep) removeOnExit(workDir);

const runStarted = performance.now();
/** mode -> workload -> { tps, qps, p95, ..., note } */
const results = { direct: new Map(), cluster: new Map() };
const prepares = []; // [mode, seconds, note]
const cpuRows = [];
const splitRows = [];
const dbRows = [];
const rssRows = [];
const checks = [];
const notes = [];
const profilePhases = []; // { phase, dir, nodes: [{ id, pid, role, cleanExit }] }
const sysbenchCommands = new Map(); // mode -> example command line
let servers = [];

// ---------------------------------------------------------------- sysbench

function sysbenchArgs(testname, command, { ports, db, threads, time }) {
  return [
    testname,
    '--db-driver=mysql',
    '--mysql-host=127.0.0.1',
    `--mysql-port=${ports.join(',')}`,
    '--mysql-user=root',
    '--mysql-password=',
    `--mysql-db=${db}`,
    '--mysql-ssl=off',
    `--tables=${opts.tables}`,
    `--table-size=${opts['table-size']}`,
    `--threads=${threads}`,
    ...(time !== undefined ? [`--time=${time}`, '--events=0', '--percentile=95', '--report-interval=0'] : []),
    command,
  ];
}

/** Runs sysbench to completion (SIGKILL after `limitMs`); resolves with its output and exit status. */
function runSysbench(args, limitMs) {
  return new Promise((res) => {
    const t0 = performance.now();
    const child = spawnTracked(SYSBENCH, args, { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d.toString()));
    child.stderr.on('data', (d) => (stderr = (stderr + d.toString()).slice(-20_000)));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, limitMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, timedOut, stdout, stderr, ms: performance.now() - t0, pid: child.pid });
    });
  });
}

function failureText(r) {
  const why = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
  const tail = (r.stderr + r.stdout).trim().split('\n').filter((l) => /FATAL|error|Error|ERROR/.test(l)).slice(-4).join(' | ');
  return `${why}${tail ? `: ${tail}` : ''}`;
}

function parseSysbench(out) {
  const num = (re) => {
    const m = re.exec(out);
    return m === null ? NaN : Number(m[1]);
  };
  return {
    transactions: num(/transactions:\s+(\d+)/),
    tps: num(/transactions:\s+\d+\s+\(([\d.]+) per sec/),
    qps: num(/queries:\s+\d+\s+\(([\d.]+) per sec/),
    reads: num(/read:\s+(\d+)/),
    writes: num(/write:\s+(\d+)/),
    errors: num(/ignored errors:\s+(\d+)/),
    reconnects: num(/reconnects:\s+(\d+)/),
    seconds: num(/total time:\s+([\d.]+)s/),
    avg: num(/avg:\s+([\d.]+)/),
    p95: num(/95th percentile:\s+([\d.]+)/),
    max: num(/max:\s+([\d.]+)/),
  };
}

const STATUS_VARS = ['Questions', 'Com_commit', 'Innodb_data_fsyncs'];

/** Global status counters of every server (SHOW GLOBAL STATUS). */
async function dbStatus() {
  return Promise.all(
    servers.map(async (s) => {
      const rows = await mysqlQuery(s.port, undefined, `SHOW GLOBAL STATUS WHERE Variable_name IN (${STATUS_VARS.map((v) => `'${v}'`).join(', ')})`);
      return Object.fromEntries(rows.map((r) => [r.Variable_name, Number(r.Value)]));
    }),
  );
}

/**
 * The whole machine's CPU time in seconds (/proc/stat, USER_HZ 100): time in processes (user, nice,
 * system), in interrupts (irq + softirq: loopback network and disk completions, charged to no
 * process), stolen by the hypervisor, and idle (+ iowait).
 */
function machineCpu() {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map((x) => Number(x) / 100);
  return { procs: user + nice + system, irq: irq + softirq, steal, idle: idle + iowait };
}

/** prepare / cleanup (not measured, except for its wall time). */
async function sysbenchAdmin(command, target) {
  const threads = command === 'prepare' ? Math.min(opts.threads, opts.tables) : 1;
  const r = await runSysbench(sysbenchArgs('oltp_common', command, { ...target, threads }), 15 * 60_000);
  if (r.code !== 0) throw new Error(`sysbench ${command} (${target.mode}) failed, ${failureText(r)}`);
  return r;
}

/**
 * One workload: an unmeasured warm-up run, then the measured run. CPU seconds of `procs` (nodes and
 * servers, [{ label, pid }]), of sysbench (reaped-children time of this process) and of this process
 * are taken around the measured run.
 */
async function runWorkload(mode, workload, target, procs) {
  if (opts.warmup > 0) {
    const w = await runSysbench(sysbenchArgs(workload, 'run', { ...target, threads: opts.threads, time: opts.warmup }), opts.warmup * 1000 + 120_000);
    if (w.code !== 0) notes.push(`${mode} ${workload}: warm-up failed, ${failureText(w)}`);
  }
  const args = sysbenchArgs(workload, 'run', { ...target, threads: opts.threads, time: opts.time });
  if (!sysbenchCommands.has(mode)) sysbenchCommands.set(mode, `sysbench ${args.join(' ')}`);
  const statusBefore = await dbStatus();
  const machineBefore = machineCpu();
  const before = procs.map((p) => cpuTimes(p.pid));
  const childrenBefore = reapedChildrenCpuTimes();
  const selfBefore = process.cpuUsage();
  const t0 = performance.now();
  const r = await runSysbench(args, opts.time * 1000 + 120_000);
  const wallS = (performance.now() - t0) / 1000;
  const parsed = parseSysbench(r.stdout);
  const after = procs.map((p) => cpuTimes(p.pid));
  const machineAfter = machineCpu();
  const statusAfter = await dbStatus();
  statusAfter.forEach((a, i) => {
    if (mode === 'direct' && i > 0) return;
    const d = (v) => a[v] - statusBefore[i][v] - (v === 'Questions' ? 1 : 0); // SHOW GLOBAL STATUS is a question too
    const per = (v) => (parsed.transactions > 0 ? fmt(d(v) / parsed.transactions, 2) : '-');
    dbRows.push([mode, workload, `mariadbd ${i + 1}`, d('Questions'), per('Questions'), d('Com_commit'), per('Com_commit'), d('Innodb_data_fsyncs'), per('Innodb_data_fsyncs')]);
  });
  const delta = (a, b) => (a === null || b === null ? { user: NaN, sys: NaN } : { user: a.user - b.user, sys: a.sys - b.sys });
  const split = procs.map((_, i) => delta(after[i], before[i]));
  const used = split.map((d) => d.user + d.sys);
  const sb = delta(reapedChildrenCpuTimes(), childrenBefore);
  const sysbenchCpu = sb.user + sb.sys;
  const self = process.cpuUsage(selfBefore);
  const selfCpu = (self.user + self.system) / 1e6;
  const group = (prefix) => split.filter((_, i) => procs[i].label.startsWith(prefix)).reduce((a, d) => ({ user: a.user + d.user, sys: a.sys + d.sys }), { user: 0, sys: 0 });
  const sysShare = (d) => (d.user + d.sys > 0 ? `${fmt(d.user + d.sys)} (${Math.round((d.sys / (d.user + d.sys)) * 100)}% sys)` : '-');
  const nodesCpu = group('node ');
  const serversCpu = group('mariadbd ');
  const allCpu = nodesCpu.user + nodesCpu.sys + serversCpu.user + serversCpu.sys + sysbenchCpu + selfCpu;
  const pctOfAll = (x) => `${Math.round((x / allCpu) * 100)}%`;
  splitRows.push([
    mode,
    workload,
    nodesCpu.user + nodesCpu.sys > 0 ? `${sysShare(nodesCpu)}, ${pctOfAll(nodesCpu.user + nodesCpu.sys)}` : '-',
    `${sysShare(serversCpu)}, ${pctOfAll(serversCpu.user + serversCpu.sys)}`,
    `${sysShare(sb)}, ${pctOfAll(sysbenchCpu)}`,
    parsed.transactions > 0 ? fmt((allCpu * 1e6) / parsed.transactions, 0) : '-',
  ]);
  const ok = r.code === 0 && Number.isFinite(parsed.tps);
  const res = { ...parsed, ok, note: ok ? '' : `FAILED: ${failureText(r)}` };
  if (ok && parsed.errors > 0) res.note = `${parsed.errors} ignored errors`;
  results[mode].set(workload, res);
  const cell = (label) => {
    const i = procs.findIndex((p) => p.label === label);
    return i < 0 ? '-' : fmt(used[i]);
  };
  const busy = used.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0) + sysbenchCpu + selfCpu;
  cpuRows.push([
    mode,
    workload,
    fmt(wallS),
    cell('node 1'),
    cell('node 2'),
    cell('node 3'),
    cell('mariadbd 1'),
    cell('mariadbd 2'),
    cell('mariadbd 3'),
    fmt(sysbenchCpu),
    fmt(selfCpu),
    `${Math.round((busy / wallS) * 100)}%`,
    ...['procs', 'irq', 'steal', 'idle'].map((k) => {
      const pct = ((machineAfter[k] - machineBefore[k]) / wallS) * 100;
      return `${Math.max(0, Math.round(k === 'procs' ? pct - (busy / wallS) * 100 : pct))}%`; // other processes = all processes - these (tick rounding can make it slightly negative)
    }),
  ]);
  const pidOf = (label) => procs.find((p) => p.label === label)?.pid;
  rssRows.push([mode, workload, ...['node 1', 'node 2', 'node 3', 'mariadbd 1', 'mariadbd 2', 'mariadbd 3'].map((l) => fmtRss(pidOf(l)))]);
  console.log(
    `${mode} ${workload}: ${ok ? `${fmt(parsed.tps, 1)} tps, ${fmt(parsed.qps, 1)} qps, p95 ${fmt(parsed.p95)} ms, ${parsed.errors} ignored errors, ${parsed.reconnects} reconnects` : res.note}`,
  );
}

// ---------------------------------------------------------------- direct

async function runDirect() {
  const s = servers[0];
  await mysqlQuery(s.port, undefined, `DROP DATABASE IF EXISTS \`${DIRECT_DB}\``, `CREATE DATABASE \`${DIRECT_DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
  const target = { mode: 'direct', ports: [s.port], db: DIRECT_DB };
  const p = await sysbenchAdmin('prepare', target);
  prepares.push(['direct (server 1)', fmt(p.ms / 1000, 1)]);
  console.log(`direct: prepared ${opts.tables} x ${opts['table-size']} rows in ${fmt(p.ms / 1000, 1)} s`);
  const procs = servers.map((x) => ({ label: `mariadbd ${x.id}`, pid: x.pid }));
  for (const w of opts.workloads) await runWorkload('direct', w, target, procs);
  await sysbenchAdmin('cleanup', target);
  await mysqlQuery(s.port, undefined, `DROP DATABASE IF EXISTS \`${DIRECT_DB}\``);
}

// ---------------------------------------------------------------- cluster

let clusterConfig = null; // { configPath, config } from writeClusterConfig

async function writeSysbenchClusterConfig() {
  clusterConfig = await writeClusterConfig({
    dir: join(workDir, 'cluster'),
    nodes: servers.length,
    overrides: { cluster: 'bench-sysbench', writeAck: opts['write-ack'], mysqlUsers: [{ user: 'root', password: '' }] },
    portsPerNode: 2,
    node: (n, i, [mysqlPort]) => ({
      id: n.id,
      host: '127.0.0.1',
      port: n.port,
      mysqlPort,
      storage: {
        engine: 'mysql',
        host: '127.0.0.1',
        port: servers[i].port,
        ...(opts['db-socket'] ? { socketPath: join(servers[i].dir, 'mysqld.sock') } : {}),
        user: 'root',
        password: '',
        database: CLUSTER_DB,
      },
    }),
  });
}

/** Starts the 3 nodes (with `nodeArgs`); resolves once each printed "ready". */
function startSysbenchNodes(nodeArgs) {
  return startNodes({ dir: join(workDir, 'cluster'), ...clusterConfig, nodeArgs, startTimeoutMs: 30_000 });
}

/** Waits until every node has applied the same last log index; resolves with the statuses. */
async function waitCaughtUp(cluster, timeoutMs = 180_000) {
  const t0 = performance.now();
  const clients = await Promise.all(cluster.endpoints.map((ep) => ReplisqlClient.connect([ep], { timeoutMs: 10_000 })));
  try {
    let statuses = [];
    while (performance.now() - t0 < timeoutMs) {
      statuses = await Promise.all(clients.map((c) => c.status()));
      const last = Math.max(...statuses.map((s) => s.lastIndex));
      if (statuses.every((s) => s.lastIndex === last && s.appliedIndex === last)) return { statuses, ms: performance.now() - t0 };
      await sleep(200);
    }
    throw new Error(`the nodes did not catch up within ${timeoutMs} ms: ${statuses.map((s) => `node ${s.nodeId} applied ${s.appliedIndex}/${s.lastIndex}`).join(', ')}`);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

/** CHECKSUM TABLE and COUNT(*) of every sbtest table on the three servers, read directly. */
async function checksumTables() {
  const per = await Promise.all(
    servers.map(async (s) => {
      const sums = await mysqlQuery(s.port, CLUSTER_DB, `CHECKSUM TABLE ${tableNames.join(', ')}`);
      const counts = await mysqlQuery(s.port, CLUSTER_DB, tableNames.map((t) => `SELECT '${t}' AS t, COUNT(*) AS n FROM ${t}`).join(' UNION ALL '));
      return {
        sums: new Map(sums.map((r) => [String(r.Table).replace(/^.*\./, ''), String(r.Checksum)])),
        counts: new Map(counts.map((r) => [r.t, Number(r.n)])),
      };
    }),
  );
  let allSame = true;
  for (const t of tableNames) {
    const sums = per.map((p) => p.sums.get(t));
    const same = sums.every((x) => x === sums[0] && x !== undefined && x !== 'null');
    allSame &&= same;
    checks.push([t, per.map((p) => p.counts.get(t)).join(' / '), sums.join(' / '), same ? 'identical' : 'DIFFERENT']);
  }
  return allSame;
}

async function withCluster(phase, profile, body) {
  const profDir = profile ? join(opts['cpu-prof'], phase) : null;
  if (profDir !== null) mkdirSync(profDir, { recursive: true });
  const t0 = performance.now();
  const cluster = await startSysbenchNodes(profDir !== null ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []);
  let coordinator = null;
  try {
    const started = performance.now() - t0;
    // A test write: the coordinator accepts and commits writes (a no-op after the first start).
    const c = await waitForCoordinator(cluster.endpoints, 'CREATE TABLE IF NOT EXISTS bench_ready (id INT NOT NULL PRIMARY KEY) ENGINE=InnoDB');
    coordinator = c.coordinator;
    console.log(
      `cluster (${phase}): nodes ready in ${Math.round(started)} ms (pids ${cluster.procs.map((p) => `${p.id}:${p.pid}`).join(', ')}; ` +
        `MySQL ports ${cluster.mysqlPorts.join(', ')}), coordinator node ${coordinator} accepting writes ${Math.round(c.ms)} ms later`,
    );
    await body(cluster, coordinator);
  } catch (err) {
    for (const p of cluster.procs) notes.push(`node ${p.id} (${p.child.exitCode !== null || p.child.signalCode !== null ? 'exited' : 'running'}), last lines of logs/node${p.id}.log:\n  ${nodeLogTail(join(workDir, 'cluster'), p.id, 15)}`);
    throw err;
  } finally {
    const cpuAtStop = cluster.procs.map((p) => cpuTimes(p.pid)); // whole lifetime, what the profile covers
    const killed = await stopCluster(cluster.procs, 20_000);
    if (killed.length > 0) notes.push(`cluster (${phase}): node(s) ${killed.join(', ')} did not exit within 20 s of SIGTERM and were killed${profDir ? ' (no profile)' : ''}`);
    if (profDir !== null) {
      profilePhases.push({
        phase,
        dir: profDir,
        nodes: cluster.procs.map((p, i) => ({ id: p.id, pid: p.pid, role: p.id === coordinator ? 'coordinator' : 'follower', cleanExit: !killed.includes(p.id), cpu: cpuAtStop[i] })),
      });
    }
  }
}

async function runCluster() {
  for (const s of servers) {
    await mysqlQuery(s.port, undefined, `DROP DATABASE IF EXISTS \`${CLUSTER_DB}\``, `CREATE DATABASE \`${CLUSTER_DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
  }
  await writeSysbenchClusterConfig();
  const profile = opts['cpu-prof'] !== null;
  const serverProcs = servers.map((x) => ({ label: `mariadbd ${x.id}`, pid: x.pid }));
  const target = (cluster) => ({ mode: 'cluster', ports: cluster.mysqlPorts, db: CLUSTER_DB });
  const prepare = async (cluster) => {
    const p = await sysbenchAdmin('prepare', target(cluster));
    prepares.push([`cluster (writeAck ${opts['write-ack']})`, fmt(p.ms / 1000, 1)]);
    console.log(`cluster: prepared ${opts.tables} x ${opts['table-size']} rows through the cluster in ${fmt(p.ms / 1000, 1)} s`);
  };
  const workload = (w) => async (cluster, coordinator) => {
    await runWorkload('cluster', w, target(cluster), [...cluster.procs, ...serverProcs]);
    cpuRows[cpuRows.length - 1][1] += ` (coord. ${coordinator})`;
  };
  const finish = async (cluster) => {
    const { statuses, ms } = await waitCaughtUp(cluster);
    const same = await checksumTables();
    const msg = `every node applied log index ${statuses[0].appliedIndex} (${fmt(ms / 1000, 1)} s after the last run); CHECKSUM TABLE of ${tableNames.length} tables on the 3 servers: ${same ? 'identical' : 'DIFFERENT'}`;
    console.log(`cluster: ${msg}`);
    checks.unshift(msg);
    if (!same) notes.push('the three servers DIFFER after the cluster runs (see the checksum table)');
    await sysbenchAdmin('cleanup', target(cluster));
  };
  if (!profile) {
    await withCluster('all', false, async (cluster, coordinator) => {
      await prepare(cluster);
      for (const w of opts.workloads) await workload(w)(cluster, coordinator);
      await finish(cluster);
    });
  } else {
    await withCluster('prepare', true, prepare);
    for (const w of opts.workloads) await withCluster(w, true, workload(w));
    await withCluster('check', false, finish);
  }
}

// ---------------------------------------------------------------- profiles

/** A profile row's module: the npm package, replisql's dist/ folder, node internals, or the native function itself. */
function moduleOf(r) {
  if (r.where === '') return r.name.startsWith('(') ? r.name : `native ${r.name}`;
  if (r.where.startsWith('node:')) return 'node internals';
  const m = /^dist\/([^/:]+)/.exec(r.where);
  if (m !== null) return `replisql ${m[1].endsWith('.js') ? m[1].replace(/\.js$/, '') : m[1] + '/'}`;
  return r.where.split('/')[0];
}

function printProfiles() {
  console.log('');
  console.log(`CPU profiles of the nodes (node --cpu-prof, one cluster start per phase, warm-up included), in ${opts['cpu-prof']}:`);
  for (const ph of profilePhases) {
    for (const n of ph.nodes) {
      const files = cpuProfilesOf(ph.dir, n.pid);
      if (files.length === 0) {
        console.log(`\n${ph.phase}, node ${n.id} (${n.role}, pid ${n.pid}): no profile${n.cleanExit ? '' : ' (the node was killed)'}`);
        continue;
      }
      for (const f of files) {
        const p = summarizeCpuProfile(f, 3);
        const idle = p.rows.find((r) => r.name === '(idle)')?.hits ?? 0;
        const busyHits = p.totalHits - idle;
        console.log(
          `\n${ph.phase}, node ${n.id} (${n.role}), ${f.slice(ph.dir.length + 1)}: ${fmt(p.durationMs / 1000, 1)} s profiled, ` +
            `busy ${Math.round((busyHits / Math.max(1, p.totalHits)) * 100)}% (${fmt((busyHits / Math.max(1, p.totalHits)) * (p.durationMs / 1000), 1)} s), ` +
            `top self time (excluding "(idle)"):`,
        );
        const cpu = n.cpu === null ? 'not read' : `${fmt(n.cpu.user + n.cpu.sys, 1)} s (${fmt(n.cpu.user, 1)} user + ${fmt(n.cpu.sys, 1)} sys, all threads)`;
        console.log(`  CPU the process used over its life (/proc): ${cpu}. Samples are wall-clock: "busy" includes time the thread was runnable but not running.`);
        const byModule = new Map();
        for (const r of p.rows) {
          if (r.name === '(idle)') continue;
          const m = moduleOf(r);
          byModule.set(m, (byModule.get(m) ?? 0) + r.hits);
        }
        console.log(
          `  by module (% of busy): ${[...byModule]
            .sort((a, b) => b[1] - a[1])
            .slice(0, 10)
            .map(([m, h]) => `${m} ${fmt((h / Math.max(1, busyHits)) * 100, 1)}`)
            .join(', ')}`,
        );
        const top = p.rows.filter((r) => r.name !== '(idle)').slice(0, 15);
        console.log(
          table(
            ['% of busy', '% of all', 'self s', 'function', 'where'],
            top.map((r) => [fmt((r.hits / Math.max(1, busyHits)) * 100, 1), fmt(r.share * 100, 1), fmt(r.ms / 1000), r.name, r.where]),
          ),
        );
        // Who the biggest items were spent for (native functions such as writev have no file).
        for (const r of top.filter((x) => x.hits / Math.max(1, busyHits) >= 0.05 && !x.name.startsWith('('))) {
          const callers = r.callers
            .slice(0, 3)
            .map((c) => `${fmt((c.hits / r.hits) * 100, 0)}% ${c.stack}`)
            .join('; ');
          console.log(`  ${r.name} called from: ${callers}`);
        }
      }
    }
  }
}

// ---------------------------------------------------------------- run

console.log(`command: ${commandLine()}`);
console.log(machineInfo());
console.log(gitInfo());
let failed = false;
try {
  if (SYSBENCH === null) throw new Error('sysbench is not installed');
  const v = spawnSync(SYSBENCH, ['--version'], { encoding: 'utf8' });
  console.log(
    `workload: ${v.stdout.trim()}; ${opts.workloads.join(', ')}; ${opts.threads} threads, ${opts.tables} tables x ${opts['table-size']} rows, ` +
      `${opts.warmup > 0 ? `${opts.warmup} s warm-up (not measured) + ` : ''}${opts.time} s measured per workload; ` +
      `${opts.only ?? 'direct and cluster'}; cluster writeAck ${opts['write-ack']}, nodes reach their server over ${opts['db-socket'] ? 'its Unix socket' : 'TCP'}; temp dir ${workDir}`,
  );
  const t0 = performance.now();
  servers = await startMariaDbs({ workDir, count: 3, bufferPool: opts['buffer-pool'] });
  const [sv] = await mysqlQuery(
    servers[0].port,
    undefined,
    'SELECT @@version AS version, @@innodb_flush_log_at_trx_commit AS flush_at_commit, @@innodb_flush_method AS flush_method, @@innodb_doublewrite AS doublewrite, ' +
      '@@log_bin AS log_bin, @@innodb_buffer_pool_size AS pool, @@innodb_log_file_size AS redo, @@tx_isolation AS iso',
  );
  console.log(
    `MariaDB ${sv.version}: 3 servers up in ${fmt((performance.now() - t0) / 1000, 1)} s (pids ${servers.map((s) => `${s.id}:${s.pid}`).join(', ')}; ports ${servers.map((s) => s.port).join(', ')}); ` +
      `identical settings: innodb_flush_log_at_trx_commit=${sv.flush_at_commit}, innodb_flush_method=${sv.flush_method}, innodb_doublewrite=${sv.doublewrite}, ` +
      `log_bin=${sv.log_bin}, buffer pool ${Number(sv.pool) / 2 ** 20} MiB, redo log ${Number(sv.redo) / 2 ** 20} MiB, ${sv.iso}`,
  );
  console.log('');
  if (opts.only !== 'cluster') await runDirect();
  if (opts.only !== 'direct') await runCluster();
} catch (err) {
  failed = true;
  console.error(`bench failed: ${err.stack ?? err}`);
}

const serverRss = servers.map((s) => fmtRss(s.pid));
await Promise.all(servers.map((s) => stopChild(s.child, 30_000)));

console.log('');
console.log(`command: ${commandLine()}`);
for (const [mode, cmd] of sysbenchCommands) console.log(`sysbench (${mode}, measured run of the first workload): ${cmd}`);
console.log(gitInfo());
console.log('');
const rows = opts.workloads.map((w) => {
  const d = results.direct.get(w);
  const c = results.cluster.get(w);
  const pct = d?.ok && c?.ok ? `${Math.round((c.tps / d.tps) * 100)}%` : '-';
  const cellTps = (r) => (r === undefined ? '-' : r.ok ? fmt(r.tps, 1) : 'FAILED');
  const cellP95 = (r) => (r?.ok ? fmt(r.p95) : '-');
  const errs = (r) => (r?.ok ? String(r.errors) : '-');
  return [w, cellTps(d), cellP95(d), cellTps(c), cellP95(c), pct, `${errs(d)} / ${errs(c)}`];
});
console.log(`sysbench, ${opts.threads} threads, ${opts.time} s per workload; cluster = 3 nodes, writeAck ${opts['write-ack']}, sysbench threads spread over the 3 MySQL front ends:`);
console.log(table(['workload', 'direct tps', 'direct p95 ms', 'cluster tps', 'cluster p95 ms', 'cluster tps % of direct', 'ignored errors (direct / cluster)'], rows));
const qpsRows = opts.workloads.map((w) => {
  const d = results.direct.get(w);
  const c = results.cluster.get(w);
  return [w, d?.ok ? fmt(d.qps, 1) : '-', d?.ok ? fmt(d.avg) : '-', c?.ok ? fmt(c.qps, 1) : '-', c?.ok ? fmt(c.avg) : '-', c?.ok ? fmt(c.max) : '-'];
});
console.log('');
console.log(table(['workload', 'direct qps', 'direct avg ms', 'cluster qps', 'cluster avg ms', 'cluster max ms'], qpsRows));

const targets = [
  ['oltp_point_select', 70, null],
  ['oltp_insert', 30, 'quorum'],
];
const targetLines = [];
for (const [w, minPct, ack] of targets) {
  const d = results.direct.get(w);
  const c = results.cluster.get(w);
  if (!d?.ok || !c?.ok || (ack !== null && ack !== opts['write-ack'])) continue;
  const pct = (c.tps / d.tps) * 100;
  targetLines.push(`target ${w}${ack ? ` at writeAck ${ack}` : ''} >= ${minPct}% of direct: ${pct.toFixed(0)}% -> ${pct >= minPct ? 'MET' : 'MISSED'}`);
}
if (targetLines.length > 0) {
  console.log('');
  for (const l of targetLines) console.log(l);
}
if (prepares.length > 0) {
  console.log('');
  console.log(table(['prepare', 'seconds'], prepares));
}
if (cpuRows.length > 0) {
  console.log('');
  console.log(`CPU seconds used during each measured run (user+system, all threads, from /proc; sysbench = reaped-children time of the bench process; this machine has ${cpus().length} CPUs = ${cpus().length * 100}% max):`);
  console.log(
    table(
      ['mode', 'workload', 'wall s', 'node 1', 'node 2', 'node 3', 'mariadbd 1', 'mariadbd 2', 'mariadbd 3', 'sysbench', 'bench', `these processes (of ${cpus().length * 100}%)`, 'other processes', 'irq+softirq', 'steal', 'idle'],
      cpuRows,
    ),
  );
  console.log(
    '(from /proc/stat: "other processes" is work of other programs on the machine, taking CPU from the benchmark; "irq+softirq" is kernel interrupt work ' +
      '(loopback network, disk completions), most of it done for the benchmark\'s own traffic; the per-process times and irq+softirq ' +
      'overlap (interrupt work done while a process runs can be counted in both), so under heavy loopback traffic the columns add up to more than 200%)',
  );
  console.log('');
  console.log('The same CPU seconds by group: total (share of it in the kernel), share of all CPU used during the run; and CPU microseconds per sysbench transaction:');
  console.log(table(['mode', 'workload', 'node processes', 'mariadbd', 'sysbench', 'CPU us per transaction'], splitRows));
}
if (dbRows.length > 0) {
  console.log('');
  console.log('What each MariaDB server did during each measured run (SHOW GLOBAL STATUS deltas; per sysbench transaction; a follower may still be applying at the end):');
  console.log(table(['mode', 'workload', 'server', 'statements', 'per txn', 'Com_commit', 'per txn', 'Innodb_data_fsyncs', 'per txn'], dbRows));
}
if (rssRows.length > 0) {
  console.log('');
  console.log('RSS in MiB (VmRSS) at the end of each measured run:');
  console.log(table(['mode', 'workload', 'node 1', 'node 2', 'node 3', 'mariadbd 1', 'mariadbd 2', 'mariadbd 3'], rssRows));
  console.log(`mariadbd RSS before shutdown: ${serverRss.join(', ')} MiB`);
}
if (checks.length > 0) {
  console.log('');
  console.log(`replicas after the cluster runs: ${checks[0]}`);
  console.log(table(['table', 'rows on server 1 / 2 / 3', 'CHECKSUM TABLE on server 1 / 2 / 3', ''], checks.slice(1)));
}
if (profilePhases.length > 0) printProfiles();
console.log('');
for (const n of notes) console.log(`note: ${n}`);
console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(`total wall time: ${((performance.now() - runStarted) / 1000).toFixed(1)} s`);
if (opts.keep) {
  keepOnExit(workDir);
  console.log(`kept ${workDir}`);
}
process.exit(failed ? 1 : 0);
