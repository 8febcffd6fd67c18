// Real processes on MariaDB (one instance per node): 8 clients write concurrently through all three
// nodes (INSERT into an AUTO_INCREMENT table with RAND(), NOW() and a CURRENT_TIMESTAMP(6) default,
// UPDATE ... SET x = RAND(), DELETE), and the three MariaDB instances end with identical
// CHECKSUM TABLE results, read from each instance directly:
//   1. with every node and database up;
//   2. after the coordinator is killed (SIGKILL) mid-stream and restarted;
//   3. after a follower's MariaDB server is killed (kill -9) under the live node and started again.
//      While its database is down the node reports `healthy: false` in STATUS and answers every
//      query sent to it with UNHEALTHY (docs/client-protocol.md: "this node's database is
//      unavailable", retry on another node), so it acknowledges no write; the cluster keeps
//      committing through the other nodes; once the database is back the node catches up.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ReplisqlClient } from '../../src/client/client.js';
import { errorCode, sleep, useCluster, waitUntil, type Cluster } from './harness.js';

const CLIENTS = 8;
const TABLE = 'work';
/** Outcomes a write may end with while a node or a database dies: it may or may not have been applied. */
const UNCERTAIN = new Set(['UNKNOWN_OUTCOME', 'NO_COORDINATOR', 'UNAVAILABLE', 'ClientConnectionError']);
/** Refused before it was logged: certainly not applied. */
const REFUSED = new Set(['UNHEALTHY', 'NO_QUORUM', 'NOT_COORDINATOR']);

type Op = 'insert' | 'insert-default' | 'update' | 'delete';

/**
 * 8 writers, writer i connected to node (i % 3) + 1 first with the other two as failover. Each one
 * works on the rows it inserted itself, so the test knows which rows must exist at the end: a row
 * whose INSERT was acknowledged and whose DELETE was not attempted must be present; a row whose
 * DELETE was acknowledged must be gone.
 */
class Workload {
  readonly acked: Record<Op, number> = { insert: 0, 'insert-default': 0, update: 0, delete: 0 };
  readonly uncertain = new Map<string, number>();
  readonly refused = new Map<string, number>();
  readonly unexpected: string[] = [];
  /** Rows that must exist at the end (insert acknowledged, never deleted). */
  readonly live = new Set<number>();
  /** Rows whose delete was acknowledged: must be gone. */
  readonly deleted = new Set<number>();
  /** Rows whose delete ended uncertain: may or may not exist. */
  readonly maybe = new Set<number>();
  private clients: ReplisqlClient[] = [];
  private running = false;
  private workers: Promise<void>[] = [];
  private seq = 0;
  /** Time of each acknowledgement, to see whether the cluster kept committing during an event. */
  readonly ackTimes: number[] = [];

  constructor(private readonly cluster: Cluster) {}

  async connect(): Promise<void> {
    this.clients = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) => {
        const first = (i % 3) + 1;
        return this.cluster.client([first, ...[1, 2, 3].filter((x) => x !== first)], { timeoutMs: 20_000, retries: 8 });
      }),
    );
  }

  get totalAcked(): number {
    return Object.values(this.acked).reduce((a, b) => a + b, 0);
  }

  start(): void {
    this.running = true;
    this.workers = this.clients.map((c, i) => this.worker(c, i));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
    this.workers = [];
  }

  /** Runs until at least `n` more writes were acknowledged (or fails after `timeoutMs`). */
  async waitForAcks(n: number, timeoutMs = 60_000): Promise<void> {
    const target = this.totalAcked + n;
    await waitUntil(`${n} more acknowledged writes`, () => this.totalAcked >= target, { timeoutMs, intervalMs: 10 });
  }

  summary(): string {
    return `acked ${JSON.stringify(this.acked)}, uncertain ${JSON.stringify(Object.fromEntries(this.uncertain))}, refused ${JSON.stringify(Object.fromEntries(this.refused))}, ${this.live.size} live rows`;
  }

  private async worker(c: ReplisqlClient, ci: number): Promise<void> {
    const mine: number[] = [];
    let n = 0;
    while (this.running) {
      n++;
      const pick = (n * 7 + ci) % 10;
      const op: Op = mine.length < 4 || pick < 4 ? (pick % 2 === 0 ? 'insert' : 'insert-default') : pick < 8 ? 'update' : 'delete';
      const seq = this.seq++;
      let sql: string;
      let params: (string | number)[];
      let target: number | null = null;
      if (op === 'insert') {
        sql = `INSERT INTO ${TABLE} (client, seq, x, touched, note) VALUES (?, ?, RAND(), NOW(), ?)`;
        params = [ci, seq, `c${ci}-s${seq}`];
      } else if (op === 'insert-default') {
        // `created` comes from the column default CURRENT_TIMESTAMP(6), `touched` stays NULL.
        sql = `INSERT INTO ${TABLE} (client, seq, x) VALUES (?, ?, RAND() * 1000)`;
        params = [ci, seq];
      } else {
        target = mine[(n * 13) % mine.length]!;
        if (op === 'update') {
          sql = `UPDATE ${TABLE} SET x = RAND(), touched = NOW(), seq = ? WHERE id = ?`;
          params = [seq, target];
        } else {
          sql = `DELETE FROM ${TABLE} WHERE id = ?`;
          params = [target];
          // Whatever happens, this row is no longer used by this worker.
          mine.splice(mine.indexOf(target), 1);
          this.live.delete(target);
        }
      }
      try {
        const r = await c.queryDetailed(sql, params);
        const res = r.results[0];
        this.acked[op]++;
        this.ackTimes.push(Date.now());
        if (op === 'insert' || op === 'insert-default') {
          const id = res?.lastInsertId;
          if (typeof id !== 'number' || res?.affectedRows !== 1) this.unexpected.push(`${op} #${seq}: answered ${JSON.stringify(res)}`);
          else {
            mine.push(id);
            this.live.add(id);
          }
        } else if (op === 'delete') {
          if (res?.affectedRows !== 1 && !r.duplicate) this.unexpected.push(`delete of ${target}: affectedRows ${String(res?.affectedRows)}`);
          this.deleted.add(target!);
        }
      } catch (err) {
        const code = errorCode(err);
        if (UNCERTAIN.has(code)) {
          this.uncertain.set(code, (this.uncertain.get(code) ?? 0) + 1);
          if (op === 'delete') this.maybe.add(target!);
        } else if (REFUSED.has(code)) {
          this.refused.set(code, (this.refused.get(code) ?? 0) + 1);
          // A refused delete left the row in place, but it is no longer tracked by the worker.
          if (op === 'delete') this.maybe.add(target!);
        } else this.unexpected.push(`${op} #${seq}: ${code}: ${(err as Error).message}`);
        await sleep(50);
      }
      await sleep(5);
    }
  }
}

/** Every node applied the coordinator's commit index; the instances hold identical tables. */
async function assertConverged(cluster: Cluster, w: Workload, coordinator: number, label: string): Promise<Record<string, string>> {
  await cluster.waitForCoordinator(coordinator, [1, 2, 3], 40_000);
  await cluster.waitCaughtUp([1, 2, 3], coordinator, 60_000);
  const sums = await cluster.assertSameChecksums([1, 2, 3], [TABLE]);
  assert.ok(sums !== null);
  // The same rows through each node, and the rows the workload knows about.
  const dumps = await Promise.all([1, 2, 3].map((id) => cluster.dump(id, TABLE, 'id')));
  assert.deepEqual(dumps[0], dumps[2], 'node 1 returns the same rows as node 3');
  assert.deepEqual(dumps[1], dumps[2], 'node 2 returns the same rows as node 3');
  const ids = new Set(dumps[2]!.map((r) => r[0] as number));
  assert.deepEqual([...w.live].filter((id) => !ids.has(id)), [], `${label}: every acknowledged insert that was not deleted is present`);
  assert.deepEqual([...w.deleted].filter((id) => ids.has(id)), [], `${label}: every acknowledged delete is applied`);
  assert.deepEqual(w.unexpected, [], `${label}: no write failed except with an uncertain outcome or a refusal`);
  // RAND() gave each replica the same value in [0, 1) (or [0, 1000)); NOW() and the column default
  // are the coordinator's time, not each replica's.
  const now = Date.now();
  for (const r of dumps[2]!) {
    const [id, , , x, created, touched] = r as [number, number, number, number, string, string | null, string | null];
    assert.ok(typeof x === 'number' && x >= 0 && x < 1000, `row ${id}: x = ${String(x)}`);
    const createdMs = Date.parse(`${created.replace(' ', 'T')}Z`);
    assert.ok(Math.abs(createdMs - now) < 10 * 60_000, `row ${id}: created ${created} is about now`);
    assert.match(created, /\.\d{6}$/, `row ${id}: created keeps microseconds`);
    if (touched !== null) assert.ok(Math.abs(Date.parse(`${touched.replace(' ', 'T')}Z`) - now) < 10 * 60_000, `row ${id}: touched ${touched} is about now`);
  }
  process.stderr.write(`[mysql-workload] ${label}: ${dumps[2]!.length} rows, ${sums![TABLE]} on all three instances; ${w.summary()}\n`);
  return sums!;
}

describe('mysql', () => {
  const fx = useCluster({ engine: 'mysql', nodes: 3 });
  let w: Workload;
  // A failed test leaves its writers running: stop them before the next test (and the shutdown).
  afterEach(async () => {
    await w?.stop();
  });

  test('8 clients through all three nodes: INSERT/UPDATE/DELETE with AUTO_INCREMENT, RAND(), NOW() end with identical CHECKSUM TABLE', { timeout: 120_000 }, async (t) => {
    const cluster = fx.take(t);
    if (cluster === null) return;
    await cluster.check(async () => {
      await cluster.waitForCoordinator(3);
      const setup = await cluster.client(1);
      await setup.query(
        `CREATE TABLE ${TABLE} (id INTEGER PRIMARY KEY AUTO_INCREMENT, client INTEGER NOT NULL, seq INTEGER NOT NULL, x DOUBLE NOT NULL, ` +
          `created DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), touched DATETIME NULL, note VARCHAR(64) NULL, KEY by_client (client))`,
      );
      await cluster.closeClient(setup);
      w = new Workload(cluster);
      await w.connect();
      const t0 = Date.now();
      w.start();
      await w.waitForAcks(800);
      await w.stop();
      process.stderr.write(`[mysql-workload] ${w.totalAcked} writes by ${CLIENTS} clients in ${Date.now() - t0} ms\n`);
      assert.deepEqual([...w.uncertain.keys(), ...w.refused.keys()], [], 'nothing fails while every node is up');
      for (const op of ['insert', 'insert-default', 'update', 'delete'] as const) assert.ok(w.acked[op] > 0, `some ${op} acknowledged`);
      await assertConverged(cluster, w, 3, 'all up');
    });
  });

  test('the same after the coordinator is killed (SIGKILL) mid-stream and restarted', { timeout: 120_000 }, async (t) => {
    const cluster = fx.take(t);
    if (cluster === null) return;
    assert.ok(w !== undefined, 'the first test set up the table and the clients');
    await cluster.check(async () => {
      w.start();
      await w.waitForAcks(150);
      await cluster.kill(3);
      const killedAt = Date.now();
      await cluster.waitForCoordinator(2, [1, 2], 30_000);
      const atTakeover = w.totalAcked;
      await w.waitForAcks(200);
      process.stderr.write(`[mysql-workload] node 2 took over; ${w.totalAcked - atTakeover} writes acknowledged before node 3's restart (${Date.now() - killedAt} ms after the kill)\n`);
      await cluster.start(3);
      // Node 3 catches up and takes over again while the clients keep writing.
      await cluster.waitForCoordinator(3, [1, 2, 3], 40_000);
      await w.waitForAcks(150);
      await w.stop();
      await assertConverged(cluster, w, 3, 'after the coordinator was killed and restarted');
    });
  });

  test("a follower's MariaDB killed under the live node: unhealthy, refuses its clients, the cluster commits, then it catches up", { timeout: 120_000 }, async (t) => {
    const cluster = fx.take(t);
    if (cluster === null) return;
    assert.ok(w !== undefined, 'the first test set up the table and the clients');
    await cluster.check(async () => {
      const only1 = await cluster.client(1, { timeoutMs: 10_000, retries: 0 });
      w.start();
      await w.waitForAcks(150);
      const mark1 = cluster.logLines(1).length;
      const before = await cluster.status(1);
      assert.equal(before.healthy, true);

      await cluster.killDatabase(1);
      const killedAt = Date.now();
      const down = await waitUntil('node 1 to report healthy: false', async () => {
        const s = await cluster.status(1);
        return s.healthy ? undefined : s;
      }, { timeoutMs: 20_000, intervalMs: 50 });
      const unhealthyAfterMs = Date.now() - killedAt;
      assert.equal(cluster.isRunning(1), true, 'node 1 keeps running');
      assert.equal(down.coordinator, 3, 'node 1 still follows the coordinator');

      // Sent to node 1 alone: refused with UNHEALTHY (never logged, so never applied).
      const marker = `sent-to-unhealthy-${Date.now()}`;
      const write = await only1.query(`INSERT INTO ${TABLE} (client, seq, x, note) VALUES (99, 0, RAND(), ?)`, [marker]).then(
        () => 'ACKNOWLEDGED',
        (err: unknown) => errorCode(err),
      );
      assert.equal(write, 'UNHEALTHY', 'a write sent to the node whose database is down is refused');
      const read = await only1.query(`SELECT COUNT(*) FROM ${TABLE}`).then(
        () => 'ANSWERED',
        (err: unknown) => errorCode(err),
      );
      assert.equal(read, 'UNHEALTHY', 'a read sent to it is refused too');

      // The others keep committing while it is down (for a few reconnect attempts of node 1).
      const ackedAtKill = w.totalAcked;
      await w.waitForAcks(200, 30_000);
      const minDownMs = 4000;
      if (Date.now() - killedAt < minDownMs) await sleep(minDownMs - (Date.now() - killedAt));
      const s3 = await cluster.status(3);
      const s1 = await cluster.status(1);
      assert.equal(s1.healthy, false, 'still unhealthy while its database is down');
      assert.ok(s1.appliedIndex < s3.commitIndex, `node 1 applied nothing new (applied ${s1.appliedIndex}, cluster commitIndex ${s3.commitIndex})`);
      assert.ok(s1.appliedIndex <= before.commitIndex + 50, `node 1 stopped applying when its database died (applied ${s1.appliedIndex}, ${before.commitIndex} committed before)`);
      const downMs = Date.now() - killedAt;
      process.stderr.write(
        `[mysql-workload] node 1's MariaDB killed: unhealthy in STATUS after ${unhealthyAfterMs} ms; ${w.totalAcked - ackedAtKill} writes acknowledged in ${downMs} ms while it was down; ` +
          `node 1 applied ${s1.appliedIndex}, log ${s1.lastIndex}, cluster commitIndex ${s3.commitIndex}; refused ${JSON.stringify(Object.fromEntries(w.refused))}\n`,
      );
      assert.ok(cluster.events(1, 'database-failed', mark1).length >= 1, 'node 1 logged the database failure');

      // Bring it back with no write coming in: the node reconnects by itself, applies everything it
      // missed and is healthy again (no new commit is needed to get it going).
      await w.stop();
      await cluster.startDatabase(1);
      const restartedAt = Date.now();
      await waitUntil('node 1 to report healthy again', async () => ((await cluster.status(1)).healthy ? true : undefined), { timeoutMs: 30_000, intervalMs: 50 });
      const healthyAfterMs = Date.now() - restartedAt;
      const caughtUpTo = await cluster.waitCaughtUp([1], 3, 30_000);
      const caughtUpMs = Date.now() - restartedAt;
      assert.deepEqual(cluster.events(1, 'database-healthy', mark1).length, 1, 'node 1 logged its recovery once');
      // The failures of the outage were logged, but not one line per failed entry.
      const failureLines = cluster.events(1, 'database-failed', mark1).length;
      assert.ok(failureLines <= 2 + Math.ceil((Date.now() - killedAt) / 5000), `${failureLines} "database operation failed" lines for one outage`);
      process.stderr.write(
        `[mysql-workload] node 1 healthy again ${healthyAfterMs} ms after its MariaDB restarted, applied up to ${caughtUpTo} after ${caughtUpMs} ms; ${failureLines} failure lines logged\n`,
      );
      // And it takes part in new writes again.
      await only1.query(`INSERT INTO ${TABLE} (client, seq, x, note) VALUES (98, 0, RAND(), 'via node 1 after recovery')`);
      w.start();
      await w.waitForAcks(150);
      await w.stop();
      const sums = await assertConverged(cluster, w, 3, "after a follower's MariaDB was killed and restarted");
      const rows = await cluster.query(1, `SELECT COUNT(*) FROM ${TABLE} WHERE note = ?`, [marker]);
      assert.deepEqual(rows, [[0]], 'the write refused by the unhealthy node was never applied');
      assert.ok(sums[TABLE] !== undefined);
      assert.equal((await cluster.status(1)).healthy, true);
    });
  });
});
