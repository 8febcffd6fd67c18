// Real processes, on each engine: a ~10 s read on the coordinator, with a failure timeout of 1.5 s.
// SQLite runs in worker threads and MariaDB in its own server (the node only waits on a pooled
// connection), so the node keeps sending heartbeats and committing writes: no node may log a peer
// going offline, nobody starts an election, and writes keep being acknowledged.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, sleep, useCluster, type EngineName } from './harness.js';

const TARGET_QUERY_MS = 10_000;

/** A CPU-bound read whose duration grows with `n`, and the rows it returns. */
function longRead(engine: EngineName, n: number): { sql: string; rows: unknown[][] } {
  return engine === 'mysql'
    ? { sql: `SELECT BENCHMARK(${n}, MD5('replisql'))`, rows: [[0]] }
    : { sql: `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT ${n}) SELECT count(*) FROM c`, rows: [[n]] };
}

for (const engine of ENGINES) {
  describe(engine, () => {
    const fx = useCluster({ engine, nodes: 3 });

    test('a 10-second read on the coordinator: no peer goes offline, no election, writes keep committing', { timeout: 120_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        const leader = await cluster.waitForCoordinator(3);
        const setup = await cluster.client(1);
        await setup.query(`CREATE TABLE ticks (id ${cluster.dialect.autoId}, v ${cluster.dialect.key} NOT NULL UNIQUE)`);
        await cluster.closeClient(setup);

        const marks = new Map([1, 2, 3].map((id) => [id, cluster.logLines(id).length]));
        const writer = await cluster.client([1, 2], { timeoutMs: 20_000 });
        const acks: number[] = [];
        const failures: string[] = [];
        let writing = true;
        let seq = 0;
        const lane = async (): Promise<void> => {
          while (writing) {
            const v = `w${seq++}`;
            try {
              await writer.query('INSERT INTO ticks (v) VALUES (?)', [v]);
              acks.push(Date.now());
            } catch (err) {
              failures.push(`${v}: ${(err as Error).message}`);
            }
            await sleep(20);
          }
        };
        const statusSamples: { atMs: number; id: number; coordinator: number | null; term: number }[] = [];
        const watcher = (async () => {
          while (writing) {
            for (const [id, s] of await cluster.statuses()) statusSamples.push({ atMs: Date.now(), id, coordinator: s.coordinator, term: s.term });
            await sleep(250);
          }
        })();
        const lanes = [lane(), lane()];

        // Calibrate the query, under the same write load, so that it takes about TARGET_QUERY_MS on
        // this machine.
        const reader = await cluster.client(3, { timeoutMs: 120_000 });
        let rows = engine === 'mysql' ? 200_000 : 2_000_000;
        let calMs = 0;
        for (;;) {
          const t0 = Date.now();
          await reader.query(longRead(engine, rows).sql);
          calMs = Date.now() - t0;
          if (calMs >= 800 || rows >= 100_000_000) break;
          rows *= 4;
        }
        const longRows = Math.min(500_000_000, Math.ceil((rows * TARGET_QUERY_MS) / Math.max(calMs, 1)));

        const queryStart = Date.now();
        const result = await reader.query(longRead(engine, longRows).sql);
        const queryEnd = Date.now();
        writing = false;
        await Promise.all([...lanes, watcher]);
        const queryMs = queryEnd - queryStart;

        assert.deepEqual(result[0]?.rows, longRead(engine, longRows).rows, 'the long query returned its result');
        const during = acks.filter((t) => t >= queryStart && t <= queryEnd);
        const points = [queryStart, ...during, queryEnd];
        let maxGapMs = 0;
        for (let i = 1; i < points.length; i++) maxGapMs = Math.max(maxGapMs, points[i]! - points[i - 1]!);
        process.stderr.write(
          `[long-query ${engine}] ${engine === 'mysql' ? `BENCHMARK(${longRows})` : `${longRows} rows counted`} in ${queryMs} ms on the coordinator (calibration: ${rows} in ${calMs} ms); ` +
            `${during.length} writes acknowledged meanwhile, longest gap ${maxGapMs} ms; failureTimeoutMs ${cluster.failureTimeoutMs}\n`,
        );

        assert.ok(queryMs >= cluster.failureTimeoutMs * 4, `the query ran ${queryMs} ms, well above the failure timeout of ${cluster.failureTimeoutMs} ms`);
        assert.deepEqual(failures, [], 'no write failed during the long query');
        assert.ok(during.length >= 20, `writes kept committing during the query (${during.length})`);
        assert.ok(maxGapMs < cluster.failureTimeoutMs, `no pause in acknowledgements as long as the failure timeout (longest ${maxGapMs} ms)`);

        for (const id of [1, 2, 3]) {
          const since = marks.get(id)!;
          assert.deepEqual(cluster.events(id, 'peer-offline', since).map((l) => l.msg), [], `node ${id} logged no peer going offline`);
          assert.deepEqual([...cluster.events(id, 'election-started', since), ...cluster.events(id, 'stepped-down', since), ...cluster.events(id, 'coordinator-changed', since, (l) => l['coordinator'] === null)].map((l) => l.msg), [], `node ${id} logged no election`);
        }
        const changed = statusSamples.filter((x) => x.coordinator !== 3 || x.term !== leader.term);
        assert.deepEqual(changed, [], 'every node saw node 3 as coordinator in the same term throughout');
        assert.ok(statusSamples.length >= 3 * 10, `STATUS was answered by every node during the query (${statusSamples.length} samples)`);

        await cluster.waitCaughtUp([1, 2, 3], 3);
        const dumps = await Promise.all([1, 2, 3].map((id) => cluster.dump(id, 'ticks', 'id')));
        assert.equal(dumps[2]!.length, acks.length);
        assert.deepEqual(dumps[0], dumps[2]);
        assert.deepEqual(dumps[1], dumps[2]);
        await cluster.assertSameChecksums([1, 2, 3], ['ticks']);
      });
    });
  });
}
