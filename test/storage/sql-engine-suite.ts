// The SqlEngine port's contract, as one suite any engine runs (SQLite and MySQL/MariaDB):
//   sqlEngineSuite('sqlite', (dir, name) => new SqliteEngine({ path: join(dir, `${name}.db`) }));
//   sqlEngineSuite('mariadb', factory, MYSQL_DIALECT);
// `makeEngine(dir, name)` must return an unopened engine on a fresh database for each new name, and
// an engine on the same database when called again with the same dir and name. The SQL that differs
// between engines (column types, typeof(), WITHOUT ROWID, ...) comes from a SuiteDialect; the
// behaviour checked is the same.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AppliedState, EntryToApply, SqlEngine, Statement } from '../../src/storage/sql-engine.js';
import { SqlEngineError } from '../../src/storage/sql-engine.js';

export type EngineFactory = (dir: string, name: string) => SqlEngine;

/** The SQL and the engine-specific expectations the suite needs. */
export interface SuiteDialect {
  /** CREATE TABLE t(id <auto-assigned integer key>, v <unique text>, n <real>, b <blob>). */
  readonly createT: Statement;
  /** Any other table. */
  readonly createOther: Statement;
  /** lastInsertId of a statement that inserted several rows: the last one's id (SQLite) or the first one's (MySQL's LAST_INSERT_ID()). */
  readonly multiRowInsertId: 'last' | 'first';
  /** Message of a syntax error in read(). */
  readonly syntaxErrorMessage: RegExp;
  /** Reads column b of t with its type and length: expected rows for the blobs `bytes` and ''. */
  readonly blobRead: { readonly sql: string; readonly expected: (bytes: Buffer) => unknown[][] };
  /** A table n(x) and a read of x that shows how 3, 2.5, true and 9007199254740993n were bound; `insertOne` inserts one value. */
  readonly bindCheck: { readonly create: Statement; readonly insert: string; readonly insertOne: string; readonly select: string; readonly expected: unknown[][] };
  /** Four entries of schema and rows for the dump test, and what the dump must show. */
  readonly dumpCase: { readonly entries: Statement[][]; readonly check: (dump: string) => void };
}

export const SQLITE_DIALECT: SuiteDialect = {
  createT: { sql: 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE, n REAL, b BLOB)' },
  createOther: { sql: 'CREATE TABLE other(x)' },
  multiRowInsertId: 'last',
  syntaxErrorMessage: /syntax error/,
  blobRead: {
    sql: 'SELECT b, typeof(b), length(b) FROM t ORDER BY id',
    expected: (bytes) => [
      [{ $blob: bytes.toString('base64') }, 'blob', 300],
      [{ $blob: '' }, 'blob', 0],
    ],
  },
  bindCheck: {
    create: { sql: 'CREATE TABLE n(x)' },
    insert: 'INSERT INTO n VALUES (?), (?), (?), (?)',
    insertOne: 'INSERT INTO n VALUES (?)',
    select: 'SELECT typeof(x), CAST(x AS TEXT) FROM n ORDER BY rowid',
    expected: [
      ['integer', '3'],
      ['real', '2.5'],
      ['integer', '1'],
      ['integer', '9007199254740993'],
    ],
  },
  dumpCase: {
    entries: [
      [
        { sql: 'CREATE TABLE k(a TEXT, b INTEGER, v, PRIMARY KEY (a, b)) WITHOUT ROWID' },
        { sql: 'CREATE TABLE r(x, y)' },
        { sql: 'CREATE VIEW kv AS SELECT a, v FROM k' },
      ],
      [{ sql: "INSERT INTO k VALUES ('b', 2, 1.0), ('a', 9, 'text'), ('b', 1, NULL)" }],
      [{ sql: 'INSERT INTO r VALUES (3, 3.5), (1, ?), (2, ?)', params: [1, { $blob: 'AP8=' }] }],
      [{ sql: 'DELETE FROM r WHERE x = 3' }, { sql: 'INSERT INTO r VALUES (0, 0)' }],
    ],
    check: (d) => {
      assert.match(d, /\("a", 9, "text"\)\n {2}\("b", 1, NULL\)\n {2}\("b", 2, 1\.0\)/);
      assert.match(d, /\(1, 1\)\n {2}\(2, X'00ff'\)\n {2}\(0, 0\)/); // rowid order
    },
  },
};

export const GENESIS: AppliedState = { appliedIndex: 0, term: 0, chainHash: '0'.repeat(32) };

export function entry(index: number, statements: Statement[], term = 1): EntryToApply {
  return { index, term, chainHash: `hash-${index}`, statements };
}

export function sqlEngineSuite(engineName: string, makeEngine: EngineFactory, dialect: SuiteDialect = SQLITE_DIALECT, options: { skip?: string | false } = {}): void {
  const CREATE_T = dialect.createT;
  describe(`SqlEngine contract: ${engineName}`, { skip: options.skip ?? false }, () => {
    let dir: string;
    let counter = 0;
    const open: SqlEngine[] = [];
    /** A fresh, opened engine; closed after the suite. */
    async function fresh(name = `db${++counter}`): Promise<SqlEngine> {
      const e = makeEngine(dir, name);
      await e.open();
      open.push(e);
      return e;
    }

    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), `replisql-${engineName}-`));
    });
    after(async () => {
      for (const e of open) await e.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('starts at the genesis fencing row', async () => {
      const e = await fresh();
      assert.ok(e.isHealthy());
      assert.deepEqual(await e.appliedState(), GENESIS);
    });

    it('round-trips writes and reads with results, params and several statements', async () => {
      const e = await fresh();
      const r = await e.applyEntry(
        entry(1, [
          CREATE_T,
          { sql: 'INSERT INTO t(v, n) VALUES (?, ?)', params: ['a', 1.5] },
          { sql: 'INSERT INTO t(v, n) VALUES (?, ?), (?, ?)', params: ['b', 2, 'c', null] },
          { sql: "UPDATE t SET n = 7 WHERE v IN ('a', 'b')" },
        ]),
      );
      assert.equal(r.skipped, false);
      assert.ok(!r.skipped && r.ok);
      assert.deepEqual(
        r.results.map((x) => [x.affectedRows, x.lastInsertId]),
        [
          [0, null],
          [1, 1],
          [2, dialect.multiRowInsertId === 'last' ? 3 : 2],
          [2, null],
        ],
      );
      const [all, one] = await e.read([
        { sql: 'SELECT id, v, n FROM t ORDER BY id' },
        { sql: 'SELECT v FROM t WHERE id = ?', params: [2] },
      ]);
      assert.deepEqual(all!.columns, ['id', 'v', 'n']);
      assert.deepEqual(all!.rows, [
        [1, 'a', 7],
        [2, 'b', 7],
        [3, 'c', null],
      ]);
      assert.equal(all!.affectedRows, 0);
      assert.equal(all!.lastInsertId, null);
      assert.deepEqual(one!.rows, [['b']]);
      assert.deepEqual(await e.appliedState(), { appliedIndex: 1, term: 1, chainHash: 'hash-1' });
    });

    it('reports the rows of INSERT ... RETURNING with affectedRows and lastInsertId', async () => {
      const e = await fresh();
      await e.applyEntry(entry(1, [CREATE_T]));
      const r = await e.applyEntry(entry(2, [{ sql: "INSERT INTO t(v) VALUES ('x'), ('y') RETURNING id, v" }]));
      assert.ok(!r.skipped && r.ok);
      const { columnTypes, ...rest } = r.results[0]!;
      assert.deepEqual(rest, { columns: ['id', 'v'], rows: [[1, 'x'], [2, 'y']], affectedRows: 2, lastInsertId: dialect.multiRowInsertId === 'last' ? 2 : 1 });
      // MySQL reports column types; SQLite's columns have none.
      if (columnTypes !== undefined) assert.deepEqual(columnTypes, ['int', 'text']);
    });

    it('applyEntries: same results as applying one by one, one fencing row at the end; skips applied entries; refuses gaps', async () => {
      const batch = [
        entry(2, [{ sql: "INSERT INTO t(v) VALUES ('a')" }]),
        entry(3, [{ sql: "INSERT INTO t(id, v) VALUES (1, 'dup')" }]), // duplicate key: this entry only fails
        entry(4, [{ sql: "INSERT INTO t(v) VALUES ('b')" }, { sql: "INSERT INTO t(id, v) VALUES (2, 'dup')" }]), // fails as a whole
        entry(5, [{ sql: "UPDATE t SET v = 'A' WHERE v = 'a'" }, { sql: "INSERT INTO t(v) VALUES ('c')" }], 2),
      ];
      const one = await fresh();
      await one.applyEntry(entry(1, [CREATE_T]));
      const sequential: unknown[] = [];
      for (const e of batch) sequential.push(await one.applyEntry(e));
      const many = await fresh();
      await many.applyEntry(entry(1, [CREATE_T]));
      const together = await many.applyEntries(batch);
      const strip = (r: unknown): unknown => JSON.parse(JSON.stringify(r, (k, v) => (k === 'message' || k === 'columnTypes' ? undefined : v)));
      assert.deepEqual(together.map(strip), sequential.map(strip));
      assert.deepEqual(together.map((r) => !r.skipped && r.ok), [true, false, false, true]);
      assert.deepEqual(await many.appliedState(), { appliedIndex: 5, term: 2, chainHash: 'hash-5' });
      assert.equal(await many.dump(), await one.dump(), 'same database either way');
      // Entries already applied are skipped; the rest applied.
      const again = await many.applyEntries([entry(4, []), entry(5, [], 2), entry(6, [{ sql: "INSERT INTO t(v) VALUES ('d')" }], 2), entry(7, [], 2)]);
      assert.deepEqual(again.map((r) => r.skipped), [true, true, false, false]);
      assert.equal((await many.appliedState()).appliedIndex, 7);
      await assert.rejects(many.applyEntries([entry(9, []), entry(10, [])]), /does not follow/);
      assert.equal((await many.appliedState()).appliedIndex, 7, 'a gap changes nothing');
    });

    it('describes a statement without running it: columns, types where known; errors like a read', async () => {
      const e = await fresh();
      await e.applyEntry(entry(1, [{ sql: 'CREATE TABLE d (id INTEGER PRIMARY KEY, name VARCHAR(20), score DOUBLE, photo BLOB)' }]));
      const d = await e.describeStatement('SELECT id, name, score, photo, id + 1 AS next FROM d WHERE id = ? AND name = ?');
      assert.deepEqual(d.columns.map((c) => c.name), ['id', 'name', 'score', 'photo', 'next']);
      assert.deepEqual(d.columns.slice(0, 4).map((c) => c.type), ['int', 'text', 'float', 'blob']);
      assert.deepEqual((await e.describeStatement('SELECT COUNT(*) FROM d')).columns.length, 1);
      assert.deepEqual(await e.read([{ sql: 'SELECT COUNT(*) FROM d' }]).then((r) => r[0]!.rows), [[0]], 'nothing ran');
      await assert.rejects(e.describeStatement('SELECT * FROM no_such_table'), /no_such_table|doesn't exist/);
      await assert.rejects(e.describeStatement('SELEC 1'), /syntax/i);
    });

    it('skips an entry at or below the applied index and keeps the fencing row across close/open', async () => {
      const name = `db${++counter}`;
      const e1 = makeEngine(dir, name);
      await e1.open();
      await e1.applyEntry(entry(1, [CREATE_T]));
      await e1.applyEntry(entry(2, [{ sql: "INSERT INTO t(v) VALUES ('once')" }], 3));
      assert.deepEqual(await e1.applyEntry(entry(2, [{ sql: "INSERT INTO t(v) VALUES ('twice')" }], 3)), { skipped: true });
      assert.deepEqual(await e1.applyEntry(entry(1, [CREATE_T])), { skipped: true });
      // The same index with another chain hash means the database and the log disagree.
      await assert.rejects(e1.applyEntry({ ...entry(2, [], 3), chainHash: 'other' }), /chain hash/);
      await e1.close();
      assert.equal(e1.isHealthy(), false);

      const e2 = makeEngine(dir, name);
      await e2.open();
      open.push(e2);
      assert.deepEqual(await e2.appliedState(), { appliedIndex: 2, term: 3, chainHash: 'hash-2' });
      assert.deepEqual(await e2.applyEntry(entry(2, [{ sql: "INSERT INTO t(v) VALUES ('again')" }], 3)), { skipped: true });
      const [r] = await e2.read([{ sql: 'SELECT v FROM t' }]);
      assert.deepEqual(r!.rows, [['once']]);
    });

    it('returns a statement error as data, rolls back the entry and still advances the fencing row', async () => {
      const e = await fresh();
      await e.applyEntry(entry(1, [CREATE_T, { sql: "INSERT INTO t(v) VALUES ('dup')" }]));
      const r = await e.applyEntry(
        entry(2, [{ sql: "INSERT INTO t(v) VALUES ('new')" }, { sql: "INSERT INTO t(v) VALUES ('dup')" }, { sql: "INSERT INTO t(v) VALUES ('never')" }]),
      );
      assert.ok(!r.skipped && !r.ok);
      assert.equal(r.error.code, engineName === 'sqlite' ? 'SQLITE_CONSTRAINT_UNIQUE' : r.error.code);
      assert.match(r.error.message, /UNIQUE|Duplicate/i);
      assert.equal(r.error.statementIndex, 1);
      assert.equal((await e.appliedState()).appliedIndex, 2);
      const [rows] = await e.read([{ sql: 'SELECT v FROM t ORDER BY v' }]);
      assert.deepEqual(rows!.rows, [['dup']]);
      // A syntax error is data too.
      const bad = await e.applyEntry(entry(3, [{ sql: 'INSERT INTO nowhere VALUES (1)' }]));
      assert.ok(!bad.skipped && !bad.ok);
      assert.equal((await e.appliedState()).appliedIndex, 3);
    });

    it('refuses a gap and a lower term, changing nothing', async () => {
      const e = await fresh();
      await e.applyEntry(entry(1, [CREATE_T], 5));
      await assert.rejects(e.applyEntry(entry(3, [{ sql: "INSERT INTO t(v) VALUES ('gap')" }], 5)), (err: unknown) => {
        assert.ok(err instanceof SqlEngineError);
        assert.equal(err.engineCode, 'REPLISQL_LOG_GAP');
        return true;
      });
      await assert.rejects(e.applyEntry(entry(2, [{ sql: "INSERT INTO t(v) VALUES ('stale')" }], 4)), /term/);
      assert.deepEqual(await e.appliedState(), { appliedIndex: 1, term: 5, chainHash: 'hash-1' });
      const [rows] = await e.read([{ sql: 'SELECT count(*) FROM t' }]);
      assert.deepEqual(rows!.rows, [[0]]);
      assert.ok(e.isHealthy());
    });

    it('applies a no-op entry (no statements) by advancing the fencing row only', async () => {
      const e = await fresh();
      const r = await e.applyEntry(entry(1, [], 2));
      assert.deepEqual(r, { skipped: false, ok: true, results: [] });
      assert.deepEqual(await e.appliedState(), { appliedIndex: 1, term: 2, chainHash: 'hash-1' });
    });

    it('batch: a failing command is rolled back alone; commit makes the good ones visible with the fence', async () => {
      const e = await fresh();
      await e.applyEntry(entry(1, [CREATE_T, { sql: "INSERT INTO t(v) VALUES ('taken')" }]));
      await e.beginBatch();
      const good = await e.execInBatch([{ sql: "INSERT INTO t(v) VALUES ('good')" }, { sql: "UPDATE t SET n = 1 WHERE v = 'good'" }]);
      assert.ok(good.ok);
      assert.equal(good.results[0]!.lastInsertId, 2);
      const bad = await e.execInBatch([{ sql: "INSERT INTO t(v) VALUES ('half')" }, { sql: "INSERT INTO t(v) VALUES ('taken')" }]);
      assert.ok(!bad.ok);
      assert.equal(bad.batchAborted, false);
      assert.equal(bad.error.statementIndex, 1);
      await e.commitBatch({ appliedIndex: 3, term: 1, chainHash: 'hash-3' });
      const [rows] = await e.read([{ sql: 'SELECT v, n FROM t ORDER BY id' }]);
      assert.deepEqual(rows!.rows, [
        ['taken', null],
        ['good', 1],
      ]);
      assert.deepEqual(await e.appliedState(), { appliedIndex: 3, term: 1, chainHash: 'hash-3' });
    });

    it('reads never see an open batch; they do after commit', async () => {
      const e = await fresh();
      await e.applyEntry(entry(1, [CREATE_T]));
      await e.beginBatch();
      const r = await e.execInBatch([{ sql: "INSERT INTO t(v) VALUES ('speculative')" }]);
      assert.ok(r.ok);
      const [during] = await e.read([{ sql: 'SELECT count(*) FROM t' }]);
      assert.deepEqual(during!.rows, [[0]]);
      assert.equal((await e.appliedState()).appliedIndex, 1);
      assert.doesNotMatch(await e.dump(), /speculative/);
      await e.commitBatch({ appliedIndex: 2, term: 1, chainHash: 'hash-2' });
      const [afterCommit] = await e.read([{ sql: 'SELECT count(*) FROM t' }]);
      assert.deepEqual(afterCommit!.rows, [[1]]);
    });

    it('rollbackBatch discards everything; batch misuse is refused', async () => {
      const e = await fresh();
      await e.applyEntry(entry(1, [CREATE_T]));
      await assert.rejects(e.execInBatch([{ sql: 'SELECT 1' }]), /without an open batch/);
      await e.beginBatch();
      await assert.rejects(e.beginBatch(), /already open/);
      await assert.rejects(e.applyEntry(entry(2, [])), /batch is open/);
      assert.ok((await e.execInBatch([{ sql: "INSERT INTO t(v) VALUES ('gone')" }])).ok);
      await e.rollbackBatch();
      await e.rollbackBatch(); // idempotent
      const [rows] = await e.read([{ sql: 'SELECT count(*) FROM t' }]);
      assert.deepEqual(rows!.rows, [[0]]);
      assert.equal((await e.appliedState()).appliedIndex, 1);
      // A stale fence rolls the batch back and rejects.
      await e.beginBatch();
      await e.execInBatch([{ sql: "INSERT INTO t(v) VALUES ('stale')" }]);
      await assert.rejects(e.commitBatch({ appliedIndex: 1, term: 1, chainHash: 'x' }), /not ahead/);
      await assert.rejects(e.commitBatch({ appliedIndex: 2, term: 1, chainHash: 'x' }), /without an open batch/);
      const [still] = await e.read([{ sql: 'SELECT count(*) FROM t' }]);
      assert.deepEqual(still!.rows, [[0]]);
      // applyEntry works again once the batch is gone.
      await e.applyEntry(entry(2, [{ sql: "INSERT INTO t(v) VALUES ('after')" }]));
      assert.ok(e.isHealthy());
    });

    it('snapshotTo + installSnapshot give an identical database on another engine', async () => {
      const src = await fresh();
      await src.applyEntry(entry(1, [CREATE_T, { sql: 'CREATE INDEX t_n ON t(n)' }], 2));
      for (let i = 2; i <= 20; i++) {
        await src.applyEntry(entry(i, [{ sql: 'INSERT INTO t(v, n, b) VALUES (?, ?, ?)', params: [`v${i}`, i / 4, { $blob: Buffer.from([i, 0, 255]).toString('base64') }] }], 2));
      }
      const snap = path.join(dir, `snap-${++counter}.db`);
      const meta = await src.snapshotTo(snap);
      assert.deepEqual(meta, { appliedIndex: 20, term: 2, chainHash: 'hash-20' });
      await assert.rejects(src.snapshotTo(snap), /already exists/);

      const dst = await fresh();
      await dst.applyEntry(entry(1, [dialect.createOther], 1));
      assert.deepEqual(await dst.installSnapshot(snap), meta);
      assert.deepEqual(await dst.appliedState(), meta);
      assert.equal(await dst.dump(), await src.dump());
      // Both continue identically.
      const next = entry(21, [{ sql: "INSERT INTO t(v) VALUES ('after-snapshot')" }], 2);
      await src.applyEntry(next);
      await dst.applyEntry(next);
      assert.equal(await dst.dump(), await src.dump());
      const [rows] = await dst.read([{ sql: 'SELECT count(*) FROM t' }]);
      assert.deepEqual(rows!.rows, [[20]]);
      // An older snapshot is refused.
      await assert.rejects(dst.installSnapshot(snap), /older/);
      assert.ok(dst.isHealthy());
    });

    it('dump is deterministic, ordered by key and leaves out replisql tables', async () => {
      const statements: Statement[][] = dialect.dumpCase.entries;
      const a = await fresh();
      const b = await fresh();
      for (let i = 0; i < statements.length; i++) {
        await a.applyEntry(entry(i + 1, statements[i]!));
        await b.applyEntry(entry(i + 1, statements[i]!));
      }
      const d = await a.dump();
      assert.equal(d, await b.dump());
      assert.equal(d, await a.dump());
      assert.doesNotMatch(d, /_replisql_/);
      dialect.dumpCase.check(d);
      // A different history gives a different dump.
      await b.applyEntry(entry(5, [{ sql: "UPDATE k SET v = 'changed' WHERE a = 'a'" }]));
      assert.notEqual(await b.dump(), d);
    });

    it('round-trips blobs through params and results', async () => {
      const e = await fresh();
      const bytes = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) % 256));
      const empty = { $blob: '' };
      await e.applyEntry(entry(1, [CREATE_T, { sql: 'INSERT INTO t(v, b) VALUES (?, ?), (?, ?)', params: ['x', { $blob: bytes.toString('base64') }, 'empty', empty] }]));
      const [rows] = await e.read([{ sql: dialect.blobRead.sql }]);
      assert.deepEqual(rows!.rows, dialect.blobRead.expected(bytes));
      const [eq] = await e.read([{ sql: 'SELECT count(*) FROM t WHERE b = ?', params: [{ $blob: bytes.toString('base64') }] }]);
      assert.deepEqual(eq!.rows, [[1]]);
    });

    it('binds integers as INTEGER, booleans as 1/0, bigint exactly; refuses non-finite numbers', async () => {
      const e = await fresh();
      const bind = dialect.bindCheck;
      await e.applyEntry(entry(1, [bind.create, { sql: bind.insert, params: [3, 2.5, true, 9007199254740993n] }]));
      const [rows] = await e.read([{ sql: bind.select }]);
      assert.deepEqual(rows!.rows, bind.expected);
      const r = await e.applyEntry(entry(2, [{ sql: bind.insertOne, params: [Infinity] }]));
      assert.ok(!r.skipped && !r.ok);
      assert.equal(r.error.code, 'REPLISQL_BAD_PARAMETER');
    });

    it('read() refuses writes and reports SQL errors with the engine code', async () => {
      const e = await fresh();
      await e.applyEntry(entry(1, [CREATE_T]));
      await assert.rejects(e.read([{ sql: "INSERT INTO t(v) VALUES ('no')" }]), (err: unknown) => {
        assert.ok(err instanceof SqlEngineError);
        assert.equal(err.code, 'SQL_ERROR');
        assert.equal(err.engineCode, 'REPLISQL_NOT_READONLY');
        return true;
      });
      await assert.rejects(e.read([{ sql: 'SELEC 1' }]), (err: unknown) => {
        assert.ok(err instanceof SqlEngineError);
        assert.equal(err.engineCode, engineName === 'sqlite' ? 'SQLITE_ERROR' : err.engineCode);
        assert.match(err.message, dialect.syntaxErrorMessage);
        return true;
      });
      await assert.rejects(e.read([{ sql: 'SELECT 1; SELECT 2' }]), /more than one statement/);
      assert.ok(e.isHealthy());
    });

    it("refuses transaction control and writes to replisql's tables inside entries, as data", async () => {
      const e = await fresh();
      await e.applyEntry(entry(1, [CREATE_T]));
      for (const [i, sql] of [
        [2, 'COMMIT'],
        [3, '/* hi */ begin'],
        [4, 'UPDATE _replisql_state SET applied_index = 99'],
        [5, "ATTACH 'x.db' AS x"],
      ] as const) {
        const r = await e.applyEntry(entry(i, [{ sql: "INSERT INTO t(v) VALUES ('x')" }, { sql }]));
        assert.ok(!r.skipped && !r.ok, sql);
        assert.equal(r.error.code, 'REPLISQL_FORBIDDEN_STATEMENT');
        assert.equal((await e.appliedState()).appliedIndex, i);
      }
      const [rows] = await e.read([{ sql: 'SELECT count(*) FROM t' }]);
      assert.deepEqual(rows!.rows, [[0]]);
    });
  });
}
