// Interactive transactions (BEGIN ... COMMIT) over the JSON client protocol, on real processes and
// each engine: the statements run as one session on the coordinator, reads see the transaction's
// own writes, COMMIT logs the writes as ONE entry, ROLLBACK leaves nothing, concurrent
// read-modify-write transactions from different nodes serialize, a failing statement is undone
// alone, an idle transaction is rolled back, and a coordinator killed mid-transaction gives
// TRANSACTION_ABORTED with nothing of the transaction committed anywhere.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, ReplisqlError } from '../../src/errors.js';
import { spawnSync } from 'node:child_process';
import { BIN, ENGINES, errorCode, useCluster, waitUntil } from './harness.js';

/** What each engine reports, as the JSON protocol's `error.sql` carries it. */
const DUPLICATE_KEY = {
  sqlite: { engineCode: 'SQLITE_CONSTRAINT_UNIQUE' },
  mysql: { engineCode: 'ER_DUP_ENTRY', errno: 1062, sqlState: '23000' },
} as const;
const NO_SUCH_TABLE = {
  sqlite: { engineCode: 'SQLITE_ERROR' },
  mysql: { engineCode: 'ER_NO_SUCH_TABLE', errno: 1146, sqlState: '42S02' },
} as const;

for (const engine of ENGINES) {
  describe(`${engine}: interactive transactions over the JSON protocol`, () => {
    const fx = useCluster({ engine, nodes: 3, transactionIdleTimeoutMs: 1500 });

    test('commit via a follower is one log entry and visible everywhere; reads inside see own writes; rollback leaves nothing', { timeout: 90_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        await cluster.waitForCoordinator(3);
        const c1 = await cluster.client(1);
        await c1.query(`CREATE TABLE acct (id INTEGER PRIMARY KEY, owner ${cluster.dialect.key} NOT NULL UNIQUE, balance INTEGER NOT NULL)`);
        await c1.query("INSERT INTO acct (id, owner, balance) VALUES (1, 'ann', 100), (2, 'bob', 50)");
        await cluster.waitCaughtUp([1, 2, 3], 3);
        const before = (await cluster.status(3)).commitIndex;

        await c1.query('BEGIN');
        assert.equal(c1.inTransaction, true, 'the node says the session is in a transaction');
        await c1.query('UPDATE acct SET balance = balance - 30 WHERE id = 1');
        await c1.query('UPDATE acct SET balance = balance + 30 WHERE id = 2');
        const inside = await c1.query('SELECT id, balance FROM acct ORDER BY id');
        assert.deepEqual(inside[0]?.rows, [[1, 70], [2, 80]], 'reads inside the transaction see its writes');
        // Another client (on node 2) does not see uncommitted writes.
        const c2 = await cluster.client(2);
        assert.deepEqual((await c2.query('SELECT balance FROM acct ORDER BY id'))[0]?.rows, [[100], [50]]);
        // Duplicate key inside the transaction: that statement fails alone, the transaction goes on.
        // The database's own code travels as fields (docs/errors.md), not inside the message.
        await assert.rejects(c1.query("INSERT INTO acct (id, owner, balance) VALUES (3, 'ann', 1)"), (e: unknown) => {
          assert.equal(errorCode(e), ErrorCode.SQL_ERROR);
          assert.deepEqual((e as ReplisqlError).sql, DUPLICATE_KEY[engine], 'the duplicate key inside a transaction');
          assert.doesNotMatch((e as Error).message, /^(ER_|SQLITE_)/, 'no code packed into the message');
          return true;
        });
        assert.equal(c1.inTransaction, true, 'a statement error does not end the transaction');
        await c1.query("INSERT INTO acct (id, owner, balance) VALUES (3, 'cy', 7)");
        await c1.query('COMMIT');
        assert.equal(c1.inTransaction, false);
        const after = (await cluster.status(3)).commitIndex;
        assert.equal(after - before, 1, 'the transaction was replicated as exactly one log entry');
        // The same error for an autocommit write through a follower (executed on the coordinator; it
        // would wait behind an open transaction, which holds the only writer) ...
        await assert.rejects(c2.query("INSERT INTO acct (id, owner, balance) VALUES (9, 'bob', 1)"), (e: unknown) => {
          assert.deepEqual([errorCode(e), (e as ReplisqlError).sql], [ErrorCode.SQL_ERROR, DUPLICATE_KEY[engine]], 'an autocommit duplicate key via node 2');
          return true;
        });
        // ... and for a read on a follower's own database.
        await assert.rejects(c2.query('SELECT * FROM no_such_table'), (e: unknown) => {
          assert.deepEqual([errorCode(e), (e as ReplisqlError).sql], [ErrorCode.SQL_ERROR, NO_SUCH_TABLE[engine]], 'a read of a missing table on node 2');
          return true;
        });

        await cluster.waitCaughtUp([1, 2, 3], 3);
        for (const id of [1, 2, 3]) {
          assert.deepEqual(await cluster.dump(id, 'acct', 'id'), [[1, 'ann', 70], [2, 'bob', 80], [3, 'cy', 7]], `node ${id} has the committed transaction`);
        }

        await c1.query('BEGIN');
        await c1.query('DELETE FROM acct');
        assert.deepEqual((await c1.query('SELECT COUNT(*) FROM acct'))[0]?.rows, [[0]]);
        await c1.query('ROLLBACK');
        assert.equal((await cluster.status(3)).commitIndex, after, 'a rolled-back transaction logs nothing');
        assert.deepEqual((await c1.query('SELECT COUNT(*) FROM acct'))[0]?.rows, [[3]]);

        // A transaction of reads only commits without logging anything.
        await c1.query('BEGIN; SELECT * FROM acct; COMMIT');
        assert.equal((await cluster.status(3)).commitIndex, after);
        await cluster.assertSameChecksums([1, 2, 3], ['acct']);
      });
    });

    test('the client shell runs BEGIN ... ROLLBACK and BEGIN ... COMMIT typed statement by statement', { timeout: 60_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        await cluster.waitForCoordinator(3);
        const input = [
          'CREATE TABLE shell_t (id INTEGER PRIMARY KEY, v TEXT);',
          'BEGIN;',
          "INSERT INTO shell_t (id, v) VALUES (1, 'rolled back');",
          'SELECT COUNT(*) FROM shell_t;',
          'ROLLBACK;',
          'BEGIN;',
          "INSERT INTO shell_t (id, v) VALUES (2, 'kept');",
          "UPDATE shell_t SET v = 'kept!' WHERE id = 2;",
          'COMMIT;',
          'SELECT id, v FROM shell_t;',
        ].join('\n');
        const r = spawnSync(process.execPath, [BIN, 'client', '--connect', cluster.endpoint(1), '--json'], { input, encoding: 'utf8', env: { ...process.env, REPLISQL_HISTORY_FILE: '' }, timeout: 30_000 });
        assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
        const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { rows?: unknown[][] });
        assert.equal(lines.length, 10, r.stdout);
        assert.deepEqual(lines[3]!.rows, [[1]], 'inside the transaction its own insert is visible');
        assert.deepEqual(lines[9]!.rows, [[2, 'kept!']], 'the rolled-back insert is gone, the committed one is there');
        await cluster.waitCaughtUp([1, 2, 3], 3);
        for (const id of [1, 2, 3]) assert.deepEqual(await cluster.dump(id, 'shell_t', 'id'), [[2, 'kept!']], `node ${id}`);
      });
    });

    test('concurrent read-modify-write transactions from all three nodes serialize: no lost update', { timeout: 120_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        await cluster.waitForCoordinator(3);
        const setup = await cluster.client(3);
        await setup.query('CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
        await setup.query('INSERT INTO counter (id, n) VALUES (1, 0)');
        const clients = await Promise.all([1, 2, 3, 1, 2, 3].map((id) => cluster.client(id)));
        const perClient = 15;
        const results = await Promise.allSettled(
          clients.map(async (c) => {
            for (let i = 0; i < perClient; i++) {
              await c.query('BEGIN');
              const n = (await c.query('SELECT n FROM counter WHERE id = 1'))[0]!.rows[0]![0] as number;
              await c.query('UPDATE counter SET n = ? WHERE id = 1', [n + 1]);
              await c.query('COMMIT');
            }
          }),
        );
        assert.deepEqual(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)), []);
        await cluster.waitCaughtUp([1, 2, 3], 3);
        for (const id of [1, 2, 3]) {
          assert.deepEqual(await cluster.dump(id, 'counter'), [[1, clients.length * perClient]], `node ${id}: every increment counted once`);
        }
      });
    });

    test('an idle transaction is rolled back and stops blocking writes; a coordinator killed mid-transaction aborts it', { timeout: 120_000 }, async (t) => {
      const cluster = fx.take(t);
      if (cluster === null) return;
      await cluster.check(async () => {
        await cluster.waitForCoordinator(3);
        const c1 = await cluster.client(1);
        const other = await cluster.client(2);
        await c1.query(`CREATE TABLE t (id INTEGER PRIMARY KEY, v ${cluster.dialect.key})`);

        await c1.query('BEGIN');
        await c1.query("INSERT INTO t (id, v) VALUES (1, 'idle')");
        // An autocommit write from elsewhere waits for the writer, then runs once the idle transaction is gone.
        const started = Date.now();
        await other.query("INSERT INTO t (id, v) VALUES (2, 'other')");
        const waitedMs = Date.now() - started;
        assert.ok(waitedMs >= 1000, `the other write waited for the open transaction (${waitedMs} ms)`);
        await assert.rejects(c1.query("INSERT INTO t (id, v) VALUES (3, 'late')"), (e: unknown) => {
          assert.equal(errorCode(e), ErrorCode.TRANSACTION_ABORTED);
          assert.match((e as Error).message, /idle/);
          return true;
        });
        assert.equal(c1.inTransaction, false, 'the aborted transaction is over');
        assert.deepEqual(await cluster.dump(3, 't', 'id'), [[2, 'other']], 'nothing of the idle transaction was committed');

        // Mid-transaction failover: kill -9 the coordinator while a transaction from node 1 is open.
        await c1.query('BEGIN');
        await c1.query("INSERT INTO t (id, v) VALUES (10, 'doomed')");
        await cluster.kill(3);
        await assert.rejects(
          (async () => {
            // The statement may go to the dead coordinator (timeout or coordinator change) or find none.
            await c1.query("INSERT INTO t (id, v) VALUES (11, 'doomed')");
            await c1.query('COMMIT');
          })(),
          (e: unknown) => {
            assert.ok(e instanceof ReplisqlError, String(e));
            assert.ok(([ErrorCode.TRANSACTION_ABORTED, ErrorCode.NO_COORDINATOR] as string[]).includes(e.code), `${e.code}: ${e.message}`);
            return true;
          },
        );
        await cluster.waitForCoordinator(2, [1, 2]);
        // The session is usable again, outside any transaction.
        await waitUntil('a write through node 1 to succeed', async () => {
          try {
            await c1.query('ROLLBACK');
            await c1.query("INSERT INTO t (id, v) VALUES (20, 'after')");
            return true;
          } catch {
            return false;
          }
        }, { timeoutMs: 20_000 });
        await cluster.start(3);
        await cluster.waitForCoordinator(3);
        await cluster.waitCaughtUp([1, 2, 3], 3);
        for (const id of [1, 2, 3]) {
          assert.deepEqual(await cluster.dump(id, 't', 'id'), [[2, 'other'], [20, 'after']], `node ${id}: nothing of the aborted transaction`);
        }
      });
    });
  });
}

