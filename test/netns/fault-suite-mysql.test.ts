// The fault suite on MariaDB (CI): a 3-node cluster in network namespaces, each node on its own
// MariaDB server (reached through its unix socket), and the fault SQLite cannot have: kill -9 of a
// node's database server, then restarting it. Needs root, iproute2, nftables and MariaDB; skips with
// the reason otherwise, unless REPLISQL_REQUIRE_NETNS=1 (set by .ci/run), which makes it fail instead.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ensureBuilt } from '../cluster/harness.js';
import { netnsUnavailableReason } from '../../src/faults/netns.js';
import { FaultSession } from '../../src/faults/runner.js';

const reason = netnsUnavailableReason();
const required = process.env['REPLISQL_REQUIRE_NETNS'] === '1';
const skip = reason !== null && !required ? `network namespaces unavailable: ${reason}` : false;
const log = (line: string): void => void process.stderr.write(`  [faults mysql] ${line}\n`);

let session: FaultSession | null = null;

before(async () => {
  if (skip !== false) return;
  if (reason !== null) throw new Error(`REPLISQL_REQUIRE_NETNS=1 but network namespaces are unavailable: ${reason}`);
  ensureBuilt();
  session = await FaultSession.open({ nodes: 3, heartbeatIntervalMs: 1000, failureTimeoutMs: 5000, seed: 9, log, engine: 'mysql' });
});

after(async () => {
  await session?.close();
});

for (const [workload, faults] of [
  ['set', ['db-kill', 'isolate-coordinator']],
  ['bank', ['db-kill', 'kill']],
] as const) {
  test(`faults on MariaDB: ${workload} stays valid while nodes' database servers are killed (${faults.join(', ')})`, { skip, timeout: 180_000 }, async () => {
    const s = session!;
    const before = s.nemesis.events.length;
    const row = await s.runWorkload({ workload, faults: [...faults], durationS: 24, faultS: 6, quietS: 4, concurrency: 4, historyDir: null });
    log(`${workload}: ${row.operations} ops, ${row.acknowledged} acknowledged, ${row.unknown} unknown, ${row.failed} failed, ${row.violations} violations -> ${row.verdict}`);
    const applied = s.nemesis.events.slice(before).filter((e) => e.kind === 'fault').map((e) => e.fault);
    for (const f of faults) assert.ok(applied.includes(f), `fault ${f} was never applied (${applied.join(',')})`);
    assert.equal(row.violations, 0, row.details.join('\n'));
    assert.equal(row.verdict, 'valid', row.details.join('\n'));
    assert.ok(row.acknowledged > 20, `only ${row.acknowledged} operations acknowledged`);
  });
}
