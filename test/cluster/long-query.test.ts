// Real processes: a ~10 s SQLite read on the coordinator, with a failure timeout of 1.5 s. SQLite
// runs in worker threads, so the node keeps sending heartbeats and committing writes: no node may
// log a peer going offline, nobody starts an election, and writes keep being acknowledged.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, sleep } from './harness.js';

let cluster: Cluster;

before(async () => {
  cluster = await Cluster.create({ nodes: 3 });
});

after(async () => {
  await cluster?.shutdown();
});

const TARGET_QUERY_MS = 10_000;
const countQuery = (rows: number): string => `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT ${rows}) SELECT count(*) FROM c`;

test('a 10-second read on the coordinator: no peer goes offline, no election, writes keep committing', { timeout: 120_000 }, async () => {
  await cluster.check(async () => {
    const leader = await cluster.waitForCoordinator(3);
    const setup = await cluster.client(1);
    await setup.query('CREATE TABLE ticks (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)');
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

    // Calibrate the recursive count, under the same write load, so that it takes about
    // TARGET_QUERY_MS on this machine.
    const reader = await cluster.client(3, { timeoutMs: 120_000 });
    let rows = 2_000_000;
    let calMs = 0;
    for (;;) {
      const t0 = Date.now();
      await reader.query(countQuery(rows));
      calMs = Date.now() - t0;
      if (calMs >= 800 || rows >= 100_000_000) break;
      rows *= 4;
    }
    const longRows = Math.min(500_000_000, Math.ceil((rows * TARGET_QUERY_MS) / Math.max(calMs, 1)));

    const queryStart = Date.now();
    const result = await reader.query(countQuery(longRows));
    const queryEnd = Date.now();
    writing = false;
    await Promise.all([...lanes, watcher]);
    const queryMs = queryEnd - queryStart;

    assert.deepEqual(result[0]?.rows, [[longRows]], 'the long query returned its count');
    const during = acks.filter((t) => t >= queryStart && t <= queryEnd);
    const points = [queryStart, ...during, queryEnd];
    let maxGapMs = 0;
    for (let i = 1; i < points.length; i++) maxGapMs = Math.max(maxGapMs, points[i]! - points[i - 1]!);
    process.stderr.write(
      `[long-query] ${longRows} rows counted in ${queryMs} ms on the coordinator (calibration: ${rows} in ${calMs} ms); ` +
        `${during.length} writes acknowledged meanwhile, longest gap ${maxGapMs} ms; failureTimeoutMs ${cluster.failureTimeoutMs}\n`,
    );

    assert.ok(queryMs >= cluster.failureTimeoutMs * 4, `the query ran ${queryMs} ms, well above the failure timeout of ${cluster.failureTimeoutMs} ms`);
    assert.deepEqual(failures, [], 'no write failed during the long query');
    assert.ok(during.length >= 20, `writes kept committing during the query (${during.length})`);
    assert.ok(maxGapMs < cluster.failureTimeoutMs, `no pause in acknowledgements as long as the failure timeout (longest ${maxGapMs} ms)`);

    for (const id of [1, 2, 3]) {
      const since = marks.get(id)!;
      assert.deepEqual(cluster.logMatches(id, /is offline/, since).map((l) => l.msg), [], `node ${id} logged no peer going offline`);
      assert.deepEqual(cluster.logMatches(id, /election|stepped down|no coordinator/, since).map((l) => l.msg), [], `node ${id} logged no election`);
    }
    const changed = statusSamples.filter((x) => x.coordinator !== 3 || x.term !== leader.term);
    assert.deepEqual(changed, [], 'every node saw node 3 as coordinator in the same term throughout');
    assert.ok(statusSamples.length >= 3 * 10, `STATUS was answered by every node during the query (${statusSamples.length} samples)`);

    await cluster.waitCaughtUp([1, 2, 3], 3);
    const dumps = await Promise.all([1, 2, 3].map((id) => cluster.dump(id, 'ticks', 'id')));
    assert.equal(dumps[2]!.length, acks.length);
    assert.deepEqual(dumps[0], dumps[2]);
    assert.deepEqual(dumps[1], dumps[2]);
  });
});
