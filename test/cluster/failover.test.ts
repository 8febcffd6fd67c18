// Real processes, on each engine: kill -9 the coordinator (node 3). Node 2 takes over within the
// failure timeout plus a bounded election time and writes through node 1 keep working. Node 3
// restarts, catches up to identical content (on MariaDB also CHECKSUM TABLE), and takes the
// coordinator role back only once it has caught up (Bully priority, GUIDE §3 rule 3).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, runConcurrently, sleep, useCluster, type Cluster, type LogLine, type NodeStatus } from './harness.js';

async function insertMany(cluster: Cluster, via: number, from: number, count: number): Promise<void> {
  const c = await cluster.client(via);
  try {
    const res = await runConcurrently(count, 10, (i) => c.query('INSERT INTO kv (k, v) VALUES (?, ?)', [`k${from + i}`, from + i]));
    const failures = res.flatMap((r, i) => (r.status === 'rejected' ? [`k${from + i}: ${(r.reason as Error).message}`] : []));
    assert.deepEqual(failures, [], `every insert through node ${via} is acknowledged`);
  } finally {
    await cluster.closeClient(c);
  }
}

async function assertIdentical(cluster: Cluster, ids: readonly number[], expectedRows: number): Promise<void> {
  const dumps = await Promise.all(ids.map((id) => cluster.dump(id, 'kv', 'k')));
  assert.equal(dumps[0]!.length, expectedRows, `node ${ids[0]} has ${expectedRows} rows`);
  for (let i = 1; i < ids.length; i++) assert.deepEqual(dumps[i], dumps[0], `node ${ids[i]} is identical to node ${ids[0]}`);
  await cluster.assertSameChecksums(ids, ['kv']);
}

function becameCoordinator(cluster: Cluster, id: number, sinceLine: number): LogLine[] {
  return cluster.events(id, 'became-coordinator', sinceLine);
}

for (const engine of ENGINES) {
  describe(engine, () => {
    const fx = useCluster({ engine, nodes: 3 });

    test('coordinator killed: node 2 takes over in bounded time; node 3 restarts, catches up, then takes over again', { timeout: 120_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        const first = await cluster.waitForCoordinator(3);
        const c1 = await cluster.client(1);
        await c1.query(`CREATE TABLE kv (k ${cluster.dialect.key} PRIMARY KEY, v INTEGER NOT NULL)`);
        await cluster.closeClient(c1);
        await insertMany(cluster, 1, 0, 100);
        await cluster.waitCaughtUp([1, 2, 3], 3);
        await assertIdentical(cluster, [1, 2, 3], 100);

        // ---- kill -9 the coordinator
        const node2Mark = cluster.logLines(2).length;
        const killedAt = Date.now();
        await cluster.kill(3);
        const second = await cluster.waitForCoordinator(2, [1, 2], 30_000);
        const failoverMs = Date.now() - killedAt;
        const bound = cluster.failureTimeoutMs + 5000;
        const line = await cluster.waitForEvent(2, 'became-coordinator', { sinceLine: node2Mark });
        const loggedMs = Date.parse(line.time) - killedAt;
        process.stderr.write(`[failover ${engine}] node 2 coordinator ${loggedMs} ms after kill -9 of node 3 (seen via STATUS after ${failoverMs} ms; failureTimeoutMs ${cluster.failureTimeoutMs})\n`);
        assert.ok(failoverMs <= bound, `failover took ${failoverMs} ms, more than failureTimeoutMs + 5 s = ${bound} ms`);
        // Node 3 was last heard at most one heartbeat interval before the kill: node 2 must have waited
        // for the failure timeout from then on, not taken over early.
        const earliest = cluster.failureTimeoutMs - cluster.heartbeatIntervalMs - cluster.tickMs;
        assert.ok(loggedMs >= earliest, `node 2 took over ${loggedMs} ms after the kill, before the failure timeout could expire (${earliest} ms)`);
        assert.ok(second.term > first.term, `new term ${second.term} > ${first.term}`);

        // ---- writes through node 1 go to node 2 now
        await insertMany(cluster, 1, 100, 100);
        const clusterCommit = await cluster.waitCaughtUp([1, 2], 2);
        await assertIdentical(cluster, [1, 2], 200);

        // ---- restart node 3 and watch it: it must not lead before it has caught up
        const node3Mark = cluster.logLines(3).length;
        const samples: { atMs: number; s: NodeStatus }[] = [];
        const restartedAt = Date.now();
        await cluster.start(3);
        // Sample node 3's STATUS every ~10 ms until it reports itself leader.
        const watchDeadline = Date.now() + 40_000;
        while (Date.now() < watchDeadline && !samples.some((x) => x.s.role === 'leader')) {
          try {
            samples.push({ atMs: Date.now() - restartedAt, s: await cluster.status(3, 2000) });
          } catch {
            /* starting */
          }
          await sleep(10);
        }
        const takeoverMs = Date.now() - restartedAt;
        const third = await cluster.waitForCoordinator(3, [1, 2, 3], 30_000);
        process.stderr.write(`[failover ${engine}] restarted node 3 coordinator again after ${takeoverMs} ms (cluster commitIndex before restart ${clusterCommit})\n`);
        assert.ok(third.term > second.term, `takeover term ${third.term} > ${second.term}`);

        // Every STATUS sample of node 3 taken while it was leader shows it had caught up.
        const leaderSamples = samples.filter((x) => x.s.role === 'leader');
        assert.ok(leaderSamples.length > 0, 'at least one STATUS sample of node 3 as leader');
        const firstLeader = leaderSamples[0]!;
        assert.ok(
          firstLeader.s.appliedIndex >= clusterCommit,
          `node 3 was leader at ${firstLeader.atMs} ms with appliedIndex ${firstLeader.s.appliedIndex} < cluster commitIndex ${clusterCommit}`,
        );
        const behindAsLeader = leaderSamples.filter((x) => x.s.lastIndex < clusterCommit);
        assert.deepEqual(behindAsLeader, [], 'node 3 never led with a log behind the cluster');
        // Before it led, it did not disturb the cluster: its pre-votes (if any) were refused while node 2
        // was alive, so the only new term is the takeover's, and node 2 stepped down exactly once, for it.
        assert.equal(third.term, second.term + 1, `the takeover is the only election after node 3's restart`);
        const stepDowns = cluster.events(2, 'stepped-down', node2Mark);
        assert.equal(stepDowns.length, 1, `node 2 stepped down once: ${JSON.stringify(stepDowns.map((l) => l.msg))}`);
        assert.equal(stepDowns[0]!['term'], third.term);

        // Its log: it was asked to take over (caught up), and became coordinator once, with its applied
        // index at the cluster's commit index at that moment.
        await cluster.waitForEvent(3, 'became-coordinator', { sinceLine: node3Mark });
        const lines = becameCoordinator(cluster, 3, node3Mark);
        assert.equal(lines.length, 1, `node 3 became coordinator once after its restart: ${JSON.stringify(lines)}`);
        const became = lines[0]!;
        assert.equal(became['term'], third.term);
        assert.ok(cluster.events(3, 'takeover-requested', node3Mark, (l) => l['target'] === 3).length >= 1, 'node 3 took over on request of node 2');
        assert.ok(cluster.events(2, 'takeover-requested', node2Mark, (l) => l['target'] === 3).length >= 1, 'node 2 handed over to node 3');
        assert.equal(typeof became['appliedIndex'], 'number', 'the "became coordinator" line carries appliedIndex');
        assert.ok((became['appliedIndex'] as number) >= clusterCommit, `appliedIndex ${String(became['appliedIndex'])} when it became coordinator < cluster commitIndex ${clusterCommit}`);
        assert.ok((became['lastIndex'] as number) > clusterCommit, `lastIndex ${String(became['lastIndex'])} (with its own no-op) > cluster commitIndex ${clusterCommit}`);

        // ---- identical content everywhere, and node 3 coordinates new writes
        await cluster.waitCaughtUp([1, 2, 3], 3);
        await assertIdentical(cluster, [1, 2, 3], 200);
        await insertMany(cluster, 1, 200, 50);
        await cluster.waitCaughtUp([1, 2, 3], 3);
        await assertIdentical(cluster, [1, 2, 3], 250);
        const final = await cluster.statuses();
        for (const s of final.values()) assert.equal(s.coordinator, 3);
      });
    });
  });
}
