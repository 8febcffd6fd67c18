// Helpers shared by the benchmark scripts (scripts/bench.mjs, scripts/bench-sim.mjs): argument
// parsing, percentiles, a plain-text table, machine info, process memory, and a local cluster of
// node child processes on 127.0.0.1 that is always torn down.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, totalmem, release, platform } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** The command line that is running, relative to the repository root. */
export function commandLine() {
  const script = relative(root, process.argv[1]);
  const nodeFlags = process.execArgv.length > 0 ? ` ${process.execArgv.join(' ')}` : '';
  return `node${nodeFlags} ${script}${process.argv.length > 2 ? ' ' + process.argv.slice(2).join(' ') : ''}`;
}

// ---------------------------------------------------------------- numbers

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
let exitHookInstalled = false;

/** Last resort: whatever happens to the bench process, no node child outlives it. */
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
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      console.error(`\nbench: ${sig}, stopping the node processes`);
      process.exit(130);
    });
  }
}

/**
 * Starts a cluster of `nodes` node processes in `dir` (config.json, data/, logs/) on free loopback
 * ports. `overrides` are merged into the demo config (e.g. `{ writeAck: 'all' }`). `nodeArgs`
 * are extra node.js flags for the children (e.g. `--cpu-prof`). Resolves once every node printed
 * "ready"; rejects (after stopping the others) if one exits or stays silent for `startTimeoutMs`.
 */
export async function startCluster({ dir, nodes = 3, overrides = {}, nodeArgs = [], startTimeoutMs = 20_000 }) {
  installExitHook();
  mkdirSync(dir, { recursive: true });
  const ports = await freePorts(nodes);
  const base = demoConfig(nodes, 7001);
  const config = {
    ...base,
    cluster: 'bench',
    ...overrides,
    nodes: base.nodes.map((n, i) => ({ ...n, port: ports[i] })),
  };
  const configPath = join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2) + '\n');
  const resolved = loadConfig(configPath); // refuse to start from a config the nodes would refuse
  const bin = join(root, 'bin', 'replisql.js');
  const procs = [];
  const cluster = {
    dir,
    configPath,
    config: resolved,
    procs,
    endpoints: resolved.nodes.map((n) => `${n.host}:${n.port}`),
    stop: () => stopCluster(procs),
  };
  try {
    await Promise.all(
      resolved.nodes.map(
        (n) =>
          new Promise((res, rej) => {
            const child = spawn(process.execPath, [...nodeArgs, bin, 'node', '--config', configPath, '--id', String(n.id)], {
              cwd: dir,
              stdio: ['ignore', 'pipe', 'pipe'],
            });
            liveChildren.add(child);
            const p = { id: n.id, endpoint: `${n.host}:${n.port}`, child, pid: child.pid, output: [], exited: null };
            procs.push(p);
            const keep = (chunk) => {
              p.output.push(chunk.toString());
              if (p.output.length > 200) p.output.shift();
            };
            child.stderr.on('data', keep);
            let out = '';
            const timer = setTimeout(() => rej(new Error(`node ${n.id} did not print "ready" within ${startTimeoutMs} ms:\n${p.output.join('')}`)), startTimeoutMs);
            child.stdout.on('data', (chunk) => {
              keep(chunk);
              out += chunk.toString();
              if (/ready on/.test(out)) {
                clearTimeout(timer);
                res();
              }
            });
            child.on('exit', (code, signal) => {
              liveChildren.delete(child);
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
  return cluster;
}

/** SIGTERM every node, SIGKILL the ones still running after `graceMs`; resolves when all exited. */
export async function stopCluster(procs, graceMs = 5000) {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise((res) => {
          if (p.exited !== null || p.child.exitCode !== null || p.child.signalCode !== null) return res();
          const kill = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
          p.child.once('exit', () => {
            clearTimeout(kill);
            res();
          });
          p.child.kill('SIGTERM');
        }),
    ),
  );
}
