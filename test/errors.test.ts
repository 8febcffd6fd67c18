// The error model (src/errors.ts): cluster errors and SQL errors as one discriminated union, read
// from frames field by field, and the same through the exception form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, errorInfo, parseErrorInfo, ReplisqlError, SqlError, sqlErrorInfo, statementErrorInfo, toErrorInfo } from '../src/errors.js';
import { SqlEngineError } from '../src/storage/sql-engine.js';

test('an SQL error keeps the database detail as fields; a cluster error keeps its hint and reason', () => {
  const dup = sqlErrorInfo({ engineCode: 'ER_DUP_ENTRY', errno: 1062, sqlState: '23000' }, "Duplicate entry 'a' for key 'k'");
  assert.deepEqual(parseErrorInfo(JSON.parse(JSON.stringify(dup))), dup);
  const refused = errorInfo(ErrorCode.NO_QUORUM, 'only 1 of 3 nodes reachable', 3);
  assert.deepEqual(parseErrorInfo(JSON.parse(JSON.stringify(refused))), refused);
  const bad = errorInfo(ErrorCode.BAD_REQUEST, 'frame of 9 bytes exceeds maxFrameBytes=4', null, 'FRAME_TOO_LARGE');
  assert.deepEqual(parseErrorInfo(bad), { code: 'BAD_REQUEST', message: 'frame of 9 bytes exceeds maxFrameBytes=4', reason: 'FRAME_TOO_LARGE' });
});

test('malformed errors from a frame are refused with what is wrong', () => {
  const cases: [unknown, RegExp][] = [
    [null, /must be an object/],
    [{ code: 'WEIRD', message: 'x' }, /unknown error code "WEIRD"/],
    [{ code: 'NO_QUORUM', message: 7 }, /error\.message must be a string/],
    [{ code: 'NO_QUORUM', message: 'x'.repeat(70_000) }, /at most 65536 characters/],
    [{ code: 'NO_QUORUM', message: 'x', coordinatorHint: -1 }, /coordinatorHint must be a node id/],
    [{ code: 'BAD_REQUEST', message: 'x', reason: 'lower case' }, /error\.reason/],
    [{ code: 'SQL_ERROR', message: 'x' }, /must carry its "sql" detail/],
    [{ code: 'SQL_ERROR', message: 'x', sql: { engineCode: '' } }, /engineCode must be a string of 1 to 64/],
    [{ code: 'SQL_ERROR', message: 'x', sql: { engineCode: 'ER_X', errno: 1.5 } }, /errno must be a positive integer/],
    [{ code: 'SQL_ERROR', message: 'x', sql: { engineCode: 'ER_X', sqlState: '2300' } }, /sqlState must be five characters/],
  ];
  for (const [value, why] of cases) {
    const r = parseErrorInfo(value);
    assert.equal(typeof r, 'string', `refused: ${JSON.stringify(value)?.slice(0, 60)}`);
    assert.match(r as string, why);
  }
});

test('a statement error from an engine becomes an SQL error, except replisql refusing an unsafe statement', () => {
  assert.deepEqual(statementErrorInfo({ code: 'SQLITE_CONSTRAINT_UNIQUE', message: 'UNIQUE constraint failed: t.k' }), {
    code: 'SQL_ERROR',
    message: 'UNIQUE constraint failed: t.k',
    sql: { engineCode: 'SQLITE_CONSTRAINT_UNIQUE' },
  });
  assert.deepEqual(statementErrorInfo({ code: 'ER_LOCK_DEADLOCK', message: 'Deadlock found', errno: 1213, sqlState: '40001' }).code, 'SQL_ERROR');
  assert.deepEqual(statementErrorInfo({ code: 'UNSAFE_STATEMENT', message: 'UUID() differs between replicas' }), { code: 'UNSAFE_STATEMENT', message: 'UUID() differs between replicas' });
});

test('the exception form round-trips, keeps its cause, and engine failures that are not SQL errors keep their cluster code', () => {
  const cause = new Error('socket hang up');
  const sql = new SqlEngineError(ErrorCode.SQL_ERROR, 'ER_NO_SUCH_TABLE', "Table 'test.t' doesn't exist", { errno: 1146, sqlState: '42S02', cause });
  assert.ok(sql instanceof ReplisqlError);
  assert.deepEqual(sql.sql, { engineCode: 'ER_NO_SUCH_TABLE', errno: 1146, sqlState: '42S02' });
  assert.equal(sql.cause, cause);
  assert.deepEqual(toErrorInfo(sql), { code: 'SQL_ERROR', message: "Table 'test.t' doesn't exist", sql: { engineCode: 'ER_NO_SUCH_TABLE', errno: 1146, sqlState: '42S02' } });
  const again = ReplisqlError.fromInfo(toErrorInfo(sql));
  assert.ok(again instanceof SqlError);
  assert.deepEqual(again.toInfo(), toErrorInfo(sql));

  const unhealthy = new SqlEngineError(ErrorCode.UNHEALTHY, 'SQLITE_IOERR_FSYNC', 'fsync failed');
  assert.equal(unhealthy.sql, null);
  assert.deepEqual(toErrorInfo(unhealthy), { code: 'UNHEALTHY', message: 'fsync failed' });
  assert.deepEqual(toErrorInfo(new TypeError('x is undefined'), ErrorCode.BAD_REQUEST), { code: 'BAD_REQUEST', message: 'x is undefined' });
  const hinted = ReplisqlError.fromInfo(errorInfo(ErrorCode.NOT_COORDINATOR, 'ask node 3', 3));
  assert.equal(hinted.coordinatorHint, 3);
  assert.equal(hinted.sql, null);
});
