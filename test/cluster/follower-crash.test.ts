// Real processes, on each engine (SQLite; MariaDB): kill -9 a follower in the middle of a stream of
// concurrent writes from several clients spread over the nodes (with failover lists), restart it,
// and check that every acknowledged row is on every node, that no row was applied twice, and that
// the nodes are identical.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, errorCode, sleep, useCluster, waitUntil } from './harness.js';

const CLIENTS = 4;
const WRITES_PER_CLIENT = 150;
const IN_FLIGHT_PER_CLIENT = 4;
/** Pause between two writes of one lane: spreads the stream over a few seconds (kill and restart inside it). */
const LANE_PAUSE_MS = 100;
/** Outcomes a write may end with while a node dies: it may or may not have been applied. */
const UNCERTAIN = new Set(['UNKNOWN_OUTCOME', 'NO_COORDINATOR', 'UNAVAILABLE']);

for (const engine of ENGINES) {
  describe(engine, () => {
    const fx = useCluster({ engine, nodes: 3 });

    test('kill -9 a follower during concurrent writes: every acknowledged row survives, none twice, nodes identical', { timeout: 120_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        await cluster.waitForCoordinator(3);
        const setup = await cluster.client(1);
        // No UNIQUE constraint on v: a write applied twice would show up as a duplicate value.
        await setup.query(`CREATE TABLE events (id ${cluster.dialect.autoId}, client INTEGER NOT NULL, seq INTEGER NOT NULL, v TEXT NOT NULL)`);
        await cluster.closeClient(setup);

        // Client i starts on node (i % 3) + 1 and fails over to the others.
        const clients = await Promise.all(
          Array.from({ length: CLIENTS }, (_, i) => {
            const first = (i % 3) + 1;
            const order = [first, ...[1, 2, 3].filter((x) => x !== first)];
            return cluster.client(order, { timeoutMs: 20_000, retries: 8 });
          }),
        );

        const acked = new Set<string>();
        const uncertain = new Map<string, string>();
        const unexpected: string[] = [];
        let duplicates = 0;
        const writer = async (ci: number): Promise<void> => {
          const c = clients[ci]!;
          let next = 0;
          const lane = async (): Promise<void> => {
            for (;;) {
              const seq = next++;
              if (seq >= WRITES_PER_CLIENT) return;
              const v = `c${ci}-s${seq}`;
              try {
                const r = await c.queryDetailed('INSERT INTO events (client, seq, v) VALUES (?, ?, ?)', [ci, seq, v]);
                assert.equal(r.results[0]?.affectedRows, 1);
                if (r.duplicate) duplicates++;
                acked.add(v);
              } catch (err) {
                const code = errorCode(err);
                if (UNCERTAIN.has(code)) uncertain.set(v, code);
                else unexpected.push(`${v}: ${code}: ${(err as Error).message}`);
              }
              await sleep(LANE_PAUSE_MS);
            }
          };
          await Promise.all(Array.from({ length: IN_FLIGHT_PER_CLIENT }, () => lane()));
        };

        const started = Date.now();
        const stream = Promise.all(Array.from({ length: CLIENTS }, (_, i) => writer(i)));
        const total = CLIENTS * WRITES_PER_CLIENT;

        // Kill follower 1 once a sixth of the writes is acknowledged; restart it after the failure timeout.
        await waitUntil('a sixth of the writes acknowledged', () => acked.size >= total / 6, { timeoutMs: 60_000, intervalMs: 5 });
        const ackedAtKill = acked.size;
        const mark3 = cluster.logLines(3).length;
        await cluster.kill(1);
        const killedAt = Date.now();
        // Leave it down for more than one failure timeout, so that the others declare it offline.
        await cluster.waitForEvent(3, 'peer-offline', { sinceLine: mark3, where: (l) => l['peer'] === 1, timeoutMs: 30_000 });
        const downFor = Date.now() - killedAt;
        if (downFor < cluster.failureTimeoutMs + 300) await sleep(cluster.failureTimeoutMs + 300 - downFor);
        const ackedWhileDown = acked.size - ackedAtKill;
        await cluster.start(1);
        const ackedAtRestart = acked.size;
        await stream;
        const elapsedMs = Date.now() - started;
        process.stderr.write(
          `[follower-crash ${engine}] ${total} writes by ${CLIENTS} clients in ${elapsedMs} ms: ${acked.size} acknowledged (${ackedWhileDown} while node 1 was down), ` +
            `${acked.size - ackedAtRestart} after its restart, ${uncertain.size} uncertain ${JSON.stringify([...new Set(uncertain.values())])}, ${duplicates} answered as duplicates\n`,
        );
        assert.deepEqual(unexpected, [], 'no write failed with anything but an uncertain outcome');
        assert.ok(ackedWhileDown > 0, 'writes were acknowledged while node 1 was down');
        assert.ok(acked.size >= total * 0.9, `most writes acknowledged (${acked.size} of ${total})`);

        // Node 1 catches up; then every node has the same rows.
        await cluster.waitForCoordinator(3, [1, 2, 3]);
        await cluster.waitCaughtUp([1, 2, 3], 3, 60_000);
        const dumps = await Promise.all([1, 2, 3].map((id) => cluster.dump(id, 'events', 'id')));
        assert.deepEqual(dumps[0], dumps[2], 'node 1 is identical to node 3');
        assert.deepEqual(dumps[1], dumps[2], 'node 2 is identical to node 3');
        await cluster.assertSameChecksums([1, 2, 3], ['events']);

        const values = dumps[2]!.map((r) => r[3] as string);
        const seen = new Set<string>();
        const twice = values.filter((v) => (seen.has(v) ? true : (seen.add(v), false)));
        assert.deepEqual(twice, [], 'no row appears twice');
        const missing = [...acked].filter((v) => !seen.has(v));
        assert.deepEqual(missing, [], 'every acknowledged row is present');
        const unknown = values.filter((v) => !acked.has(v) && !uncertain.has(v));
        assert.deepEqual(unknown, [], 'every row present was written by this test');
        // (client, seq) matches v on every row.
        for (const r of dumps[2]!) assert.equal(r[3], `c${String(r[1])}-s${String(r[2])}`);

        // The counts agree with the table's own view.
        const counts = await cluster.query(1, 'SELECT count(*), count(DISTINCT v) FROM events');
        assert.deepEqual(counts, [[values.length, values.length]]);
      });
    });
  });
}
