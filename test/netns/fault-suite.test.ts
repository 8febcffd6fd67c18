// The short fault suite (CI): a 3-node cluster, each node in its own network namespace, the workload
// and probes in a client namespace (src/faults/). Needs root, iproute2 and nftables; skips with the
// reason otherwise, unless REPLISQL_REQUIRE_NETNS=1 (set by .ci/run), which makes it fail instead.
// Every test cleans up in t.after/finally; the last ones check that nothing was left behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { ensureBuilt, BIN, ROOT } from '../cluster/harness.js';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanLeftovers, netnsUnavailableReason, NAME_PREFIX, SUBNET } from '../../src/faults/netns.js';
import { FaultSession } from '../../src/faults/runner.js';

const HB = 1000;
const FAILURE_TIMEOUT = 5000;
const reason = netnsUnavailableReason();
const required = process.env['REPLISQL_REQUIRE_NETNS'] === '1';
const skip = reason !== null && !required ? `network namespaces unavailable: ${reason}` : false;
const log = (line: string): void => void process.stderr.write(`  [faults] ${line}\n`);

function leftovers(): { namespaces: string[]; route: boolean } {
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  const routes = spawnSync('ip', ['route', 'show', 'type', 'blackhole'], { encoding: 'utf8' }).stdout ?? '';
  return {
    namespaces: ns.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => n.startsWith(`${NAME_PREFIX}${process.pid}-`)),
    route: routes.includes(SUBNET),
  };
}

let session: FaultSession | null = null;

before(async () => {
  if (skip !== false) return;
  if (reason !== null) throw new Error(`REPLISQL_REQUIRE_NETNS=1 but network namespaces are unavailable: ${reason}`);
  ensureBuilt();
  session = await FaultSession.open({ nodes: 3, heartbeatIntervalMs: HB, failureTimeoutMs: FAILURE_TIMEOUT, seed: 7, log });
});

after(() => {
  session?.closeSync();
});

function s(): FaultSession {
  if (session === null) throw new Error('no session (setup failed)');
  return session;
}

test('faults: the set workload stays valid under isolate-coordinator, majority/minority split and kill -9', { skip, timeout: 180_000 }, async () => {
  const row = await s().runWorkload({ workload: 'set', faults: ['isolate-coordinator', 'split', 'kill'], durationS: 30, faultS: 6, quietS: 3, concurrency: 4, historyDir: null });
  log(`set: ${row.operations} ops, ${row.acknowledged} acknowledged, ${row.unknown} unknown, ${row.failed} failed, ${row.violations} violations -> ${row.verdict}`);
  const applied = s().nemesis.events.filter((e) => e.kind === 'fault').map((e) => e.fault);
  for (const f of ['isolate-coordinator', 'split', 'kill'] as const) assert.ok(applied.includes(f), `fault ${f} was never applied (${applied.join(',')})`);
  assert.equal(row.violations, 0, row.details.join('\n'));
  assert.equal(row.verdict, 'valid', row.details.join('\n'));
  assert.ok(row.acknowledged > 50, `only ${row.acknowledged} writes acknowledged`);
});

test('faults: register at linearizable stays linearizable under isolate, split, bridge, one-way loss and pause', { skip, timeout: 180_000 }, async () => {
  const row = await s().runWorkload({ workload: 'register', faults: ['isolate', 'split', 'bridge', 'one-way', 'pause'], durationS: 30, faultS: 4, quietS: 2, concurrency: 6, historyDir: null });
  log(`register: ${row.operations} ops, ${row.acknowledged} acknowledged, ${row.unknown} unknown, ${row.failed} failed, ${row.violations} violations -> ${row.verdict}`);
  assert.equal(row.violations, 0, row.details.join('\n'));
  assert.equal(row.verdict, 'valid', row.details.join('\n'));
  assert.ok(row.acknowledged > 50, `only ${row.acknowledged} operations acknowledged`);
});

test('faults: bank transfers keep the total under isolate-coordinator and kill -9', { skip, timeout: 180_000 }, async () => {
  const row = await s().runWorkload({ workload: 'bank', faults: ['isolate-coordinator', 'kill'], durationS: 25, faultS: 5, quietS: 3, concurrency: 4, historyDir: null });
  log(`bank: ${row.operations} ops, ${row.acknowledged} acknowledged, ${row.unknown} unknown, ${row.failed} failed, ${row.violations} violations -> ${row.verdict}`);
  assert.equal(row.violations, 0, row.details.join('\n'));
  assert.equal(row.verdict, 'valid', row.details.join('\n'));
  assert.ok(row.acknowledged > 20, `only ${row.acknowledged} operations acknowledged`);
});

test('faults: a weakened build (linearizable reads served locally) is caught by the checker while a node is cut off', { skip, timeout: 180_000 }, async () => {
  const restartAll = async (env: Record<string, string>): Promise<void> => {
    for (const id of s().nodeIds) {
      s().signal(id, 'SIGKILL');
      await s().waitExit(id);
    }
    for (const id of s().nodeIds) await s().start(id, env);
    await s().waitCaughtUp(60_000);
  };
  await restartAll({ REPLISQL_TEST_UNSAFE_LOCAL_READS: '1' });
  try {
    for (const id of s().nodeIds) assert.equal(s().events(id, 'unsafe-local-reads').length > 0, true, `node ${id} runs the weakened build`);
    const historyDir = mkdtempSync(join(tmpdir(), 'replisql-fault-histories-'));
    try {
      const row = await s().runWorkload({ workload: 'register', faults: ['isolate'], durationS: 20, faultS: 8, quietS: 2, concurrency: 6, historyDir });
      log(`weakened register: ${row.operations} ops, ${row.violations} violations -> ${row.verdict}; ${row.details[0] ?? ''}`);
      assert.equal(row.verdict, 'INVALID', `the checker must catch stale reads of the weakened build: ${row.details.join('\n')}`);
      assert.ok(row.violations > 0);
      // The failing history is kept, with the nemesis log, for a post-mortem.
      assert.ok(row.historyFile !== null && existsSync(row.historyFile), `history saved: ${row.historyFile}`);
      assert.ok(existsSync(row.historyFile.replace(/\.json$/, '.nemesis.json')));
    } finally {
      rmSync(historyDir, { recursive: true, force: true });
    }
  } finally {
    await restartAll({});
  }
});

test('faults: after a 10 s cut of the coordinator heals, every node sees every other within two heartbeats', { skip, timeout: 90_000 }, async () => {
  const h = await s().measureHeal(10_000);
  log(`heal after 10 s cut of coordinator ${h.coordinator}: ${h.maxMs} ms; pairs ${JSON.stringify(h.pairs)}`);
  assert.deepEqual(h.missing, [], `pairs that never heard each other after the heal: ${h.missing.join(' ')}`);
  assert.ok(h.maxMs !== null && h.maxMs <= 2 * HB, `slowest pair ${h.maxMs} ms after the heal, bound ${2 * HB} ms`);
  // The transport replaced the stuck connections (docs/design-transport.md, "Liveness").
  const silent = s().nodeIds.flatMap((id) => s().events(id, 'peer-connection-silent'));
  assert.ok(silent.length > 0, 'no peer-connection-silent event: the cut did not exercise the liveness check');
});

test('faults: the minority acknowledges no write once its failure timeout has passed', { skip, timeout: 90_000 }, async () => {
  const m = await s().minorityWrites(3000);
  const late = m.writes.filter((w) => w.start >= m.cutAt + m.failureTimeoutMs);
  const lateAcked = late.filter((w) => w.outcome === 'ok');
  assert.ok(m.minority.startsWith(`minority {${m.coordinator}`), `the old coordinator ${m.coordinator} is not in the minority: ${m.minority}`);
  log(`${m.minority}: ${m.writes.length} writes pinned to the old coordinator ${m.coordinator}, ${late.length} after the failure timeout, ${lateAcked.length} acknowledged`);
  assert.ok(late.length > 0, 'no write was attempted after the failure timeout: the check tested nothing');
  assert.equal(lateAcked.length, 0, `acknowledged in the minority after the failure timeout: ${JSON.stringify(lateAcked)}`);
});

test('faults: a follower killed with SIGKILL restarts and catches up', { skip, timeout: 90_000 }, async () => {
  const k = await s().killAndRestart();
  log(`node ${k.id} killed and caught up after ${k.caughtUpMs} ms`);
  const kills = s().nemesis.events.filter((e) => e.fault === 'kill' && e.kind === 'fault');
  assert.ok(kills.length > 0);
  await s().waitCaughtUp(30_000);
});

test('faults: a node restarted with the test-only peer delay logs it and still catches up', { skip, timeout: 90_000 }, async () => {
  const c = (await s().waitCaughtUp()).coordinator;
  const n = s().nodeIds.find((x) => x !== c)!;
  s().signal(n, 'SIGKILL');
  await s().waitExit(n);
  await s().start(n, { REPLISQL_TEST_PEER_DELAY_MS: '150' });
  await s().waitCaughtUp(30_000);
  const ev = s().events(n, 'test-peer-delay');
  assert.equal(ev.length, 1);
  assert.equal(ev[0]!['delayMs'], 150);
  // Back to normal for whatever follows.
  s().signal(n, 'SIGKILL');
  await s().waitExit(n);
  await s().start(n);
  await s().waitCaughtUp(30_000);
});

test('faults: closing the session removes every namespace and the route', { skip, timeout: 30_000 }, async () => {
  const lab = s().lab;
  await s().close();
  session = null;
  assert.equal(lab.isTornDown, true);
  assert.deepEqual(leftovers(), { namespaces: [], route: false });
});

test('faults: SIGINT to `replisql faults` tears everything down', { skip, timeout: 90_000 }, async () => {
  const child = spawn(process.execPath, [BIN, 'faults', '--workload', 'set', '--faults', 'isolate', '--duration', '60', '--heal-cut', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  try {
    const deadline = Date.now() + 60_000;
    while (!/workload set running/.test(err)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the run did not start: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const prefix = `${NAME_PREFIX}${child.pid}-`;
    const listed = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    assert.ok(listed.includes(prefix), `no namespace ${prefix}* while running`);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.equal(code, 130, err);
    const after = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    assert.ok(!after.includes(prefix), `namespaces left after SIGINT:\n${after}`);
    const routes = spawnSync('ip', ['route', 'show', 'type', 'blackhole'], { encoding: 'utf8' }).stdout;
    assert.ok(!routes.includes(SUBNET), 'blackhole route left after SIGINT');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('faults: namespaces left by a crashed run (its pid is gone) are removed at the next start', { skip, timeout: 30_000 }, () => {
  const stale = `${NAME_PREFIX}4190000-n1`; // a pid that is not running (above the usual pid_max)
  spawnSync('ip', ['netns', 'add', stale]);
  try {
    assert.ok(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.includes(stale));
    const removed = cleanLeftovers(log);
    assert.ok(removed.includes(stale), `not removed: ${removed.join(',')}`);
    assert.ok(!spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.includes(stale));
  } finally {
    spawnSync('ip', ['netns', 'del', stale], { stdio: 'ignore' });
  }
});

test('test-only delay: a non-integer REPLISQL_TEST_PEER_DELAY_MS stops the node with an error naming it', () => {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'replisql-delay-'));
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ cluster: 'd', logDir: 'logs', nodes: [{ id: 1, host: '127.0.0.1', port: 1, storage: { engine: 'sqlite', path: 'n1.db' } }] }));
    const r = spawnSync(process.execPath, [BIN, 'node', '--config', join(dir, 'config.json'), '--id', '1'], { cwd: dir, encoding: 'utf8', env: { ...process.env, REPLISQL_TEST_PEER_DELAY_MS: '2.5' }, timeout: 20_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /REPLISQL_TEST_PEER_DELAY_MS must be an integer number of milliseconds 0\.\.60000 \(a test-only hook\), got '2\.5'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('faults: bad flags are refused with a clear error', async () => {
  ensureBuilt();
  const run = (args: string[]): { code: number | null; err: string } => {
    const r = spawnSync(process.execPath, [BIN, 'faults', ...args], { cwd: ROOT, encoding: 'utf8' });
    return { code: r.status, err: r.stderr };
  };
  let r = run(['--faults', 'isolate,flood']);
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown fault 'flood'/);
  r = run(['--workload', 'queue']);
  assert.equal(r.code, 2);
  assert.match(r.err, /--workload: expected set, register, bank or all, got 'queue'/);
  r = run(['--faults', 'db-kill']);
  assert.equal(r.code, 2);
  assert.match(r.err, /db-kill kills a node's database server: it needs --engine mysql/);
  r = run(['--nodes', '4']);
  assert.equal(r.code, 2);
  assert.match(r.err, /--nodes must be 3 or 5/);
  r = run(['--duration', 'ten']);
  assert.equal(r.code, 2);
});
