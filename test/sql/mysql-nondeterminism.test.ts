import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { findMysqlNondeterminism, SqlLexError } from '../../src/sql/index.js';

function unsafeNames(sql: string): string[] {
  return findMysqlNondeterminism(sql).unsafe.map((u) => u.name);
}

describe('findMysqlNondeterminism: pinnable', () => {
  it('finds time and random functions, each once, in order', () => {
    const r = findMysqlNondeterminism(
      'INSERT INTO t VALUES (NOW(), now(), CURDATE(), CURTIME(), RAND(), RAND(7), LAST_INSERT_ID(), UNIX_TIMESTAMP())',
    );
    assert.deepEqual(r, { pinnable: ['NOW', 'CURDATE', 'CURTIME', 'RAND', 'LAST_INSERT_ID', 'UNIX_TIMESTAMP'], unsafe: [] });
  });

  it('finds the keywords that work without parentheses', () => {
    const r = findMysqlNondeterminism(
      'UPDATE t SET a = CURRENT_TIMESTAMP, b = CURRENT_DATE, c = current_time, d = LOCALTIME, e = LOCALTIMESTAMP(), f = UTC_TIMESTAMP, g = UTC_DATE(), h = UTC_TIME',
    );
    assert.deepEqual(r.pinnable, [
      'CURRENT_TIMESTAMP', 'CURRENT_DATE', 'CURRENT_TIME', 'LOCALTIME', 'LOCALTIMESTAMP', 'UTC_TIMESTAMP', 'UTC_DATE', 'UTC_TIME',
    ]);
  });

  it('UNIX_TIMESTAMP(x) is a pure conversion; NOW without parentheses is a column', () => {
    assert.deepEqual(findMysqlNondeterminism("SELECT UNIX_TIMESTAMP('2020-01-01'), now FROM t").pinnable, []);
  });

  it('finds functions inside executable comments', () => {
    assert.deepEqual(findMysqlNondeterminism('INSERT INTO t VALUES (1 /*!50000 , NOW() */)').pinnable, ['NOW']);
  });

  it('finds ON UPDATE CURRENT_TIMESTAMP', () => {
    assert.deepEqual(findMysqlNondeterminism('ALTER TABLE t MODIFY at TIMESTAMP ON UPDATE CURRENT_TIMESTAMP').pinnable, ['CURRENT_TIMESTAMP']);
  });

  it('finds DEFAULT CURRENT_TIMESTAMP (MySQL pins it with SET TIMESTAMP)', () => {
    assert.deepEqual(
      findMysqlNondeterminism('CREATE TABLE t (at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP)').pinnable,
      ['CURRENT_TIMESTAMP'],
    );
  });
});

describe('findMysqlNondeterminism: unsafe', () => {
  it('finds unsafe functions with a reason', () => {
    const r = findMysqlNondeterminism(
      "INSERT INTO t VALUES (UUID(), UUID_SHORT(), SYSDATE(), LOAD_FILE('/etc/x'), CONNECTION_ID(), USER(), CURRENT_USER, SESSION_USER(), SYSTEM_USER(), FOUND_ROWS(), ROW_COUNT(), GET_LOCK('a', 1), RELEASE_LOCK('a'), SLEEP(1), VERSION(), DATABASE())",
    );
    assert.deepEqual(r.unsafe.map((u) => u.name), [
      'UUID', 'UUID_SHORT', 'SYSDATE', 'LOAD_FILE', 'CONNECTION_ID', 'USER', 'CURRENT_USER', 'SESSION_USER', 'SYSTEM_USER',
      'FOUND_ROWS', 'ROW_COUNT', 'GET_LOCK', 'RELEASE_LOCK', 'SLEEP', 'VERSION',
    ]);
    for (const u of r.unsafe) assert.ok(u.reason.length > 10, `${u.name} has a reason`);
    assert.match(r.unsafe.find((u) => u.name === 'SYSDATE')!.reason, /ignores the pinned timestamp/);
    assert.equal(r.pinnable.length, 0);
  });

  it('USER needs parentheses to be the function (CREATE USER, mysql.user are names)', () => {
    assert.deepEqual(unsafeNames("CREATE USER 'a'@'%'; SELECT * FROM mysql.user; SELECT t.uuid() FROM t"), []);
  });

  it('ignores names in strings, quoted identifiers and comments', () => {
    assert.deepEqual(
      findMysqlNondeterminism("INSERT INTO t (`now`, \"uuid()\") VALUES ('NOW()', 'UUID()') -- SLEEP(1)\n # RAND()\n /* SYSDATE() */"),
      { pinnable: [], unsafe: [] },
    );
  });

  it('UPDATE/DELETE with LIMIT and no ORDER BY at top level are unsafe', () => {
    assert.deepEqual(unsafeNames('UPDATE t SET a = 1 LIMIT 10'), ['UPDATE ... LIMIT']);
    assert.deepEqual(unsafeNames('DELETE FROM t WHERE a > 1 LIMIT 10'), ['DELETE ... LIMIT']);
    assert.deepEqual(unsafeNames('DELETE FROM t WHERE a > 1 ORDER BY id LIMIT 10'), []);
    assert.deepEqual(unsafeNames('UPDATE t SET a = (SELECT b FROM s ORDER BY b LIMIT 1) LIMIT 3'), ['UPDATE ... LIMIT']);
    assert.deepEqual(unsafeNames('DELETE FROM t WHERE id IN (SELECT id FROM (SELECT id FROM s LIMIT 3) x)'), []);
    assert.deepEqual(unsafeNames('WITH c AS (SELECT 1) DELETE FROM t LIMIT 1'), ['DELETE ... LIMIT']);
    assert.deepEqual(unsafeNames('INSERT INTO t SELECT * FROM s LIMIT 5'), ['INSERT ... SELECT ... LIMIT']);
    assert.deepEqual(unsafeNames('SELECT * FROM t LIMIT 5'), []);
    const reason = findMysqlNondeterminism('DELETE FROM t LIMIT 1').unsafe[0]!.reason;
    assert.match(reason, /ORDER BY/);
  });

  it('LOAD DATA reads a file outside the log', () => {
    assert.deepEqual(unsafeNames("LOAD DATA INFILE '/tmp/x' INTO TABLE t"), ['LOAD DATA']);
  });

  it('looks at every statement of a script', () => {
    const r = findMysqlNondeterminism('SET @a = 1; INSERT INTO t VALUES (NOW()); DELETE FROM t LIMIT 1; SELECT UUID()');
    assert.deepEqual(r.pinnable, ['NOW']);
    assert.deepEqual(r.unsafe.map((u) => u.name), ['DELETE ... LIMIT', 'UUID']);
  });

  it('throws SqlLexError on bad input, honouring the MySQL lexical rules', () => {
    assert.throws(() => findMysqlNondeterminism("SELECT 'abc\\'"), SqlLexError);
    assert.deepEqual(findMysqlNondeterminism("SELECT 'abc\\'", { noBackslashEscapes: true }), { pinnable: [], unsafe: [] });
  });
});
