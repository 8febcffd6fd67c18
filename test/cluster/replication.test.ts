// Real processes, on each engine (SQLite files; one MariaDB instance per node): a 3-node cluster
// elects node 3 (highest id), and 1,000 rows written through node 1 are read back identically on
// every node once each has applied the coordinator's commitIndex (on MariaDB also CHECKSUM TABLE,
// read from each instance directly).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, runConcurrently, useCluster } from './harness.js';

for (const engine of ENGINES) {
  describe(engine, () => {
    const fx = useCluster({ engine, nodes: 3 });

    test('node 3 becomes coordinator; 1,000 rows inserted via node 1 are identical on nodes 1, 2 and 3', { timeout: 90_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        const leader = await cluster.waitForCoordinator(3);
        // (Node 2 may win the very first election if node 3 starts late, and then hand over: look at the
        // logs only from here on.)
        const marks = new Map([1, 2, 3].map((id) => [id, cluster.logLines(id).length]));
        assert.equal(leader.nodeId, 3);
        assert.equal(leader.role, 'leader');

        const c1 = await cluster.client(1);
        await c1.query(`CREATE TABLE items (id ${cluster.dialect.autoId}, k ${cluster.dialect.key} NOT NULL UNIQUE, n INTEGER NOT NULL, note TEXT)`);

        const started = Date.now();
        const results = await runConcurrently(1000, 20, (i) => c1.query('INSERT INTO items (k, n, note) VALUES (?, ?, ?)', [`key-${i}`, i, i % 7 === 0 ? null : `note ${i}`]));
        const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`#${i}: ${(r.reason as Error).message}`] : []));
        assert.deepEqual(failures, [], 'every insert through node 1 is acknowledged');
        for (const r of results) {
          assert.equal(r.status, 'fulfilled');
          if (r.status === 'fulfilled') assert.equal(r.value[0]?.affectedRows, 1);
        }
        const elapsedMs = Date.now() - started;
        process.stderr.write(`[replication ${engine}] 1000 inserts via node 1 (20 in flight): ${elapsedMs} ms\n`);

        const commitIndex = await cluster.waitCaughtUp([1, 2, 3], 3);
        assert.ok(commitIndex >= 1001, `commitIndex ${commitIndex} covers the table and 1,000 inserts`);

        const expected = Array.from({ length: 1000 }, (_, i) => [`key-${i}`, i, i % 7 === 0 ? null : `note ${i}`]);
        const dumps = new Map<number, unknown[][]>();
        for (const id of [1, 2, 3]) dumps.set(id, await cluster.dump(id, 'items', 'k'));
        const d3 = dumps.get(3)!;
        assert.equal(d3.length, 1000);
        assert.deepEqual(
          d3.map((r) => r.slice(1)).sort((a, b) => (a[1] as number) - (b[1] as number)),
          expected,
          'the coordinator has exactly the rows written',
        );
        assert.deepEqual(dumps.get(1), d3, 'node 1 is identical to the coordinator');
        assert.deepEqual(dumps.get(2), d3, 'node 2 is identical to the coordinator');
        // The ids the coordinator assigned are 1..1000 everywhere (the dumps include them).
        assert.deepEqual(d3.map((r) => r[0]).sort((a, b) => (a as number) - (b as number)), Array.from({ length: 1000 }, (_, i) => i + 1));
        await cluster.assertSameChecksums([1, 2, 3], ['items']);

        // Nobody left the cluster or started an election while it was healthy.
        for (const id of [1, 2, 3]) {
          assert.deepEqual(cluster.events(id, 'peer-offline', marks.get(id)).map((l) => l.msg), [], `node ${id} saw no peer go offline`);
          assert.deepEqual([...cluster.events(id, 'stepped-down', marks.get(id)), ...cluster.events(id, 'election-started', marks.get(id))].map((l) => l.msg), [], `node ${id} logged no election`);
        }
        const st = await cluster.statuses();
        for (const s of st.values()) assert.deepEqual([s.coordinator, s.term], [3, leader.term]);
      });
    });
  });
}
