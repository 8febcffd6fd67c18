// Read consistency on real processes (SQLite, the default 2 s heartbeat): a write is visible to a new
// connection on the node that acknowledged it at once, and on every node of an idle cluster long
// before the next heartbeat; linearizable and bounded reads through the JSON protocol and the MySQL
// front end; bad levels are refused with a clear error.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import { ErrorCode, type ReplisqlError } from '../../src/errors.js';
import { useCluster } from './harness.js';

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

describe('read consistency (3 nodes, heartbeat 2 s)', () => {
  const fx = useCluster({ engine: 'sqlite', nodes: 3, heartbeatIntervalMs: 2000, failureTimeoutMs: 10_000, mysqlFrontEnd: true });

  test('a row acknowledged through any node is visible to a new connection there at once, and on every node within a round trip', { timeout: 120_000 }, async (t) => {
    const cluster = fx.take(t);
    if (cluster === null) return;
    await cluster.check(async () => {
      await cluster.waitForCoordinator(3);
      const writer = await cluster.client(1);
      await writer.query('CREATE TABLE seen (id INTEGER PRIMARY KEY, via INTEGER NOT NULL)');
      await cluster.waitCaughtUp([1, 2, 3], 3);
      const readers = new Map<number, Awaited<ReturnType<typeof cluster.client>>>();
      for (const id of [1, 2, 3]) readers.set(id, await cluster.client(id));
      const delays: number[] = [];
      let n = 0;
      for (let round = 0; round < 4; round++) {
        for (const via of [1, 2, 3]) {
          n++;
          const c = await cluster.client(via);
          await c.query('INSERT INTO seen (id, via) VALUES (?, ?)', [n, via]);
          const acked = performance.now();
          // A new connection on the node that said OK sees the row, at the weakest level.
          const fresh = await cluster.client(via);
          const here = await fresh.query('SELECT via FROM seen WHERE id = ?', [n], { consistency: 'local' });
          assert.deepEqual(here[0]?.rows, [[via]], `row ${n} visible on node ${via}, which acknowledged it`);
          await fresh.close();
          await c.close();
          // Every other node applies it long before the next heartbeat (2 s).
          for (const other of [1, 2, 3].filter((id) => id !== via)) {
            const r = readers.get(other)!;
            for (;;) {
              const rows = (await r.query('SELECT via FROM seen WHERE id = ?', [n], { consistency: 'local' }))[0]?.rows ?? [];
              if (rows.length === 1) break;
              if (performance.now() - acked > 5000) assert.fail(`row ${n} not visible on node ${other} 5 s after it was acknowledged`);
              await new Promise((r) => setTimeout(r, 2));
            }
            delays.push(performance.now() - acked);
          }
          // Idle between rounds, so that the next write finds the cluster idle.
          await new Promise((r) => setTimeout(r, 150));
        }
      }
      const max = Math.max(...delays);
      process.stderr.write(`[consistency] visible on the other nodes after: median ${median(delays).toFixed(1)} ms, max ${max.toFixed(1)} ms (${delays.length} samples)\n`);
      assert.ok(median(delays) < 100, `median visibility delay ${median(delays).toFixed(1)} ms (must be well under the 2 s heartbeat)`);
      assert.ok(max < 1000, `max visibility delay ${max.toFixed(1)} ms (a heartbeat is 2000 ms)`);
      await writer.close();
    });
  });

  test('linearizable and bounded reads on followers see the writes acknowledged before them; bad levels are refused', { timeout: 120_000 }, async (t) => {
    const cluster = fx.take(t);
    if (cluster === null) return;
    await cluster.check(async () => {
      await cluster.waitForCoordinator(3);
      const w = await cluster.client(2);
      await w.query('CREATE TABLE reg (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)');
      await w.query('INSERT INTO reg (k, v) VALUES (1, 0)');
      const r1 = await cluster.client(1);
      for (let i = 1; i <= 30; i++) {
        await w.query('UPDATE reg SET v = ? WHERE k = 1', [i]);
        const lin = await r1.query('SELECT v FROM reg WHERE k = 1', [], { consistency: 'linearizable' });
        assert.deepEqual(lin[0]?.rows, [[i]], `linearizable read on node 1 after write ${i} on node 2`);
        const bounded = await r1.query('SELECT v FROM reg WHERE k = 1', [], { consistency: 'bounded', maxStalenessMs: 0 });
        assert.deepEqual(bounded[0]?.rows, [[i]], `bounded (0 ms) read on node 1 after write ${i}`);
      }
      await assert.rejects(r1.query('SELECT 1', [], { consistency: 'eventual' as never }), (e: unknown) => {
        assert.equal((e as ReplisqlError).code, ErrorCode.BAD_REQUEST);
        assert.match((e as Error).message, /unknown read consistency "eventual".*local, session, bounded, linearizable/);
        return true;
      });
      await assert.rejects(r1.query('SELECT 1', [], { consistency: 'bounded', maxStalenessMs: -5 }), (e: unknown) => {
        assert.equal((e as ReplisqlError).code, ErrorCode.BAD_REQUEST);
        assert.match((e as Error).message, /maxStalenessMs must be an integer number of milliseconds/);
        return true;
      });
      await w.close();
      await r1.close();
    });
  });

  test('ack all-applied: once a write is acknowledged, every node answers it even at the local level', { timeout: 60_000 }, async (t) => {
    const cluster = fx.take(t);
    if (cluster === null) return;
    await cluster.check(async () => {
      await cluster.waitForCoordinator(3);
      const w = await cluster.client(1);
      await w.query('CREATE TABLE aa (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)');
      await w.query('INSERT INTO aa (k, v) VALUES (1, 0)');
      const readers = await Promise.all([2, 3].map((id) => cluster.client(id)));
      for (let i = 1; i <= 25; i++) {
        await w.query('UPDATE aa SET v = ? WHERE k = 1', [i], { ack: 'all-applied' });
        // Both reads are sent at once, right after the acknowledgement: no time for a later apply.
        const seen = await Promise.all(readers.map((r) => r.query('SELECT v FROM aa WHERE k = 1', [], { consistency: 'local' })));
        assert.deepEqual(seen.map((s) => s[0]?.rows), [[[i]], [[i]]], `write ${i} (all-applied) is on nodes 2 and 3 when acknowledged`);
      }
      await assert.rejects(w.query('UPDATE aa SET v = 0', [], { ack: 'everyone' as never }), /unknown ack level "everyone"/);
      for (const r of readers) await r.close();
      await w.close();
    });
  });

  test('MySQL front end: SET SESSION replisql_read_consistency; linearizable reads through a follower; a bad value is refused', { timeout: 60_000 }, async (t) => {
    const cluster = fx.take(t);
    if (cluster === null) return;
    await cluster.check(async () => {
      await cluster.waitForCoordinator(3);
      const open = async (id: number): Promise<mysql.Connection> => {
        const { host, port } = cluster.mysqlAddress(id);
        const c = await mysql.createConnection({ host, port, user: 'app', password: 'secret', database: 'main' });
        c.on('error', () => undefined);
        t.after(() => c.destroy());
        return c;
      };
      const writer = await open(2);
      const reader = await open(1);
      await writer.query('CREATE TABLE IF NOT EXISTS my_reg (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)');
      await writer.query('INSERT INTO my_reg (k, v) VALUES (1, 0)');
      await reader.query("SET SESSION replisql_read_consistency = 'linearizable'");
      const [level] = await reader.query('SELECT @@replisql_read_consistency AS level');
      assert.deepEqual(level, [{ level: 'linearizable' }]);
      for (let i = 1; i <= 20; i++) {
        await writer.query('UPDATE my_reg SET v = ? WHERE k = 1', [i]);
        const [rows] = await reader.query('SELECT v FROM my_reg WHERE k = 1');
        assert.deepEqual(rows, [{ v: i }], `linearizable read through node 1's MySQL port after write ${i} through node 2`);
      }
      await assert.rejects(reader.query("SET SESSION replisql_read_consistency = 'sometimes'"), (e: unknown) => {
        assert.match((e as Error).message, /unknown read consistency "sometimes".*expected one of local, session, bounded, linearizable/);
        return true;
      });
      const [still] = await reader.query('SELECT @@replisql_read_consistency AS level');
      assert.deepEqual(still, [{ level: 'linearizable' }], 'a refused SET changes nothing');
      // The write option, as a session variable: acknowledged once every online node applied it.
      await writer.query("SET SESSION replisql_write_ack = 'all-applied'");
      const [ack] = await writer.query('SELECT @@replisql_write_ack AS ack');
      assert.deepEqual(ack, [{ ack: 'all-applied' }]);
      const local3 = await open(3);
      await local3.query("SET SESSION replisql_read_consistency = 'local'");
      for (let i = 100; i < 110; i++) {
        await writer.query('UPDATE my_reg SET v = ? WHERE k = 1', [i]);
        const [rows] = await local3.query('SELECT v FROM my_reg WHERE k = 1');
        assert.deepEqual(rows, [{ v: i }], `all-applied write ${i} through node 2 is on node 3 when acknowledged`);
      }
      await assert.rejects(writer.query("SET SESSION replisql_write_ack = 'twice'"), /unknown ack level "twice".*one, quorum, all, all-applied/);
    });
  });
});
