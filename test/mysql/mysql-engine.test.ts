// MysqlEngine on real MariaDB instances (test/mysql/mariadb-harness.ts), beyond the contract suite:
//   - statements executed by the coordinator on instance A and replayed with their recorded context
//     on instance B give identical rows (CHECKSUM TABLE), although NOW(), RAND() and AUTO_INCREMENT
//     are involved, and the server clocks moved on in between;
//   - what cannot be made deterministic is refused with UNSAFE_STATEMENT, as data;
//   - schema changes never run in the speculative batch, and survive a crash between the DDL and the
//     fencing row (simulated with fault hooks, and for real with kill -9 of the server);
//   - a server killed -9 makes the engine unhealthy; it recovers when the server is back;
//   - snapshots carry foreign keys, views, triggers and every column type to another instance, and an
//     install interrupted after its swap is finished by the next open().
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MysqlEngine, MysqlEngineCode, type MysqlEngineOptions } from '../../src/storage/mysql/mysql-engine.js';
import { SqlEngineError, type BatchExecResult, type Statement } from '../../src/storage/sql-engine.js';
import { startMariaDb, type MariaDbInstance } from './mariadb-harness.js';

const env = await startMariaDb(3);
after(() => env.stop());

const engines: MysqlEngine[] = [];
let dir = '';
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replisql-mysql-'));
});
after(async () => {
  for (const e of engines) await e.close();
  if (dir !== '') fs.rmSync(dir, { recursive: true, force: true });
});

let dbCounter = 0;
function engineOn(inst: MariaDbInstance, database = `db${++dbCounter}`, extra: Partial<MysqlEngineOptions> = {}): MysqlEngine {
  const e = new MysqlEngine({ ...inst.connection(), database, createDatabase: true, readConnections: 2, reconnectIntervalMs: 200, ...extra });
  engines.push(e);
  return e;
}

async function opened(inst: MariaDbInstance, database?: string, extra: Partial<MysqlEngineOptions> = {}): Promise<MysqlEngine> {
  const e = engineOn(inst, database, extra);
  await e.open();
  return e;
}

function entry(index: number, statements: readonly Statement[], term = 1) {
  return { index, term, chainHash: `h${index}`, statements };
}

async function rows(e: MysqlEngine, sql: string): Promise<unknown[][]> {
  const [r] = await e.read([{ sql }]);
  return r!.rows;
}

function okStatements(r: BatchExecResult): readonly Statement[] {
  assert.ok(r.ok, `execInBatch failed: ${JSON.stringify(!r.ok ? r.error : null)}`);
  assert.ok(r.statements !== undefined);
  return r.statements;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const SCHEMA: Statement[] = [
  {
    sql: `CREATE TABLE ev (
      id BIGINT AUTO_INCREMENT PRIMARY KEY,
      k VARCHAR(20) NOT NULL UNIQUE,
      at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6),
      upd TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
      r DOUBLE,
      n INT NOT NULL DEFAULT 0)`,
  },
  { sql: 'CREATE TABLE log (id INT AUTO_INCREMENT PRIMARY KEY, ev_id BIGINT, note VARCHAR(60))' },
  { sql: 'CREATE TABLE stats (id INT PRIMARY KEY, inserts INT NOT NULL, last_at DATETIME(6), last_r DOUBLE)' },
  { sql: 'INSERT INTO stats VALUES (1, 0, NULL, NULL)' },
  // NOW() and RAND() inside a trigger run in the statement's pinned context.
  { sql: 'CREATE TRIGGER ev_ai AFTER INSERT ON ev FOR EACH ROW UPDATE stats SET inserts = inserts + 1, last_at = NOW(6), last_r = RAND() WHERE id = 1' },
];

/** Commands a coordinator executes; each becomes one log entry. */
const COMMANDS: Statement[][] = [
  [{ sql: "INSERT INTO ev(k, r) VALUES ('a', RAND()), ('b', RAND())" }],
  [{ sql: "INSERT INTO ev(k) VALUES ('c')" }, { sql: "UPDATE ev SET n = n + 1, r = RAND() WHERE k = 'a' ORDER BY id" }],
  [{ sql: "INSERT INTO ev(k, at) VALUES ('d', NOW(6) - INTERVAL 1 DAY)" }],
  [{ sql: "INSERT IGNORE INTO ev(k) VALUES ('e'), ('a'), ('f')" }],
  [{ sql: "INSERT INTO ev(k) SELECT CONCAT(k, '2') FROM ev WHERE k IN ('a', 'b') ORDER BY id" }],
  [{ sql: "INSERT INTO ev(k, r) VALUES ('a', 0) ON DUPLICATE KEY UPDATE r = RAND(), n = n + 10" }],
  [{ sql: "INSERT INTO log(ev_id, note) VALUES (LAST_INSERT_ID(), 'last insert id')" }],
  [{ sql: "DELETE FROM ev WHERE k = 'b2'" }, { sql: "UPDATE ev SET r = RAND(7) WHERE k = 'c' ORDER BY id" }],
  [{ sql: 'INSERT INTO ev(k) VALUES (?)', params: ['p'] }, { sql: "INSERT INTO ev(id, k) VALUES (1000, 'explicit')" }, { sql: "INSERT INTO ev(k) VALUES ('after-explicit')" }],
  [{ sql: "REPLACE INTO ev(id, k, r) VALUES (1000, 'explicit', UNIX_TIMESTAMP(NOW(6)))" }],
  [{ sql: "INSERT INTO ev(k) VALUES ('ret') RETURNING id, k" }],
  [{ sql: "UPDATE ev SET n = n + 1 WHERE k IN ('a', 'c', 'd')" }, { sql: "INSERT INTO log(ev_id, note) VALUES (LAST_INSERT_ID(), CONCAT('now ', CURRENT_TIMESTAMP(6)))" }],
];

describe('MysqlEngine on MariaDB', { skip: env.skip }, () => {
  it('statements replayed with their recorded context give identical rows on another instance', async () => {
    const [a, b] = env.instances;
    // The coordinator's clock is an hour in the past, so nothing can pass by reading each server's own clock.
    const coord = await opened(a!, 'replay', { nowMs: () => Date.now() - 3_600_000 });
    const follower = await opened(b!, 'replay');
    const blind = await opened(b!, 'replay_without_context');
    for (const e of [coord, follower, blind]) {
      const r = await e.applyEntry(entry(1, SCHEMA));
      assert.ok(!r.skipped && r.ok, JSON.stringify(r));
    }
    await coord.beginBatch();
    const logged: (readonly Statement[])[] = [];
    for (const cmd of COMMANDS) logged.push(okStatements(await coord.execInBatch(cmd)));
    await coord.commitBatch({ appliedIndex: 1 + COMMANDS.length, term: 1, chainHash: `h${1 + COMMANDS.length}` });

    // What was recorded: a timestamp and seeds for every statement, the first generated id where there was one.
    assert.ok(logged.flat().every((s) => /^[0-9]+\.[0-9]{6}$/.test(s.context?.timestamp ?? '') && s.context?.randSeed1 !== undefined));
    assert.equal(logged[0]![0]!.context?.insertId, 1);
    assert.equal(typeof logged[6]![0]!.context?.lastInsertId, 'number');
    assert.ok(logged[10]![0]!.context?.insertId !== undefined, 'INSERT ... RETURNING records its insert id');
    assert.deepEqual(JSON.parse(JSON.stringify(logged)), logged, 'the context survives the JSON log encoding');

    await new Promise((r) => setTimeout(r, 1100)); // the servers' clocks move on
    for (let i = 0; i < logged.length; i++) {
      const r = await follower.applyEntry(entry(i + 2, JSON.parse(JSON.stringify(logged[i]))));
      assert.ok(!r.skipped && r.ok, JSON.stringify(r));
      const bare = logged[i]!.map((s) => ({ sql: s.sql, ...(s.params ? { params: s.params } : {}) }));
      await blind.applyEntry(entry(i + 2, bare));
    }
    const dumpA = await coord.dump();
    assert.equal(await follower.dump(), dumpA);
    assert.notEqual(await blind.dump(), dumpA, 'without the context the replica diverges (the test is sensitive)');
    const all = 'SELECT id, k, at, upd, r, n FROM ev ORDER BY id';
    assert.deepEqual(await rows(follower, all), await rows(coord, all));
    assert.deepEqual(await rows(follower, 'SELECT * FROM log ORDER BY id'), await rows(coord, 'SELECT * FROM log ORDER BY id'));
    assert.deepEqual(await rows(follower, 'SELECT * FROM stats'), await rows(coord, 'SELECT * FROM stats'));
    const checksum = 'CHECKSUM TABLE ev, log, stats';
    assert.deepEqual((await rows(follower, checksum)).map((r) => r[1]), (await rows(coord, checksum)).map((r) => r[1]));
    // The pinned time is the coordinator's, not the server's.
    const [[at]] = (await rows(follower, "SELECT UNIX_TIMESTAMP(at) FROM ev WHERE k = 'a'")) as [[string]];
    assert.ok(Math.abs(Number(at) * 1000 - (Date.now() - 3_600_000)) < 60_000, `at=${at}`);
  });

  it('a random workload converges: batches committed or rolled back and re-applied by the coordinator, replayed by a follower', async () => {
    const seed = Number(process.env.REPLISQL_MYSQL_SEED ?? 20_251_128);
    let x = seed >>> 0;
    const rnd = (n: number): number => {
      // mulberry32
      x = (x + 0x6d2b79f5) >>> 0;
      let t = x;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * n;
    };
    const k = (): number => Math.floor(rnd(60));
    const ops: (() => Statement[])[] = [
      () => [{ sql: 'INSERT INTO w(k, v) VALUES (?, RAND()), (?, RAND())', params: [k(), k()] }],
      () => [{ sql: 'INSERT IGNORE INTO w(k) VALUES (?), (?), (?)', params: [k(), k(), k()] }],
      () => [{ sql: 'INSERT INTO w(k, v) VALUES (?, 1) ON DUPLICATE KEY UPDATE v = RAND(), n = n + 1', params: [k()] }],
      () => [{ sql: 'UPDATE w SET v = RAND(), t = NOW(6) WHERE k BETWEEN ? AND ? ORDER BY id', params: [k(), k()] }],
      () => [{ sql: 'UPDATE w SET v = RAND() WHERE k BETWEEN ? AND ?', params: [k(), k()] }], // refused when it changes several rows
      () => [{ sql: 'UPDATE w SET v = RAND(), n = n + 1 WHERE k = ?', params: [k()] }],
      () => [{ sql: 'DELETE FROM w WHERE k = ?', params: [k()] }],
      () => [{ sql: 'INSERT INTO w(k) SELECT k + 100 FROM w WHERE k < ? ORDER BY id', params: [Math.floor(rnd(8))] }],
      () => [{ sql: 'UPDATE w SET n = n + 1 ORDER BY id LIMIT 3' }],
      () => [{ sql: 'REPLACE INTO w(id, k, v) VALUES (?, ?, RAND())', params: [1 + Math.floor(rnd(20)), k()] }],
      () => [{ sql: 'INSERT INTO w(k, v) VALUES (?, UNIX_TIMESTAMP(NOW(6)))', params: [k()] }, { sql: 'UPDATE w SET n = LAST_INSERT_ID() WHERE id = LAST_INSERT_ID()' }],
    ];
    const [a, b] = env.instances;
    const coord = await opened(a!, 'random_coord');
    const follower = await opened(b!, 'random_follower');
    const schema = [{ sql: 'CREATE TABLE w(id BIGINT AUTO_INCREMENT PRIMARY KEY, k INT UNIQUE, v DOUBLE, t DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6), n BIGINT DEFAULT 0)' }];
    await coord.applyEntry(entry(1, schema));
    await follower.applyEntry(entry(1, schema));
    let index = 1;
    let failures = 0;
    let rolledBack = 0;
    for (let batch = 0; batch < 40; batch++) {
      await coord.beginBatch();
      const logged: (readonly Statement[])[] = [];
      const size = 1 + Math.floor(rnd(6));
      for (let c = 0; c < size; c++) {
        const r = await coord.execInBatch(ops[Math.floor(rnd(ops.length))]!());
        if (r.ok) logged.push(JSON.parse(JSON.stringify(r.statements)) as Statement[]);
        else failures++;
      }
      if (logged.length === 0) {
        await coord.rollbackBatch();
        continue;
      }
      if (rnd(1) < 0.25) {
        // The coordinator lost its role: its batch is rolled back and it applies the committed entries.
        await coord.rollbackBatch();
        rolledBack++;
        for (const [i, stmts] of logged.entries()) assert.ok(!(await coord.applyEntry(entry(index + 1 + i, stmts))).skipped);
      } else {
        await coord.commitBatch({ appliedIndex: index + logged.length, term: 1, chainHash: `h${index + logged.length}` });
      }
      for (const [i, stmts] of logged.entries()) {
        const r = await follower.applyEntry(entry(index + 1 + i, stmts));
        assert.ok(!r.skipped && r.ok, `seed ${seed}: entry ${index + 1 + i} ${JSON.stringify(stmts)} failed on the follower: ${JSON.stringify(r)}`);
      }
      index += logged.length;
    }
    assert.ok(failures > 0 && rolledBack > 0, `seed ${seed}: the workload should include failed commands (${failures}) and rolled back batches (${rolledBack})`);
    const all = 'SELECT id, k, v, t, n FROM w ORDER BY id';
    assert.deepEqual(await rows(follower, all), await rows(coord, all), `seed ${seed}`);
    assert.equal(await follower.dump(), await coord.dump(), `seed ${seed}`);
    assert.ok((await rows(coord, 'SELECT COUNT(*) FROM w'))[0]![0] as number > 10);
  });

  it('refuses what cannot be made deterministic with UNSAFE_STATEMENT, as data, and keeps the batch usable', async () => {
    const e = await opened(env.instances[0]!);
    await e.applyEntry(entry(1, [{ sql: 'CREATE TABLE u(id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100), n INT DEFAULT 0)' }]));
    await e.beginBatch();
    assert.ok((await e.execInBatch([{ sql: "INSERT INTO u(v) VALUES ('keep')" }])).ok);
    const unsafe: [string, RegExp][] = [
      ['INSERT INTO u(v) VALUES (UUID())', /UUID\(\)/],
      ['INSERT INTO u(v) VALUES (SYSDATE())', /SYSDATE\(\)/],
      ['INSERT INTO u(v) VALUES (UUID_SHORT())', /UUID_SHORT\(\)/],
      ["INSERT INTO u(v) VALUES (LOAD_FILE('/etc/hostname'))", /LOAD_FILE\(\)/],
      ['UPDATE u SET n = 1 LIMIT 1', /UPDATE \.\.\. LIMIT/],
      ['DELETE FROM u LIMIT 1', /DELETE \.\.\. LIMIT/],
      ['INSERT INTO u(v) VALUES (@@hostname)', /@@hostname/],
      ['INSERT INTO u(v) VALUES (DATABASE())', /DATABASE\(\)/],
      ['INSERT INTO u(v) VALUES (CONNECTION_ID())', /CONNECTION_ID\(\)/],
      ['UPDATE u SET n = RAND() * 10 WHERE id > 0', /RAND\(\) in an UPDATE without ORDER BY that changes more than one row/],
      ['INSERT INTO u(v) SELECT RAND() FROM u', /INSERT \.\.\. SELECT without ORDER BY/],
      ['INSERT INTO u(v) SELECT v FROM u WHERE n > 1', /INSERT \.\.\. SELECT without ORDER BY/],
      ['UPDATE IGNORE u SET id = id + 1', /UPDATE IGNORE without ORDER BY that changes more than one row/],
      ["LOAD DATA INFILE '/etc/hostname' INTO TABLE u", /LOAD DATA/],
      ["CREATE TRIGGER u_ai AFTER INSERT ON u FOR EACH ROW INSERT INTO u2 VALUES (NEW.id)", /trigger that inserts rows/],
    ];
    for (const [sql, name] of unsafe) {
      const r = await e.execInBatch([{ sql: "INSERT INTO u(v) VALUES ('first')" }, { sql }]);
      assert.ok(!r.ok, sql);
      assert.equal(r.error.code, 'UNSAFE_STATEMENT', `${sql}: ${r.error.message}`);
      assert.match(r.error.message, name);
      assert.equal(r.error.statementIndex, 1);
      assert.equal(r.batchAborted, false);
    }
    const forbidden = [
      'SET @x = 1',
      'SET SESSION sql_mode = ""',
      'CREATE TEMPORARY TABLE tmp(x INT)',
      'LOCK TABLES u WRITE',
      'CREATE TABLE m(x INT) ENGINE=MyISAM',
      'SELECT 1 INTO @x',
      "SELECT @v := 'x'",
      'CALL p()',
      'CREATE DATABASE other',
      'DROP DATABASE replisql',
      "GRANT SELECT ON *.* TO 'x'@'%'",
      'START TRANSACTION',
      'USE mysql',
      'SELECT * FROM _replisql_state',
    ];
    for (const sql of forbidden) {
      const r = await e.execInBatch([{ sql }]);
      assert.ok(!r.ok, sql);
      assert.equal(r.error.code, 'REPLISQL_FORBIDDEN_STATEMENT', `${sql}: ${r.error.message}`);
    }
    // With ORDER BY, LIMIT is deterministic; RAND() in an UPDATE of one row is too.
    assert.ok((await e.execInBatch([{ sql: 'UPDATE u SET n = 2 ORDER BY id LIMIT 1' }])).ok);
    assert.ok((await e.execInBatch([{ sql: "UPDATE u SET n = n + RAND() * 0 WHERE v = 'keep'" }])).ok);
    await e.commitBatch({ appliedIndex: 2, term: 1, chainHash: 'h2' });
    assert.deepEqual(await rows(e, 'SELECT v, n FROM u ORDER BY id'), [['keep', 2]]);
    // The same refusals hold on the apply path (every replica refuses alike).
    const r = await e.applyEntry(entry(3, [{ sql: 'INSERT INTO u(v) VALUES (UUID())' }]));
    assert.ok(!r.skipped && !r.ok);
    assert.equal(r.error.code, 'UNSAFE_STATEMENT');
    assert.ok(e.isHealthy());
  });

  it('never runs a schema change in the speculative batch: it is returned with its context to be logged and applied', async () => {
    const e = await opened(env.instances[0]!);
    await e.applyEntry(entry(1, [{ sql: 'CREATE TABLE s(id INT PRIMARY KEY)' }]));
    await e.beginBatch();
    assert.ok((await e.execInBatch([{ sql: 'INSERT INTO s VALUES (1)' }])).ok);
    // Rows may only be inserted into tables the same request creates: ids of others could not be pinned.
    const mixed = await e.execInBatch([{ sql: 'ALTER TABLE s ADD COLUMN x INT' }, { sql: 'INSERT INTO s(id) VALUES (2)' }]);
    assert.ok(!mixed.ok);
    assert.equal(mixed.error.code, 'UNSAFE_STATEMENT');
    assert.equal(mixed.error.statementIndex, 1);
    assert.match(mixed.error.message, /tables created by that request \(`s` is not\)/);
    const r = await e.execInBatch([{ sql: 'DELETE FROM s WHERE id = 2' }, { sql: 'ALTER TABLE s ADD COLUMN at DATETIME DEFAULT CURRENT_TIMESTAMP' }]);
    assert.ok(!r.ok);
    assert.equal(r.error.code, MysqlEngineCode.DDL_NOT_SPECULATIVE);
    assert.equal(r.error.statementIndex, 1);
    assert.equal(r.batchAborted, false);
    assert.equal(r.statements?.length, 2);
    assert.ok(r.statements!.every((s) => s.context?.timestamp !== undefined && s.context.randSeed1 !== undefined));
    // Nothing of it ran, and the batch is intact.
    assert.ok((await e.execInBatch([{ sql: 'INSERT INTO s VALUES (3)' }])).ok);
    await e.commitBatch({ appliedIndex: 2, term: 1, chainHash: 'h2' });
    assert.deepEqual(await rows(e, 'SELECT * FROM s ORDER BY id'), [[1], [3]]);
    // Applied as an entry once committed: the pinned timestamp fills the new column of existing rows.
    const applied = await e.applyEntry(entry(3, r.statements!));
    assert.ok(!applied.skipped && applied.ok, JSON.stringify(applied));
    const at = await rows(e, 'SELECT DISTINCT UNIX_TIMESTAMP(at) FROM s');
    assert.equal(at.length, 1);
    assert.equal(Math.floor(Number(at[0]![0])), Math.floor(Number(r.statements![1]!.context!.timestamp)));
  });

  it('a crash between a schema change and the fencing row is resumed on re-apply (simulated crash windows)', async () => {
    const inst = env.instances[1]!;
    let crashAfter: number | null = null;
    let crashBefore: number | null = null;
    const e = await opened(inst, 'ddlcrash', {
      faults: {
        afterDdl: (_index, stmt) => {
          if (stmt === crashAfter) {
            crashAfter = null;
            throw new Error('simulated crash after the DDL');
          }
        },
        beforeDdl: (_index, stmt) => {
          if (stmt === crashBefore) {
            crashBefore = null;
            throw new Error('simulated crash before the DDL');
          }
        },
      },
    });
    await e.applyEntry(entry(1, [{ sql: 'CREATE TABLE base(id INT PRIMARY KEY)' }]));
    // Crash after statement 2 (the ALTER) of a mixed entry took effect.
    const mixed = entry(2, [
      { sql: 'CREATE TABLE x(id INT PRIMARY KEY, v VARCHAR(10))' },
      { sql: "INSERT INTO x VALUES (1, 'one')" },
      { sql: 'ALTER TABLE x ADD COLUMN c INT' },
      { sql: 'UPDATE x SET c = 7' },
      { sql: 'CREATE INDEX x_c ON x(c)' },
    ]);
    crashAfter = 2;
    await assert.rejects(e.applyEntry(mixed), /simulated crash after the DDL/);
    assert.equal((await e.appliedState()).appliedIndex, 1);
    await assert.rejects(e.beginBatch(), /partly applied/);
    await assert.rejects(e.applyEntry({ ...mixed, chainHash: 'other' }), /partly applied/);
    const r = await e.applyEntry(mixed);
    assert.ok(!r.skipped && r.ok, JSON.stringify(r));
    assert.deepEqual(await rows(e, 'SELECT id, v, c FROM x'), [[1, 'one', 7]]); // the INSERT did not run twice
    assert.deepEqual(await e.appliedState(), { appliedIndex: 2, term: 1, chainHash: 'h2' });

    // Crash after the marker, before the DDL ran: the re-apply runs it.
    crashBefore = 0;
    const drop = entry(3, [{ sql: 'DROP TABLE base' }]);
    await assert.rejects(e.applyEntry(drop), /before the DDL/);
    assert.equal((await rows(e, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'base'"))[0]![0], 1);
    const r3 = await e.applyEntry(drop);
    assert.ok(!r3.skipped && r3.ok);
    assert.equal((await rows(e, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'base'"))[0]![0], 0);

    // Without a crash, a schema change that fails is a statement error like any other, and the fence moves.
    const again = await e.applyEntry(entry(4, [{ sql: 'CREATE TABLE x(id INT)' }]));
    assert.ok(!again.skipped && !again.ok);
    assert.equal(again.error.code, 'ER_TABLE_EXISTS_ERROR');
    assert.equal((await e.appliedState()).appliedIndex, 4);
    // Statements before a failing one in a schema-change entry stay applied (as on every replica).
    const partial = await e.applyEntry(entry(5, [{ sql: 'CREATE TABLE y(id INT)' }, { sql: 'INSERT INTO nowhere VALUES (1)' }, { sql: 'CREATE TABLE z(id INT)' }]));
    assert.ok(!partial.skipped && !partial.ok);
    assert.equal(partial.error.statementIndex, 1);
    assert.deepEqual(await rows(e, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('y', 'z')"), [['y']]);
    // A refused statement after the last DML statement ends the entry with that error too.
    const refused = await e.applyEntry(entry(6, [{ sql: 'CREATE TABLE q(id INT)' }, { sql: 'INSERT INTO q VALUES (1)' }, { sql: 'SET @x = 1' }]));
    assert.ok(!refused.skipped && !refused.ok);
    assert.equal(refused.error.code, 'REPLISQL_FORBIDDEN_STATEMENT');
    assert.equal(refused.error.statementIndex, 2);
    assert.deepEqual(await rows(e, 'SELECT id FROM q'), [[1]]);
    assert.deepEqual(await e.appliedState(), { appliedIndex: 6, term: 1, chainHash: 'h6' });
  });

  it('a server killed -9 right after a schema change: the engine is unhealthy, recovers, and the re-apply completes the entry', async () => {
    const inst = env.instances[2]!;
    let kill = false;
    const e = await opened(inst, 'ddlkill', {
      faults: {
        afterDdl: async () => {
          if (!kill) return;
          kill = false;
          await inst.kill9();
        },
      },
    });
    await e.applyEntry(entry(1, [{ sql: 'CREATE TABLE a(id INT PRIMARY KEY)' }, { sql: 'INSERT INTO a VALUES (1)' }]));
    kill = true;
    const ddl = entry(2, [{ sql: 'ALTER TABLE a ADD COLUMN b INT DEFAULT 5' }, { sql: 'CREATE TABLE c(id INT)' }]);
    await assert.rejects(e.applyEntry(ddl), (err: unknown) => {
      assert.ok(err instanceof SqlEngineError);
      assert.equal(err.code, 'UNHEALTHY');
      return true;
    });
    assert.equal(e.isHealthy(), false);
    await assert.rejects(e.read([{ sql: 'SELECT 1' }]), /unhealthy/);
    await inst.start();
    await waitFor('the engine to reconnect', () => e.isHealthy());
    assert.equal((await e.appliedState()).appliedIndex, 1);
    const r = await e.applyEntry(ddl);
    assert.ok(!r.skipped && r.ok, JSON.stringify(r));
    assert.deepEqual(await rows(e, 'SELECT id, b FROM a'), [[1, 5]]);
    assert.deepEqual(await e.appliedState(), { appliedIndex: 2, term: 1, chainHash: 'h2' });
  });

  it('a server killed -9 and restarted: every call rejects with UNHEALTHY, then the engine recovers by itself', async () => {
    const inst = env.instances[2]!;
    const e = await opened(inst, 'killed');
    await e.applyEntry(entry(1, [{ sql: 'CREATE TABLE k(id INT AUTO_INCREMENT PRIMARY KEY, v INT)' }, { sql: 'INSERT INTO k(v) VALUES (1)' }]));
    await inst.kill9();
    await waitFor('the engine to notice', () => !e.isHealthy(), 10_000);
    for (const call of [() => e.read([{ sql: 'SELECT 1' }]), () => e.applyEntry(entry(2, [])), () => e.beginBatch(), () => e.appliedState(), () => e.dump()]) {
      await assert.rejects(call(), (err: unknown) => {
        assert.ok(err instanceof SqlEngineError);
        assert.equal(err.code, 'UNHEALTHY');
        assert.match(err.message, /unhealthy: the database connection failed/);
        return true;
      });
    }
    // A second engine cannot even open.
    await assert.rejects(engineOn(inst, 'killed').open(), (err: unknown) => err instanceof SqlEngineError && err.code === 'UNHEALTHY' && /cannot open/.test(err.message));
    await inst.start();
    await waitFor('the engine to reconnect', () => e.isHealthy());
    assert.deepEqual(await e.appliedState(), { appliedIndex: 1, term: 1, chainHash: 'h1' });
    const r = await e.applyEntry(entry(2, [{ sql: 'INSERT INTO k(v) VALUES (2)' }]));
    assert.ok(!r.skipped && r.ok);
    assert.deepEqual(await rows(e, 'SELECT id, v FROM k ORDER BY id'), [[1, 1], [2, 2]]);

    // A batch open when the server dies is lost: the engine stays unhealthy until close() + open().
    await e.beginBatch();
    assert.ok((await e.execInBatch([{ sql: 'INSERT INTO k(v) VALUES (3)' }])).ok);
    await inst.kill9();
    await assert.rejects(e.commitBatch({ appliedIndex: 3, term: 1, chainHash: 'h3' }), /unhealthy/);
    await inst.start();
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(e.isHealthy(), false);
    assert.match(String(await e.read([]).catch((err: Error) => err.message)), /batch was lost/);
    await e.close();
    await e.open();
    assert.ok(e.isHealthy());
    assert.deepEqual(await e.appliedState(), { appliedIndex: 2, term: 1, chainHash: 'h2' });
    assert.deepEqual(await rows(e, 'SELECT COUNT(*) FROM k'), [[2]]);
  });

  it('snapshots carry keys, foreign keys, views, triggers and column types to another instance; an interrupted install is finished by open()', async () => {
    const [a, b] = env.instances;
    const src = await opened(a!, 'snapsrc');
    const schema: Statement[] = [
      { sql: 'CREATE TABLE parent(id INT PRIMARY KEY, name VARCHAR(30) CHARACTER SET latin1)' },
      {
        sql: `CREATE TABLE child(
          id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
          parent_id INT NOT NULL,
          d DECIMAL(20,6), f FLOAT, g DOUBLE, bits BIT(5), day DATE, ts TIMESTAMP(3) NULL, t TIME(2), y YEAR,
          e ENUM('x','y','z'), s SET('p','q'), j JSON, txt TEXT, bin VARBINARY(20), blb LONGBLOB,
          total DECIMAL(21,6) AS (d * 2) VIRTUAL,
          CONSTRAINT child_parent FOREIGN KEY (parent_id) REFERENCES parent(id) ON DELETE CASCADE,
          CONSTRAINT positive CHECK (parent_id > 0))`,
      },
      { sql: 'CREATE TABLE nokey(a INT, b VARCHAR(5))' },
      { sql: 'CREATE VIEW v1 AS SELECT p.name, c.d FROM parent p JOIN child c ON c.parent_id = p.id' },
      { sql: 'CREATE VIEW v2 AS SELECT name FROM v1' },
      { sql: 'CREATE TRIGGER parent_bu BEFORE UPDATE ON parent FOR EACH ROW SET NEW.name = UPPER(NEW.name)' },
    ];
    await src.applyEntry(entry(1, schema, 2));
    await src.applyEntry(
      entry(
        2,
        [
          { sql: "INSERT INTO parent VALUES (1, 'één'), (2, 'two'), (3, NULL)" },
          {
            sql: `INSERT INTO child(parent_id, d, f, g, bits, day, ts, t, y, e, s, j, txt, bin, blb) VALUES
              (1, '12345678901234.123456', 1.1, 0.1e0 + 0.2e0, b'10101', '2024-02-29', '2024-01-01 12:00:00.123', '-12:34:56.78', 2024, 'y', 'p,q', '{"a": [1, "x"]}', 'tab\\tquote''s ☃', X'00FF27', ?),
              (2, -0.5, -3.4e38, 1e-300, b'0', '1000-01-01', NULL, '00:00:00', 1901, NULL, '', 'null', '', X'', X'')`,
            params: [{ $blob: Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251)).toString('base64') }],
          },
          { sql: "INSERT INTO nokey VALUES (2, 'b'), (1, 'a'), (1, 'a'), (NULL, NULL)" },
          { sql: "UPDATE parent SET name = 'three' WHERE id = 3" },
        ],
        2,
      ),
    );
    const many = Array.from({ length: 3000 }, (_, i) => `(${i + 10}, 'p${i}')`).join(',');
    await src.applyEntry(entry(3, [{ sql: `INSERT INTO parent VALUES ${many}` }], 2));
    const snap = path.join(dir, 'snap.jsonl');
    const meta = await src.snapshotTo(snap);
    assert.deepEqual(meta, { appliedIndex: 3, term: 2, chainHash: 'h3' });

    // Install over a database with other tables (one of them named like a view of the snapshot).
    const dst = await opened(b!, 'snapdst');
    await dst.applyEntry(entry(1, [{ sql: 'CREATE TABLE v1(x INT)' }, { sql: 'CREATE TABLE old(x INT)' }, { sql: 'CREATE VIEW oldv AS SELECT x FROM old' }]));
    assert.deepEqual(await dst.installSnapshot(snap), meta);
    const dumpSrc = await src.dump();
    assert.equal(await dst.dump(), dumpSrc);
    assert.match(dumpSrc, /CONSTRAINT `child_parent` FOREIGN KEY/);
    assert.match(dumpSrc, /trigger `parent_bu` on `parent`/);
    const all = 'SELECT id, parent_id, d, f, g, bits, day, ts, t, y, e, s, j, txt, bin, LENGTH(blb), MD5(blb), total FROM child ORDER BY id';
    assert.deepEqual(await rows(dst, all), await rows(src, all));
    assert.deepEqual(await rows(dst, 'SELECT * FROM v2 ORDER BY name LIMIT 3'), await rows(src, 'SELECT * FROM v2 ORDER BY name LIMIT 3'));
    // The foreign key and the trigger work on the copy.
    const fk = await dst.applyEntry(entry(4, [{ sql: 'INSERT INTO child(parent_id) VALUES (99999)' }], 2));
    assert.ok(!fk.skipped && !fk.ok);
    assert.equal(fk.error.code, 'ER_NO_REFERENCED_ROW_2');
    await dst.applyEntry(entry(5, [{ sql: "UPDATE parent SET name = 'lower' WHERE id = 2" }], 2));
    assert.deepEqual(await rows(dst, 'SELECT name FROM parent WHERE id = 2'), [['LOWER']]);
    // Older snapshots and damaged files are refused.
    await assert.rejects(dst.installSnapshot(snap), /older/);
    const bad = path.join(dir, 'bad.jsonl');
    const damaged = fs.readFileSync(snap, 'utf8').replace(/("t":"rows","values":"\()([0-9])/, (_m, head: string, d: string) => `${head}${(Number(d) + 1) % 10}`);
    assert.notEqual(damaged, fs.readFileSync(snap, 'utf8'));
    fs.writeFileSync(bad, damaged);
    await assert.rejects((await opened(b!)).installSnapshot(bad), /checksum does not match/);

    // A crash right after the swap: the engine stays unhealthy; the next open() finishes the install.
    let crash = true;
    const third = await opened(b!, 'snapcrash', {
      faults: {
        afterSwap: () => {
          if (crash) {
            crash = false;
            throw new Error('simulated crash after the swap');
          }
        },
      },
    });
    await third.applyEntry(entry(1, [{ sql: 'CREATE TABLE parent(x INT)' }]));
    await assert.rejects(third.installSnapshot(snap), /simulated crash after the swap/);
    assert.equal(third.isHealthy(), false);
    await third.close();
    await third.open();
    assert.deepEqual(await third.appliedState(), meta);
    assert.equal(await third.dump(), dumpSrc);
  });
});
