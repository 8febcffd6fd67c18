// Helpers shared by the benchmark scripts (scripts/bench.mjs, scripts/bench-mysql.mjs,
// scripts/bench-sim.mjs, scripts/bench-sysbench.mjs): argument parsing, percentiles, a plain-text
// table, machine info, process memory and CPU, a local cluster of node child processes on 127.0.0.1
// that is always torn down, tracked child processes and temp dirs, local MariaDB servers, and a
// summary of .cpuprofile files.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, totalmem, release, platform } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ReplisqlClient } from '../dist/client/client.js';
import { demoConfig, loadConfig } from '../dist/config/load.js';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// ---------------------------------------------------------------- arguments

/**
 * `--name value` / `--name=value` flags; `spec` maps a flag to [default, parse]. Unknown flags and
 * bad values exit 2 with a message.
 */
export function parseArgs(argv, spec, usage) {
  const out = Object.fromEntries(Object.entries(spec).map(([k, [d]]) => [k, d]));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      console.log(usage);
      process.exit(0);
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (m === null || !(m[1] in spec)) {
      console.error(`unknown argument ${a}\n${usage}`);
      process.exit(2);
    }
    const raw = m[2] ?? argv[++i];
    if (raw === undefined) {
      console.error(`--${m[1]} needs a value\n${usage}`);
      process.exit(2);
    }
    try {
      out[m[1]] = spec[m[1]][1](raw);
    } catch (err) {
      console.error(`--${m[1]}: ${err.message}\n${usage}`);
      process.exit(2);
    }
  }
  return out;
}

export function positiveInt(raw) {
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new Error(`expected a positive integer, got "${raw}"`);
  return Number(raw);
}

export function nonNegativeInt(raw) {
  if (!/^\d+$/.test(raw)) throw new Error(`expected a non-negative integer, got "${raw}"`);
  return Number(raw);
}

/** The command line that is running, relative to the repository root. */
export function commandLine() {
  const script = relative(root, process.argv[1]);
  const nodeFlags = process.execArgv.length > 0 ? ` ${process.execArgv.join(' ')}` : '';
  return `node${nodeFlags} ${script}${process.argv.length > 2 ? ' ' + process.argv.slice(2).join(' ') : ''}`;
}

// ---------------------------------------------------------------- numbers

/** Deterministic key sequence for read phases (xorshift32): `n` keys in 1..maxKey. */
export function readKeys(n, maxKey, seed = 12345) {
  const keys = new Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    keys[i] = ((x >>> 0) % maxKey) + 1;
  }
  return keys;
}

/** Nearest-rank percentile of an ascending-sorted array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function summarize(mode, latenciesMs, elapsedMs, note = '') {
  const sorted = Float64Array.from(latenciesMs).sort();
  return {
    mode,
    ops: sorted.length,
    seconds: elapsedMs / 1000,
    opsPerSec: sorted.length / (elapsedMs / 1000),
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length > 0 ? sorted[sorted.length - 1] : NaN,
    note,
  };
}

function fmtMs(v) {
  if (!Number.isFinite(v)) return '-';
  return v < 1 ? v.toFixed(3) : v < 100 ? v.toFixed(2) : v.toFixed(0);
}

/** A Markdown table (readable as plain text too). */
/**
 * The cluster point-read phase shared by bench.mjs and bench-mysql.mjs: `clients` JSON-protocol
 * clients on one node run `sql` for each key in turn. Returns the result row for the table; the
 * first error is added to `notes`.
 */
export async function pointReadPhase({ endpoint, nodeId, role, sql, keys, clients, notes, queryOpts = {}, mode = 'cluster point read, 1 node' }) {
  const conns = await Promise.all(Array.from({ length: clients }, () => ReplisqlClient.connect([endpoint], { timeoutMs: 30_000 })));
  const lat = [];
  let missing = 0;
  let errCount = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    conns.map(async (cl) => {
      while (next < keys.length) {
        const k = keys[next++];
        const st = performance.now();
        try {
          const r = await cl.query(sql, [k], queryOpts);
          if (r[0].rows.length === 0) missing++;
          lat.push(performance.now() - st);
        } catch (err) {
          errCount++;
          if (errCount === 1) notes.push(`point reads: ${err.code ?? 'error'}: ${err.message}`);
        }
      }
    }),
  );
  const elapsed = performance.now() - t0;
  await Promise.all(conns.map((cl) => cl.close()));
  const note = [`${clients} client${clients === 1 ? '' : 's'} -> node ${nodeId} (${role})`, missing ? `${missing} MISSING` : '', errCount ? `${errCount} ERRORS` : ''].filter((x) => x !== '').join(', ');
  return summarize(mode, lat, elapsed, note);
}

export function table(headers, rows) {
  const cells = [headers, ...rows].map((r) => r.map(String));
  const width = headers.map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  const right = rows.length > 0 ? rows[0].map((v) => typeof v === 'number' || /^[\d.,-]+$/.test(String(v))) : [];
  const line = (r) => '| ' + r.map((v, c) => (right[c] ? v.padStart(width[c]) : v.padEnd(width[c]))).join(' | ') + ' |';
  const sep = '|' + width.map((w, c) => (right[c] ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|') + '|';
  return [line(cells[0]), sep, ...cells.slice(1).map(line)].join('\n');
}

export function resultTable(results) {
  return table(
    ['mode', 'ops', 'seconds', 'ops/s', 'p50 ms', 'p99 ms', 'max ms', 'note'],
    results.map((r) => [r.mode, r.ops, r.seconds.toFixed(2), Math.round(r.opsPerSec), fmtMs(r.p50), fmtMs(r.p99), fmtMs(r.max), r.note]),
  );
}

// ---------------------------------------------------------------- machine and memory

export function machineInfo() {
  const c = cpus();
  return [
    `machine: ${c.length} CPU(s) (${c[0]?.model?.trim() ?? 'unknown model'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${platform()} ${release()}`,
    `runtime: node ${process.version}, better-sqlite3 ${readPackageVersion('better-sqlite3')}`,
    `load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')} (1/5/15 min; other work on the machine skews every number)`,
  ].join('\n');
}

/** The commit dist/ was presumably built from, and whether src/ had uncommitted changes. */
export function gitInfo() {
  const git = (...args) => spawnSync('git', args, { cwd: root, encoding: 'utf8' });
  const head = git('rev-parse', '--short', 'HEAD');
  if (head.status !== 0) return 'code: not a git checkout';
  const dirty = git('status', '--porcelain', '--', 'src').stdout.split('\n').filter((l) => l.trim() !== '').length;
  return `code: commit ${head.stdout.trim()}${dirty > 0 ? ` + ${dirty} uncommitted file(s) in src/ (dist/ is whatever was last built)` : ', src/ clean'}`;
}

function readPackageVersion(name) {
  try {
    return JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
}

/** Resident set size of a process in MiB (VmRSS from /proc), or null when it cannot be read. */
export function rssMiB(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? null : Number(m[1]) / 1024;
  } catch {
    return null;
  }
}

/**
 * CPU seconds (user + system, all threads) a process has used so far, from /proc/<pid>/stat, or
 * null. Assumes the usual 100 clock ticks per second (USER_HZ).
 */
export function cpuSeconds(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- local cluster

const sleepMs = (ms) => new Promise((r) => setTimeout(r, ms));

/** `count` distinct free TCP ports on 127.0.0.1 (held open together so they differ). */
export async function freePorts(count) {
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      const srv = createServer();
      await new Promise((res, rej) => {
        srv.once('error', rej);
        srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, res);
      });
      servers.push(srv);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((res) => s.close(res))));
  }
}

const liveChildren = new Set();
const dirsToRemove = new Set();
let exitHookInstalled = false;

/**
 * Last resort: whatever happens to the bench process, no child started with spawnTracked (node
 * processes, mariadbd, sysbench) outlives it, and every folder given to removeOnExit is removed.
 */
export function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of liveChildren) {
      try {
        c.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const d of dirsToRemove) {
      try {
        rmSync(d, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      console.error(`\nbench: ${sig}, stopping the node processes`);
      process.exit(130);
    });
  }
}

/**
 * Writes `dir`/config.json (mode 0600, creating `dir`) for a cluster of `nodes` nodes on free loopback
 * ports: the demo config with `overrides` merged in (e.g. `{ writeAck: 'all' }`), node i's entry
 * (the demo entry on its free port) passed through `node(entry, i, extraPorts)`, where `extraPorts`
 * are `portsPerNode - 1` more free ports for node i (e.g. a mysqlPort). Resolves with
 * { configPath, config } (config as loadConfig resolves it: a config the nodes would refuse throws).
 */
export async function writeClusterConfig({ dir, nodes = 3, overrides = {}, node = (entry) => entry, portsPerNode = 1 }) {
  mkdirSync(dir, { recursive: true });
  const ports = await freePorts(nodes * portsPerNode);
  const base = demoConfig(nodes, 7001);
  const config = {
    ...base,
    cluster: 'bench',
    ...overrides,
    nodes: base.nodes.map((n, i) =>
      node(
        { ...n, port: ports[i] },
        i,
        Array.from({ length: portsPerNode - 1 }, (_, k) => ports[(k + 1) * nodes + i]),
      ),
    ),
  };
  const configPath = join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  return { configPath, config: loadConfig(configPath) };
}

/**
 * Starts one node process per node of `config` (from writeClusterConfig) in `dir`, spawnTracked,
 * with `nodeArgs` as extra node.js flags (e.g. `--cpu-prof`). Resolves once every node printed
 * "ready" with { dir, configPath, config, procs, endpoints, mysqlPorts, stop() }, procs sorted by id
 * ([{ id, label: 'node <id>', endpoint, child, pid, output, exited }]); rejects (after stopping the
 * others) if one exits or stays silent for `startTimeoutMs`.
 */
export async function startNodes({ dir, configPath, config, nodeArgs = [], startTimeoutMs = 20_000 }) {
  const bin = join(root, 'bin', 'replisql.js');
  const procs = [];
  const cluster = {
    dir,
    configPath,
    config,
    procs,
    endpoints: config.nodes.map((n) => `${n.host}:${n.port}`),
    mysqlPorts: config.nodes.map((n) => n.mysqlPort),
    stop: (graceMs) => stopCluster(procs, graceMs),
  };
  try {
    await Promise.all(
      config.nodes.map(
        (n) =>
          new Promise((res, rej) => {
            const child = spawnTracked(process.execPath, [...nodeArgs, bin, 'node', '--config', configPath, '--id', String(n.id)], {
              cwd: dir,
              stdio: ['ignore', 'pipe', 'pipe'],
            });
            const p = { id: n.id, label: `node ${n.id}`, endpoint: `${n.host}:${n.port}`, child, pid: child.pid, output: [], exited: null };
            procs.push(p);
            const keep = (chunk) => {
              p.output.push(chunk.toString());
              if (p.output.length > 200) p.output.shift();
            };
            child.stderr.on('data', keep);
            let out = '';
            const timer = setTimeout(() => rej(new Error(`node ${n.id} did not print "ready" within ${startTimeoutMs / 1000} s:\n${p.output.join('')}`)), startTimeoutMs);
            child.stdout.on('data', (chunk) => {
              keep(chunk);
              out += chunk.toString();
              if (/ready on/.test(out)) {
                clearTimeout(timer);
                res();
              }
            });
            child.on('exit', (code, signal) => {
              p.exited = { code, signal };
              clearTimeout(timer);
              rej(new Error(`node ${n.id} exited (${signal ?? `code ${code}`}) before it was ready:\n${p.output.join('')}`));
            });
          }),
      ),
    );
  } catch (err) {
    await stopCluster(procs);
    throw err;
  }
  procs.sort((a, b) => a.id - b.id);
  return cluster;
}

/**
 * writeClusterConfig, then startNodes: a cluster of `nodes` node processes in `dir` (config.json,
 * data/, logs/). Options are those of the two.
 */
export async function startCluster({ dir, nodes = 3, overrides = {}, node, portsPerNode, nodeArgs = [], startTimeoutMs = 20_000 }) {
  const { configPath, config } = await writeClusterConfig({ dir, nodes, overrides, node, portsPerNode });
  return startNodes({ dir, configPath, config, nodeArgs, startTimeoutMs });
}

/**
 * SIGTERM every node, SIGKILL the ones still running after `graceMs`; resolves when all exited, with
 * the ids of the nodes that had to be killed.
 */
export async function stopCluster(procs, graceMs = 5000) {
  const clean = await Promise.all(procs.map((p) => stopChild(p.child, graceMs)));
  return procs.filter((_, i) => !clean[i]).map((p) => p.id);
}

/**
 * Waits until some node of `endpoints` names a coordinator that commits `testWrite` (a statement
 * the coordinator accepts every time, e.g. CREATE TABLE IF NOT EXISTS); resolves with
 * { coordinator, ms } (ms since the call).
 */
export async function waitForCoordinator(endpoints, testWrite, { timeoutMs = 60_000, connectTimeoutMs = 10_000 } = {}) {
  const t0 = performance.now();
  const control = await ReplisqlClient.connect(endpoints, { timeoutMs: connectTimeoutMs });
  try {
    let last = 'no answer yet';
    while (performance.now() - t0 < timeoutMs) {
      try {
        const s = await control.status();
        last = `node ${s.nodeId}: coordinator ${s.coordinator}, term ${s.term}, role ${s.role}`;
        if (s.coordinator !== null) {
          await control.query(testWrite);
          return { coordinator: s.coordinator, ms: performance.now() - t0 };
        }
      } catch (err) {
        last = `${err.code ?? 'error'}: ${err.message}`;
      }
      await sleepMs(100);
    }
    throw new Error(`no working coordinator after ${timeoutMs} ms (last: ${last})`);
  } finally {
    await control.close();
  }
}

/** The last `lines` lines of `dir`/logs/node<id>.log, indented for a note, or '(no log file)'. */
export function nodeLogTail(dir, id, lines) {
  try {
    return readFileSync(join(dir, 'logs', `node${id}.log`), 'utf8').trimEnd().split('\n').slice(-lines).join('\n  ');
  } catch {
    return '(no log file)';
  }
}

// ---------------------------------------------------------------- tracked children, temp dirs

/** Removes `dir` (recursively) when the bench process exits, also on an error or Ctrl-C. */
export function removeOnExit(dir) {
  installExitHook();
  dirsToRemove.add(dir);
}

/** Forgets a folder given to removeOnExit (e.g. to keep it for inspection). */
export function keepOnExit(dir) {
  dirsToRemove.delete(dir);
}

/**
 * spawn(), and the child is SIGKILLed when the bench process exits (the exit hook). A watchdog
 * shell also kill -9s it if the bench process itself dies by kill -9.
 */
export function spawnTracked(cmd, args, options) {
  installExitHook();
  const child = spawn(cmd, args, options);
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  if (child.pid !== undefined) {
    spawn(
      'sh',
      ['-c', `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${child.pid} 2>/dev/null; do sleep 1; done; kill -0 ${process.pid} 2>/dev/null || kill -9 ${child.pid} 2>/dev/null`],
      { detached: true, stdio: 'ignore' },
    ).unref();
  }
  return child;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with true when the child exited by itself. */
export function stopChild(child, graceMs = 5000) {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) return res(true);
    let killed = false;
    const t = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      res(!killed);
    });
    child.kill('SIGTERM');
  });
}

/**
 * CPU seconds (user + system) of the children of this process that have exited and been reaped
 * (cutime + cstime of /proc/self/stat): the difference around one child's run is that child's CPU
 * use, when no other child exited meanwhile.
 */
export function reapedChildrenCpuSeconds() {
  const t = reapedChildrenCpuTimes();
  return t.user + t.sys;
}

/** reapedChildrenCpuSeconds split into { user, sys } seconds. */
export function reapedChildrenCpuTimes() {
  const text = readFileSync('/proc/self/stat', 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[13]) / 100, sys: Number(fields[14]) / 100 }; // fields 16 and 17
}

/** cpuSeconds split into { user, sys } seconds (all threads), or null when it cannot be read. */
export function cpuTimes(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / 100, sys: Number(fields[12]) / 100 };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- MariaDB servers

function whichCmd(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : null;
}

/** mariadbd and mariadb-install-db, or an Error saying what is missing (Linux, root, a mysql user). */
export function mariadbBinaries() {
  if (process.platform !== 'linux') throw new Error('Linux only');
  const installDb = whichCmd('mariadb-install-db');
  const server = whichCmd('mariadbd') ?? ['/usr/sbin/mariadbd', '/usr/bin/mariadbd', '/usr/sbin/mysqld'].find((p) => spawnSync('test', ['-x', p]).status === 0) ?? null;
  if (installDb === null || server === null) throw new Error('MariaDB is not installed (mariadbd / mariadb-install-db not found)');
  if (process.getuid?.() !== 0) throw new Error('run as root: the servers are started as the mysql user');
  if (spawnSync('id', ['-u', 'mysql']).status !== 0) throw new Error('there is no mysql user to run MariaDB as');
  return { installDb, server };
}

/**
 * Settings every benchmark MariaDB server gets (the same for all instances): durable commits
 * (innodb_flush_log_at_trx_commit=1, the default, set explicitly), no binary log, small caches.
 */
export function mariadbServerArgs(dir, port, bufferPool, maxConnections = 200) {
  return [
    '--no-defaults',
    '--user=mysql',
    `--datadir=${join(dir, 'data')}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    `--socket=${join(dir, 'mysqld.sock')}`,
    `--pid-file=${join(dir, 'mysqld.pid')}`,
    `--log-error=${join(dir, 'error.log')}`,
    `--innodb-buffer-pool-size=${bufferPool}`,
    '--innodb-flush-log-at-trx-commit=1',
    '--skip-log-bin',
    '--innodb-log-file-size=64M',
    '--innodb-log-buffer-size=8M',
    '--skip-name-resolve',
    '--performance-schema=OFF',
    `--max-connections=${maxConnections}`,
    '--key-buffer-size=1M',
    '--aria-pagecache-buffer-size=2M',
    '--table-open-cache=200',
    '--character-set-server=utf8mb4',
    '--collation-server=utf8mb4_general_ci',
  ];
}

/** Runs `statements` one after the other on a fresh root connection; resolves with the last result. */
export async function mysqlQuery(port, database, ...statements) {
  const { default: mysql } = await import('mysql2/promise');
  const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: '', ...(database ? { database } : {}), connectTimeout: 5000 });
  try {
    let last = [];
    for (const s of statements) [last] = await c.query(s);
    return last;
  } finally {
    await c.end();
  }
}

/**
 * Starts `count` independent MariaDB servers under `workDir` (mariadb1, mariadb2, ...): one datadir
 * made by mariadb-install-db, copied for each, each with its own port, socket and pid file, run as
 * the mysql user with mariadbServerArgs (`bufferPool`, `maxConnections`). `workDir` must be reachable by the mysql user (mode 755).
 * Resolves once every server accepts connections, with [{ id, dir, port, child, pid, errorLogTail() }].
 * The servers are spawnTracked (killed when the bench process exits).
 */
export async function startMariaDbs({ workDir, count = 3, bufferPool = '128M', maxConnections = 200, startTimeoutMs = 60_000 }) {
  const { installDb, server } = mariadbBinaries();
  const template = join(workDir, 'mariadb-template');
  mkdirSync(template);
  execFileSync('chown', ['mysql:mysql', template]);
  const install = spawnSync(
    installDb,
    ['--no-defaults', '--user=mysql', `--datadir=${join(template, 'data')}`, '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve', '--skip-log-bin', '--innodb-log-file-size=64M', `--innodb-buffer-pool-size=${bufferPool}`],
    { encoding: 'utf8', timeout: 120_000 },
  );
  if (install.status !== 0) throw new Error(`mariadb-install-db failed (${install.status}): ${(install.stderr || install.stdout || '').slice(-2000)}`);
  const ports = await freePorts(count);
  const servers = [];
  for (let i = 0; i < count; i++) {
    const dir = join(workDir, `mariadb${i + 1}`);
    execFileSync('cp', ['-a', template, dir]);
    const child = spawnTracked(server, mariadbServerArgs(dir, ports[i], bufferPool, maxConnections), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr = (stderr + d.toString()).slice(-4000)));
    const errorLogTail = () => {
      try {
        return readFileSync(join(dir, 'error.log'), 'utf8').split('\n').slice(-8).join('\n');
      } catch {
        return '(no error log)';
      }
    };
    servers.push({ id: i + 1, dir, port: ports[i], child, pid: child.pid, stderr: () => stderr, errorLogTail });
  }
  rmSync(template, { recursive: true, force: true });
  await Promise.all(
    servers.map(async (s) => {
      const deadline = performance.now() + startTimeoutMs;
      for (;;) {
        if (s.child.exitCode !== null || s.child.signalCode !== null) throw new Error(`mariadbd ${s.id} exited during startup: ${s.stderr()} ${s.errorLogTail()}`);
        try {
          await mysqlQuery(s.port, undefined, 'SELECT 1');
          return;
        } catch {
          if (performance.now() > deadline) throw new Error(`mariadbd ${s.id} did not accept connections within ${startTimeoutMs} ms: ${s.errorLogTail()}`);
          await sleepMs(100);
        }
      }
    }),
  );
  return servers;
}

// ---------------------------------------------------------------- CPU profiles

/**
 * Self time per function of one V8 .cpuprofile (what `node --cpu-prof` writes): the hitCount of
 * every profile node summed per callFrame functionName + url (`where` shows the line of the first
 * one; same-named functions of one file are merged). Returns { file, totalHits, durationMs,
 * rows: [{ name, where, hits, share, ms, callers }] } sorted by hits; `ms` is the share of the
 * profile's duration. "(idle)" is time the thread waited, "(program)" native work V8 cannot
 * attribute, "(garbage collector)" GC. `callers` says who the time was spent for: the nearest
 * `callerDepth` calling functions outside node's internals (`node:` urls), e.g. which code a native
 * socket write came from, as [{ stack: 'f (file:line) < g (file:line)', hits }] sorted by hits.
 */
export function summarizeCpuProfile(file, callerDepth = 2) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = prof.nodes ?? [];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const frameName = (cf) => `${cf.functionName || '(anonymous)'}${cf.url ? ` (${shortUrl(cf.url, cf.lineNumber)})` : ''}`;
  const callerStack = (id) => {
    const out = [];
    for (let p = parent.get(id); p !== undefined && out.length < callerDepth; p = parent.get(p)) {
      const cf = byId.get(p)?.callFrame ?? {};
      if (cf.url === undefined || cf.url === '' || cf.url.startsWith('node:')) continue;
      out.push(frameName(cf));
    }
    return out.length > 0 ? out.join(' < ') : '(no caller outside node internals)';
  };
  const by = new Map();
  let totalHits = 0;
  for (const n of nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0) continue;
    totalHits += hits;
    const cf = n.callFrame ?? {};
    const name = cf.functionName || '(anonymous)';
    const url = cf.url ?? '';
    const key = `${name}\u0000${url}`;
    const cur = by.get(key) ?? { name, where: shortUrl(url, cf.lineNumber), hits: 0, callers: new Map() };
    cur.hits += hits;
    const stack = callerStack(n.id);
    cur.callers.set(stack, (cur.callers.get(stack) ?? 0) + hits);
    by.set(key, cur);
  }
  const durationMs = ((prof.endTime ?? 0) - (prof.startTime ?? 0)) / 1000;
  const rows = [...by.values()]
    .sort((a, b) => b.hits - a.hits)
    .map((r) => ({
      ...r,
      share: totalHits > 0 ? r.hits / totalHits : 0,
      ms: totalHits > 0 ? (r.hits / totalHits) * durationMs : 0,
      callers: [...r.callers].map(([stack, hits]) => ({ stack, hits })).sort((a, b) => b.hits - a.hits),
    }));
  return { file, totalHits, durationMs, rows };
}

function shortUrl(url, line) {
  if (url === '') return '';
  let u = url.replace(/^file:\/\//, '');
  if (u.startsWith(root + '/')) u = u.slice(root.length + 1);
  u = u.replace(/^(.*\/)?node_modules\//, ''); // a package's files as <package>/<path>
  return line !== undefined && line >= 0 ? `${u}:${line + 1}` : u;
}

/** The .cpuprofile files in `dir` written by process `pid` (node names them CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile). */
export function cpuProfilesOf(dir, pid) {
  try {
    return readdirSync(dir)
      .filter((f) => new RegExp(`^CPU\\.\\d+\\.\\d+\\.${pid}\\.\\d+\\.\\d+\\.cpuprofile$`).test(f))
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}
