import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { classifyScript, classifyStatement, SqlLexError, type StatementKind } from '../../src/sql/index.js';

const TABLE: readonly (readonly [sql: string, kind: StatementKind, verb: string])[] = [
  ['SELECT * FROM t', 'read', 'SELECT'],
  ['select 1', 'read', 'SELECT'],
  ['SELECT * FROM t WHERE id = 1 FOR UPDATE', 'read', 'SELECT'],
  ['VALUES (1), (2)', 'read', 'VALUES'],
  ['EXPLAIN QUERY PLAN SELECT 1', 'read', 'EXPLAIN'],
  ['EXPLAIN DELETE FROM t', 'read', 'EXPLAIN'],
  ['EXPLAIN ANALYZE DELETE FROM t WHERE id = 1', 'write', 'EXPLAIN'],
  ['EXPLAIN ANALYZE SELECT 1', 'read', 'EXPLAIN'],
  ['SHOW TABLES', 'read', 'SHOW'],
  ['DESCRIBE t', 'read', 'DESCRIBE'],
  ['DESC t', 'read', 'DESC'],
  ['(SELECT 1) UNION (SELECT 2)', 'read', 'SELECT'],
  ['((SELECT 1))', 'read', 'SELECT'],
  ['/* hi */ -- there\n  SELECT 1', 'read', 'SELECT'],
  ['WITH a AS (SELECT 1) SELECT * FROM a', 'read', 'WITH'],
  ['WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5) SELECT x FROM c', 'read', 'WITH'],
  ['WITH a AS (SELECT 1) (SELECT * FROM a)', 'read', 'WITH'],
  ['WITH a AS (SELECT id FROM t) UPDATE t SET v = 1 WHERE id IN (SELECT id FROM a)', 'write', 'WITH'],
  ['WITH a AS MATERIALIZED (SELECT 1), b(x) AS (SELECT 2) DELETE FROM t WHERE id IN (SELECT x FROM b)', 'write', 'WITH'],
  ['WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a', 'write', 'WITH'],
  ['WITH a AS (SELECT 1) REPLACE INTO t SELECT * FROM a', 'write', 'WITH'],
  ['INSERT INTO t VALUES (1)', 'write', 'INSERT'],
  ['INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET v = excluded.v', 'write', 'INSERT'],
  ['insert into t values (1) on duplicate key update v = 2', 'write', 'INSERT'],
  ['UPDATE t SET v = 1', 'write', 'UPDATE'],
  ['DELETE FROM t', 'write', 'DELETE'],
  ['REPLACE INTO t VALUES (1)', 'write', 'REPLACE'],
  ['CALL p(1)', 'write', 'CALL'],
  ['CREATE TABLE t (id INTEGER PRIMARY KEY)', 'ddl', 'CREATE'],
  ['DROP TABLE t', 'ddl', 'DROP'],
  ['ALTER TABLE t ADD COLUMN c', 'ddl', 'ALTER'],
  ['TRUNCATE TABLE t', 'ddl', 'TRUNCATE'],
  ['RENAME TABLE a TO b', 'ddl', 'RENAME'],
  ['REINDEX', 'ddl', 'REINDEX'],
  ['ANALYZE', 'ddl', 'ANALYZE'],
  ['VACUUM', 'ddl', 'VACUUM'],
  ['BEGIN', 'transaction', 'BEGIN'],
  ['BEGIN IMMEDIATE TRANSACTION', 'transaction', 'BEGIN'],
  ['START TRANSACTION', 'transaction', 'START'],
  ['START SLAVE', 'session', 'START'],
  ['COMMIT', 'transaction', 'COMMIT'],
  ['END TRANSACTION', 'transaction', 'END'],
  ['ROLLBACK TO SAVEPOINT s', 'transaction', 'ROLLBACK'],
  ['SAVEPOINT s', 'transaction', 'SAVEPOINT'],
  ['RELEASE s', 'transaction', 'RELEASE'],
  ['SET NAMES utf8mb4', 'session', 'SET'],
  ['USE db', 'session', 'USE'],
  ['PRAGMA table_info(t)', 'read', 'PRAGMA'],
  ['PRAGMA main.index_list(t)', 'read', 'PRAGMA'],
  ['PRAGMA integrity_check', 'read', 'PRAGMA'],
  ['pragma Compile_Options', 'read', 'PRAGMA'],
  ['PRAGMA journal_mode = WAL', 'session', 'PRAGMA'],
  ['PRAGMA foreign_keys', 'session', 'PRAGMA'],
  ['PRAGMA user_version = 3', 'session', 'PRAGMA'],
  ['PRAGMA optimize', 'session', 'PRAGMA'],
  ['ATTACH DATABASE \'x.db\' AS x', 'session', 'ATTACH'],
  ['LOCK TABLES t WRITE', 'session', 'LOCK'],
  ['FROBNICATE everything', 'session', 'FROBNICATE'],
  ["'just a string'", 'session', ''],
  ['', 'empty', ''],
  ['  -- only a comment\n', 'empty', ''],
  [';', 'empty', ''],
];

describe('classifyStatement', () => {
  for (const [sql, kind, verb] of TABLE) {
    it(`${JSON.stringify(sql)} is ${kind}`, () => {
      assert.deepEqual(classifyStatement(sql), { kind, verb });
    });
  }

  it('a trailing semicolon is fine', () => {
    assert.deepEqual(classifyStatement('DELETE FROM t;'), { kind: 'write', verb: 'DELETE' });
  });

  it('refuses several statements, so a write cannot hide behind a read', () => {
    assert.throws(() => classifyStatement('SELECT 1; DELETE FROM t'), (e: unknown) => {
      assert.ok(e instanceof SqlLexError);
      assert.equal(e.position, 10);
      assert.match(e.message, /expected a single statement but found 2/);
      return true;
    });
  });

  it('reads the dialect: a MySQL /*! */ comment is code', () => {
    assert.deepEqual(classifyStatement('/*!40000 DELETE FROM t */', { dialect: 'mysql' }), { kind: 'write', verb: 'DELETE' });
    assert.deepEqual(classifyStatement('/*!40000 DELETE FROM t */'), { kind: 'empty', verb: '' });
  });

  it('MariaDB BEGIN NOT ATOMIC is a write', () => {
    assert.deepEqual(classifyStatement('BEGIN NOT ATOMIC INSERT INTO t VALUES (1); END', { dialect: 'mysql' }), {
      kind: 'write',
      verb: 'BEGIN',
    });
  });
});

describe('classifyScript', () => {
  it('classifies each statement and reports whether the script writes', () => {
    const script = classifyScript("SELECT 1; INSERT INTO t VALUES ('a;b'); -- x\n");
    assert.deepEqual(script, {
      statements: [
        { sql: 'SELECT 1', class: { kind: 'read', verb: 'SELECT' } },
        { sql: "INSERT INTO t VALUES ('a;b')", class: { kind: 'write', verb: 'INSERT' } },
      ],
      isWrite: true,
    });
  });

  it('DDL makes a script a write; reads, transactions and session statements do not', () => {
    assert.equal(classifyScript('BEGIN; CREATE TABLE t(x); COMMIT').isWrite, true);
    assert.equal(classifyScript('BEGIN; SELECT 1; PRAGMA table_info(t); COMMIT').isWrite, false);
    assert.equal(classifyScript('SET a = 1').isWrite, false);
    assert.deepEqual(classifyScript(''), { statements: [], isWrite: false });
  });

  it('a MySQL-escaped quote hides no statement in MySQL, and shows one in SQLite', () => {
    const sql = "SELECT 'x\\'; DELETE FROM t; --'";
    assert.equal(classifyScript(sql, { dialect: 'mysql' }).isWrite, false);
    assert.equal(classifyScript(sql).isWrite, true);
  });
});
