// MysqlEngine: the SqlEngine contract suite, run against a real MariaDB instance started by the
// harness (one database per engine name). Skipped with the reason when MariaDB cannot be started
// here; fails instead when REPLISQL_REQUIRE_MYSQL=1. MySQL-specific behaviour: test/mysql/.
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { MysqlEngine } from '../../src/storage/mysql/mysql-engine.js';
import { startMariaDb } from '../mysql/mariadb-harness.js';
import { sqlEngineSuite, type SuiteDialect } from './sql-engine-suite.js';

export const MYSQL_DIALECT: SuiteDialect = {
  createT: { sql: 'CREATE TABLE t(id INTEGER AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100) UNIQUE, n DOUBLE, b BLOB)' },
  createOther: { sql: 'CREATE TABLE other(x INT)' },
  multiRowInsertId: 'first',
  syntaxErrorMessage: /error in your SQL syntax/,
  blobRead: {
    sql: 'SELECT b, CHARSET(b), LENGTH(b) FROM t ORDER BY id',
    expected: (bytes) => [
      [{ $blob: bytes.toString('base64') }, 'binary', 300],
      [{ $blob: '' }, 'binary', 0],
    ],
  },
  bindCheck: {
    create: { sql: 'CREATE TABLE n(id INT AUTO_INCREMENT PRIMARY KEY, x VARCHAR(40))' },
    insert: 'INSERT INTO n(x) VALUES (?), (?), (?), (?)',
    insertOne: 'INSERT INTO n(x) VALUES (?)',
    select: 'SELECT x FROM n ORDER BY id',
    expected: [['3'], ['2.5'], ['1'], ['9007199254740993']],
  },
  dumpCase: {
    entries: [
      [
        { sql: 'CREATE TABLE k(a VARCHAR(10), b INT, v VARCHAR(20), PRIMARY KEY (a, b))' },
        { sql: 'CREATE TABLE r(x INT, y VARBINARY(10))' },
        { sql: 'CREATE VIEW kv AS SELECT a, v FROM k' },
      ],
      [{ sql: "INSERT INTO k VALUES ('b', 2, '1.0'), ('a', 9, 'text'), ('b', 1, NULL)" }],
      [{ sql: "INSERT INTO r VALUES (3, '3.5'), (1, ?), (2, ?)", params: [1, { $blob: 'AP8=' }] }],
      [{ sql: 'DELETE FROM r WHERE x = 3' }, { sql: "INSERT INTO r VALUES (0, '0')" }],
    ],
    check: (d) => {
      assert.match(d, /^database charset=utf8mb4 /);
      assert.match(d, /table `k`\n {2}CREATE TABLE `k` \([\s\S]*\n {2}rows=3 checksum=[0-9]+\n/);
      assert.match(d, /table `r`\n[\s\S]*rows=3 checksum=[0-9]+\n/);
      assert.match(d, /view `kv`\n {2}CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `kv` AS select/);
      assert.doesNotMatch(d, /AUTO_INCREMENT=|DEFINER=/);
    },
  },
};

const env = await startMariaDb(1);
after(() => env.stop());

sqlEngineSuite(
  'mariadb',
  (_dir, name) => {
    const inst = env.instances[0]!;
    return new MysqlEngine({ ...inst.connection(), database: `suite_${name}`, createDatabase: true, readConnections: 2 });
  },
  MYSQL_DIALECT,
  { skip: env.skip },
);
