// SqliteEngine: the SqlEngine contract suite plus what is specific to running SQLite in worker threads
// (a slow read does not block applies nor the event loop, worker crashes, read timeouts, kill -9).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteEngine } from '../../src/storage/sqlite/sqlite-engine.js';
import { SqlEngineError } from '../../src/storage/sql-engine.js';
import { entry, sqlEngineSuite } from './sql-engine-suite.js';

sqlEngineSuite('sqlite', (dir, name) => new SqliteEngine({ path: path.join(dir, `${name}.db`) }));

/** A read that keeps one SQLite connection busy for a couple of seconds. */
const SLOW_READ = { sql: 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT count(*) FROM c', params: [12_000_000] };

describe('SqliteEngine', () => {
  let dir: string;
  let n = 0;
  const engines: SqliteEngine[] = [];
  async function fresh(opts: Partial<ConstructorParameters<typeof SqliteEngine>[0]> = {}): Promise<SqliteEngine> {
    const e = new SqliteEngine({ path: path.join(dir, `e${++n}.db`), ...opts });
    await e.open();
    engines.push(e);
    return e;
  }
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replisql-sqlite-'));
  });
  after(async () => {
    for (const e of engines) await e.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('opens the file in WAL mode with foreign keys enforced', async () => {
    const e = await fresh();
    const [mode] = await e.read([{ sql: 'PRAGMA journal_mode' }]);
    assert.deepEqual(mode!.rows, [['wal']]);
    const r = await e.applyEntry(
      entry(1, [
        { sql: 'CREATE TABLE p(id INTEGER PRIMARY KEY)' },
        { sql: 'CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id))' },
        { sql: 'INSERT INTO c VALUES (1, 42)' },
      ]),
    );
    assert.ok(!r.skipped && !r.ok);
    assert.equal(r.error.code, 'SQLITE_CONSTRAINT_FOREIGNKEY');
    assert.ok(fs.existsSync(path.join(dir, `e${n}.db-wal`)));
  });

  it('a slow read runs on a read worker while applies proceed and the event loop stays responsive', async () => {
    const e = await fresh();
    await e.applyEntry(entry(1, [{ sql: 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)' }]));
    let maxLagMs = 0;
    let last = performance.now();
    const tick = setInterval(() => {
      const now = performance.now();
      maxLagMs = Math.max(maxLagMs, now - last - 10);
      last = now;
    }, 10);
    try {
      const started = performance.now();
      let readDone = false;
      const slow = e.read([SLOW_READ]).then((r) => {
        readDone = true;
        return r;
      });
      let appliedDuringRead = 0;
      let index = 2;
      while (!readDone) {
        await e.applyEntry(entry(index, [{ sql: 'INSERT INTO t(v) VALUES (?)', params: [`row ${index}`] }]));
        index++;
        if (!readDone) appliedDuringRead++;
      }
      const [res] = await slow;
      const readMs = performance.now() - started;
      assert.deepEqual(res!.rows, [[12_000_000]]);
      assert.ok(readMs > 1000, `the slow read took only ${readMs.toFixed(0)} ms`);
      assert.ok(appliedDuringRead >= 20, `only ${appliedDuringRead} applies completed during a ${readMs.toFixed(0)} ms read`);
      assert.ok(maxLagMs < 200, `event loop lag reached ${maxLagMs.toFixed(0)} ms`);
      const [count] = await e.read([{ sql: 'SELECT count(*) FROM t' }]);
      assert.deepEqual(count!.rows, [[index - 2]]);
    } finally {
      clearInterval(tick);
    }
  });

  it('spreads reads over several read workers', async () => {
    const e = await fresh({ readWorkers: 3 });
    const started = performance.now();
    const slow = e.read([SLOW_READ]);
    // With round robin the next reads land on the other two workers and do not wait for the slow one.
    const [a] = await e.read([{ sql: 'SELECT 1' }]);
    const [b] = await e.read([{ sql: 'SELECT 2' }]);
    const fastMs = performance.now() - started;
    assert.deepEqual([a!.rows, b!.rows], [[[1]], [[2]]]);
    await slow;
    const slowMs = performance.now() - started;
    assert.ok(fastMs < slowMs / 2, `fast reads took ${fastMs.toFixed(0)} ms, the slow one ${slowMs.toFixed(0)} ms`);
  });

  it('reports a rowid beyond 2^53 as a decimal string', async () => {
    const e = await fresh();
    const r = await e.applyEntry(
      entry(1, [{ sql: 'CREATE TABLE big(id INTEGER PRIMARY KEY, v)' }, { sql: 'INSERT INTO big VALUES (?, 1)', params: [9007199254740993n] }, { sql: 'INSERT INTO big(v) VALUES (2)' }]),
    );
    assert.ok(!r.skipped && r.ok);
    assert.equal(r.results[1]!.lastInsertId, '9007199254740993');
    assert.equal(r.results[2]!.lastInsertId, '9007199254740994');
  });

  it('ON CONFLICT ROLLBACK: applyEntry still advances the fence; in a batch it aborts the batch', async () => {
    const e = await fresh();
    await e.applyEntry(entry(1, [{ sql: 'CREATE TABLE u(v TEXT UNIQUE)' }, { sql: "INSERT INTO u VALUES ('a')" }]));
    const r = await e.applyEntry(entry(2, [{ sql: "INSERT INTO u VALUES ('b')" }, { sql: "INSERT OR ROLLBACK INTO u VALUES ('a')" }]));
    assert.ok(!r.skipped && !r.ok);
    assert.equal(r.error.code, 'SQLITE_CONSTRAINT_UNIQUE');
    assert.equal((await e.appliedState()).appliedIndex, 2);

    await e.beginBatch();
    assert.ok((await e.execInBatch([{ sql: "INSERT INTO u VALUES ('c')" }])).ok);
    const b = await e.execInBatch([{ sql: "INSERT OR ROLLBACK INTO u VALUES ('a')" }]);
    assert.ok(!b.ok);
    assert.equal(b.batchAborted, true);
    await assert.rejects(e.commitBatch({ appliedIndex: 4, term: 1, chainHash: 'h' }), /without an open batch/);
    const [rows] = await e.read([{ sql: 'SELECT v FROM u ORDER BY v' }]);
    assert.deepEqual(rows!.rows, [['a']]);
    assert.ok(e.isHealthy());
  });

  it('ON CONFLICT ROLLBACK inside applyEntries: the other entries are kept, that entry fails alone, the fence advances', async () => {
    const e = await fresh();
    await e.applyEntry(entry(1, [{ sql: 'CREATE TABLE u(v TEXT UNIQUE)' }, { sql: "INSERT INTO u VALUES ('a')" }]));
    const results = await e.applyEntries([
      entry(2, [{ sql: "INSERT INTO u VALUES ('b')" }]),
      entry(3, [{ sql: "INSERT INTO u VALUES ('c')" }, { sql: "INSERT OR ROLLBACK INTO u VALUES ('a')" }]),
      entry(4, [{ sql: "INSERT INTO u VALUES ('d')" }]),
    ]);
    assert.deepEqual(results.map((r) => !r.skipped && r.ok), [true, false, true]);
    assert.deepEqual((await e.read([{ sql: 'SELECT v FROM u ORDER BY v' }]))[0]!.rows, [['a'], ['b'], ['d']]);
    assert.equal((await e.appliedState()).appliedIndex, 4);
  });

  it('a crashed write worker rejects pending requests, marks the engine unhealthy, and close+open recovers', async () => {
    const p = path.join(dir, `crash${++n}.db`);
    const e = new SqliteEngine({ path: p });
    await e.open();
    await e.applyEntry(entry(1, [{ sql: 'CREATE TABLE t(x)' }]));
    await e.beginBatch();
    const inFlight = e.execInBatch([{ sql: 'INSERT INTO t VALUES (1)' }]);
    const crash = e.injectWorkerCrash('write');
    const queued = e.applyEntry(entry(2, []));
    await assert.rejects(queued, (err: unknown) => {
      assert.ok(err instanceof SqlEngineError);
      assert.equal(err.code, 'UNHEALTHY');
      assert.equal(err.engineCode, 'REPLISQL_WORKER_EXITED');
      assert.match(err.message, /write worker exited unexpectedly \(exit code 70\)/);
      return true;
    });
    await inFlight; // answered before the crash request
    await crash;
    assert.equal(e.isHealthy(), false);
    await assert.rejects(e.read([{ sql: 'SELECT 1' }]), /unhealthy/);
    await assert.rejects(e.appliedState(), /unhealthy/);
    await e.close();
    await e.open();
    assert.ok(e.isHealthy());
    assert.equal((await e.appliedState()).appliedIndex, 1); // the batch never committed
    const [rows] = await e.read([{ sql: 'SELECT count(*) FROM t' }]);
    assert.deepEqual(rows!.rows, [[0]]);
    await e.close();
  });

  it('a crashed read worker rejects its pending reads and marks the engine unhealthy', async () => {
    const e = new SqliteEngine({ path: path.join(dir, `crash${++n}.db`) });
    await e.open();
    const slow = e.read([SLOW_READ]);
    await e.injectWorkerCrash('read');
    await assert.rejects(slow, /read#0 worker exited unexpectedly|unhealthy/);
    assert.equal(e.isHealthy(), false);
    await e.close();
  });

  it('a read over readTimeoutMs is rejected and its worker replaced; other reads carry on', async () => {
    const e = await fresh({ readTimeoutMs: 300 });
    await e.applyEntry(entry(1, [{ sql: 'CREATE TABLE t(x)' }, { sql: 'INSERT INTO t VALUES (7)' }]));
    const slow = e.read([SLOW_READ]);
    const queuedBehind = e.read([{ sql: 'SELECT x FROM t' }]);
    await assert.rejects(slow, (err: unknown) => {
      assert.ok(err instanceof SqlEngineError);
      assert.equal(err.engineCode, 'REPLISQL_READ_TIMEOUT');
      return true;
    });
    const [r] = await queuedBehind;
    assert.deepEqual(r!.rows, [[7]]);
    assert.ok(e.isHealthy());
    const [again] = await e.read([{ sql: 'SELECT count(*) FROM t' }]);
    assert.deepEqual(again!.rows, [[1]]);
  });

  it('bounds the queue of a worker', async () => {
    const e = await fresh({ maxQueuedRequests: 2 });
    const a = e.read([{ sql: 'SELECT 1' }]);
    const b = e.read([{ sql: 'SELECT 2' }]);
    await assert.rejects(e.read([{ sql: 'SELECT 3' }]), (err: unknown) => err instanceof SqlEngineError && err.code === 'OVERLOADED');
    await Promise.all([a, b]);
  });

  it('refuses invalid options with a clear error', () => {
    assert.throws(() => new SqliteEngine({ path: '' }), /path/);
    assert.throws(() => new SqliteEngine({ path: 'x.db', readWorkers: 0 }), /readWorkers/);
  });

  it('kill -9 while applying: every acknowledged entry survives, fencing row and rows agree', async () => {
    const p = path.join(dir, `kill${++n}.db`);
    const child = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
    let lastPrinted = 0;
    const printed: number[] = [];
    for (let round = 0; round < 2; round++) {
      const proc = spawn(process.execPath, ['--import', 'tsx', child, p], { stdio: ['ignore', 'pipe', 'inherit'] });
      let buf = '';
      let sinceReady = 0;
      await new Promise<void>((resolve, reject) => {
        proc.on('error', reject);
        proc.on('exit', () => resolve());
        proc.stdout.on('data', (chunk: Buffer) => {
          buf += chunk.toString();
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line.startsWith('ready')) continue;
            const i = Number(line);
            assert.ok(i > lastPrinted, `index ${i} after ${lastPrinted}`);
            lastPrinted = i;
            printed.push(i);
            if (++sinceReady === 150) proc.kill('SIGKILL');
          }
        });
      });
      assert.equal(proc.signalCode, 'SIGKILL');
      const e = new SqliteEngine({ path: p });
      await e.open();
      const st = await e.appliedState();
      assert.ok(st.appliedIndex >= lastPrinted, `applied ${st.appliedIndex} < acknowledged ${lastPrinted}`);
      const [rows] = await e.read([{ sql: 'SELECT count(*), min(id), max(id) FROM k' }]);
      // Rows 2..appliedIndex exist, nothing beyond: the fencing row and the data were committed together.
      assert.deepEqual(rows!.rows, [[st.appliedIndex - 1, 2, st.appliedIndex]]);
      const [missing] = await e.read([{ sql: 'SELECT count(*) FROM json_each(?) WHERE value NOT IN (SELECT id FROM k)', params: [JSON.stringify(printed)] }]);
      assert.deepEqual(missing!.rows, [[0]]);
      assert.equal(st.chainHash, `h${st.appliedIndex}`);
      await e.close();
      lastPrinted = st.appliedIndex;
    }
  });
});
