// Real processes, on each engine (SQLite; MariaDB): SIGSTOP the coordinator for longer than the
// failure timeout (a stalled VM, a long GC pause), let the others elect a new one and write, then
// SIGCONT it. The resumed node must not act as coordinator on its stale term: it steps down,
// catches up, and nothing acknowledged is lost.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, runConcurrently, useCluster, waitUntil } from './harness.js';

for (const engine of ENGINES) {
  describe(engine, () => {
    const fx = useCluster({ engine, nodes: 3 });

    test('SIGSTOP the coordinator past the failure timeout, write elsewhere, SIGCONT: no split brain, no lost write', { timeout: 120_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        const first = await cluster.waitForCoordinator(3);
        const c = await cluster.client([1, 2], { timeoutMs: 20_000 });
        await c.query(`CREATE TABLE kv (k ${cluster.dialect.key} PRIMARY KEY, v INTEGER NOT NULL)`);
        const acked: string[] = [];
        const write = async (k: string): Promise<void> => {
          await c.query('INSERT INTO kv (k, v) VALUES (?, ?)', [k, acked.length]);
          acked.push(k);
        };
        for (let i = 0; i < 20; i++) await write(`before-${i}`);
        await cluster.waitCaughtUp([1, 2, 3], 3);

        // A client connected to node 3 alone, to write to it the moment it resumes.
        const c3 = await cluster.client(3, { timeoutMs: 20_000, retries: 0 });
        await c3.ping();
        const mark3 = cluster.logLines(3).length;
        await cluster.pause(3);
        const pausedAt = Date.now();
        const second = await cluster.waitForCoordinator(2, [1, 2], 30_000);
        assert.ok(second.term > first.term);
        const res = await runConcurrently(50, 5, (i) => write(`paused-${i}`));
        assert.deepEqual(
          res.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)),
          [],
          'writes through nodes 1 and 2 succeed while node 3 is stopped',
        );
        const pausedMs = Date.now() - pausedAt;

        await cluster.resume(3);
        // Written to the stale coordinator the moment it resumes: whatever the answer, if it is an
        // acknowledgement the row must survive (it may also be refused or end as unknown outcome).
        const stale = await c3.query('INSERT INTO kv (k, v) VALUES (?, ?)', ['stale-0', -1]).then(
          () => 'acknowledged',
          (err: unknown) => (err as { code?: string }).code ?? String(err),
        );
        if (stale === 'acknowledged') acked.push('stale-0');
        // Node 3 learns the higher term and steps down (it may take the role back later, after catching up).
        await cluster.waitForEvent(3, 'stepped-down', { sinceLine: mark3, timeoutMs: 20_000 });
        const third = await cluster.waitForCoordinator(3, [1, 2, 3], 40_000);
        assert.ok(third.term > second.term, `node 3 coordinates again only in a new term (${third.term} > ${second.term})`);
        process.stderr.write(`[pause ${engine}] node 3 stopped for ${pausedMs} ms; node 2 led term ${second.term}; write to node 3 on resume: ${stale}; node 3 leads again in term ${third.term}\n`);

        for (let i = 0; i < 10; i++) await write(`after-${i}`);
        await cluster.waitCaughtUp([1, 2, 3], 3);
        const dumps = await Promise.all([1, 2, 3].map((id) => cluster.dump(id, 'kv', 'k')));
        const keys = new Set(dumps[2]!.map((r) => r[0] as string));
        assert.deepEqual(acked.filter((k) => !keys.has(k)), [], 'every acknowledged write is present');
        assert.equal(keys.size - (keys.has('stale-0') && stale !== 'acknowledged' ? 1 : 0), acked.length, 'no row that was not written');
        assert.deepEqual(dumps[0], dumps[2]);
        assert.deepEqual(dumps[1], dumps[2]);
        await cluster.assertSameChecksums([1, 2, 3], ['kv']);

        // While it was stopped node 3 could not write anything: the only coordinator of term
        // `second.term` was node 2, and no two nodes ever led the same term.
        const leadersByTerm = new Map<number, Set<number>>();
        for (const id of [1, 2, 3]) {
          for (const l of cluster.events(id, 'became-coordinator')) {
            const set = leadersByTerm.get(l['term'] as number) ?? new Set<number>();
            set.add(id);
            leadersByTerm.set(l['term'] as number, set);
          }
        }
        for (const [t, set] of leadersByTerm) assert.equal(set.size, 1, `one coordinator in term ${t}: ${[...set].join(', ')}`);
        assert.deepEqual([...(leadersByTerm.get(second.term) ?? [])], [2]);
        await waitUntil('all nodes to agree on node 3', async () => {
          const st = await cluster.statuses();
          return st.size === 3 && [...st.values()].every((s) => s.coordinator === 3 && s.term === third.term);
        });
      });
    });
  });
}
