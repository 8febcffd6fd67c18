// Real processes, on each engine (SQLite; MariaDB): with 2 of 3 nodes killed, the survivor refuses
// writes with NO_QUORUM once the failure timeout has passed, and still answers reads from its own
// database. A write sent right after the kill is refused too (never acknowledged), and writes work
// again once a majority is back.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, errorCode, useCluster, waitUntil } from './harness.js';

for (const engine of ENGINES) {
  describe(engine, () => {
    const fx = useCluster({ engine, nodes: 3 });

    test('2 of 3 nodes down: writes fail with NO_QUORUM after the failure timeout, reads still work on the survivor', { timeout: 90_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        await cluster.waitForCoordinator(3);
        const c1 = await cluster.client(1, { timeoutMs: 20_000 });
        await c1.query(`CREATE TABLE notes (id ${cluster.dialect.autoId}, body TEXT NOT NULL)`);
        for (let i = 0; i < 20; i++) await c1.query('INSERT INTO notes (body) VALUES (?)', [`note ${i}`]);
        await cluster.waitCaughtUp([1, 2, 3], 3);
        const before = await cluster.dump(1, 'notes', 'id');
        assert.equal(before.length, 20);

        const killedAt = Date.now();
        await Promise.all([cluster.kill(3), cluster.kill(2)]);

        // A write sent at once: node 1 still believes in coordinator 3 for up to the failure timeout.
        // It must not be acknowledged; it ends as a refusal or an unknown outcome.
        const early = await c1.query('INSERT INTO notes (body) VALUES (?)', ['early']).then(
          () => 'ACKNOWLEDGED',
          (err: unknown) => errorCode(err),
        );
        const earlyMs = Date.now() - killedAt;
        assert.ok(['NO_QUORUM', 'UNKNOWN_OUTCOME', 'NO_COORDINATOR'].includes(early), `early write ended with ${early}`);

        // Node 1 declares both peers offline after the failure timeout.
        const offline = await waitUntil(
          'node 1 to see nodes 2 and 3 offline',
          async () => {
            const s = await cluster.status(1);
            return s.nodes.filter((n) => n.id !== 1).every((n) => !n.online) ? s : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 50 },
        );
        const offlineMs = Date.now() - killedAt;
        // (They were last heard up to one heartbeat interval before the kill.)
        const earliest = cluster.failureTimeoutMs - cluster.heartbeatIntervalMs - cluster.tickMs;
        assert.ok(offlineMs >= earliest, `peers declared offline after ${offlineMs} ms, before the failure timeout`);
        assert.notEqual(offline.role, 'leader');

        // Now a write is refused with NO_QUORUM, promptly, and nothing is applied.
        for (let i = 0; i < 3; i++) {
          const t0 = Date.now();
          const err = await c1.query('INSERT INTO notes (body) VALUES (?)', [`refused ${i}`]).then(
            () => null,
            (e: unknown) => e as Error,
          );
          const ms = Date.now() - t0;
          assert.ok(err !== null, 'write without a majority is not acknowledged');
          assert.equal(errorCode(err), 'NO_QUORUM', `write refused with NO_QUORUM, got ${errorCode(err)}: ${err.message}`);
          assert.match(err.message, /majority/);
          assert.ok(ms < 3000, `NO_QUORUM answered in ${ms} ms`);
        }
        process.stderr.write(`[no-quorum ${engine}] early write: ${early} after ${earlyMs} ms; peers offline after ${offlineMs} ms; then NO_QUORUM\n`);

        // Reads still work on the survivor, with the data it had.
        const during = await cluster.dump(1, 'notes', 'id');
        assert.deepEqual(during, before);
        const s1 = await cluster.status(1);
        assert.equal(s1.healthy, true);
        assert.ok(cluster.events(1, 'peer-offline', 0, (l) => l['peer'] === 2).length >= 1, 'node 1 logged node 2 offline');
        assert.ok(cluster.events(1, 'peer-offline', 0, (l) => l['peer'] === 3).length >= 1, 'node 1 logged node 3 offline');

        // With a majority back (node 2), writes work again; the refused ones never appear.
        await cluster.start(2);
        await cluster.waitForCoordinator(2, [1, 2], 30_000);
        await c1.query('INSERT INTO notes (body) VALUES (?)', ['after']);
        await cluster.waitCaughtUp([1, 2], 2);
        const final = await cluster.dump(1, 'notes', 'id');
        const bodies = final.map((r) => r[1]);
        assert.ok(bodies.includes('after'));
        assert.ok(!bodies.some((b) => typeof b === 'string' && b.startsWith('refused')), 'no refused write was applied');
        if (early !== 'UNKNOWN_OUTCOME') assert.ok(!bodies.includes('early'), 'the refused early write was not applied');
        assert.deepEqual(await cluster.dump(2, 'notes', 'id'), final);
        await cluster.assertSameChecksums([1, 2], ['notes']);
      });
    });
  });
}
