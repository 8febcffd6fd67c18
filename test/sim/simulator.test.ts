// The simulator itself: replays are exact, and the checkers catch deliberately broken rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimulation } from '../../src/sim/simulator.js';
import { sweep } from '../../src/sim/sim-cli.js';

test('the same seed replays exactly (same fingerprint, same trace)', () => {
  const a = runSimulation({ seed: 4242, nodes: 5, steps: 200, trace: true });
  const b = runSimulation({ seed: 4242, nodes: 5, steps: 200, trace: true });
  assert.equal(a.fingerprint, b.fingerprint);
  assert.deepEqual(a.trace, b.trace);
  assert.deepEqual(a.stats, b.stats);
  const c = runSimulation({ seed: 4243, nodes: 5, steps: 200 });
  assert.notEqual(a.fingerprint, c.fingerprint, 'different seeds explore different schedules');
});

test('a run exercises the faults it claims to (elections, crashes, snapshots, checksum rejects)', () => {
  const totals = { elections: 0, crashes: 0, snapshots: 0, checksum: 0, acked: 0, failed: 0 };
  for (let seed = 1; seed <= 20; seed++) {
    const r = runSimulation({ seed, nodes: 5, steps: 300 });
    assert.ok(r.ok, `seed ${seed}: ${JSON.stringify(r.violation)}`);
    totals.elections += r.stats.elections;
    totals.crashes += r.stats.crashes;
    totals.snapshots += r.stats.snapshotsInstalled;
    totals.checksum += r.stats.checksumMismatches;
    totals.acked += r.stats.writesAcknowledged;
    totals.failed += r.stats.writesFailed;
  }
  for (const [k, v] of Object.entries(totals)) assert.ok(v > 0, `no ${k} in 20 seeds`);
});

for (const [name, unsafe] of [
  ['vote without the up-to-date check', { skipUpToDateCheck: true }],
  ['majority counted over live nodes only', { majorityOfLiveNodes: true }],
  ['entries accepted without the MD5 check', { skipChecksum: true }],
] as const) {
  test(`the sweep finds a violation when a safety rule is weakened: ${name}`, () => {
    const lines: string[] = [];
    const summary = sweep({ seed: 1, seeds: 60, nodes: 0, steps: 300, verbose: false, unsafe, write: (l) => lines.push(l) });
    assert.ok(summary.failures.length > 0, `no violation found with ${JSON.stringify(unsafe)}`);
    assert.match(lines.join('\n'), /FAIL seed=\d+ .*invariant=/);
    assert.match(lines.join('\n'), /replay: replisql sim --seed \d+/);
  });
}

test('the sweep finds a violation when the driver breaks its ordering: acks and votes sent before the fsync', () => {
  const lines: string[] = [];
  const summary = sweep({ seed: 1, seeds: 100, nodes: 0, steps: 300, verbose: false, driverUnsafe: { sendBeforeSync: true }, write: (l) => lines.push(l) });
  assert.ok(summary.failures.length > 0, 'no violation found with sendBeforeSync');
  assert.ok(
    summary.failures.some((f) => f.violation?.invariant === 'promises-durable'),
    `a node lost what it acknowledged: ${lines.filter((l) => l.startsWith('FAIL')).slice(0, 3).join(' | ')}`,
  );
  // The same seeds pass with the production driver.
  const safe = sweep({ seed: 1, seeds: 100, nodes: 0, steps: 300, verbose: false, write: () => undefined });
  assert.equal(safe.failures.length, 0);
});

test('the simulator runs the production driver: crashes during fsync, delayed applies and held takeovers happen', () => {
  const seen = { tornCrashes: 0, heldTakeovers: 0 };
  for (let seed = 1; seed <= 30; seed++) {
    const r = runSimulation({ seed, nodes: 5, steps: 300 });
    assert.ok(r.ok, `seed ${seed}: ${JSON.stringify(r.violation)}`);
    seen.tornCrashes += r.stats.machineCrashes;
    seen.heldTakeovers += r.stats.takeoversHeld;
  }
  assert.ok(seen.tornCrashes > 0, 'no machine crash during an fsync in 30 seeds');
  assert.ok(seen.heldTakeovers > 0, 'no TAKEOVER held for a lagging database in 30 seeds');
});
