// The statements a client session answers itself: transaction control, SET/USE, SELECT @@var.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSessionStatement, parseSystemSelect, parseTransactionStatement } from '../../src/sessions/session-statements.js';


/** A SET that changes nothing but what a test names. */
const NO_CHANGE = { type: 'set', autocommit: null, readConsistency: null, maxStalenessMs: null, writeAck: null } as const;

test('transaction control: BEGIN/START TRANSACTION/COMMIT/END/ROLLBACK, and what is refused', () => {
  for (const sql of ['BEGIN', 'begin work', 'START TRANSACTION', 'start transaction with consistent snapshot', 'BEGIN IMMEDIATE TRANSACTION']) {
    assert.deepEqual(parseTransactionStatement(sql, 'mysql'), { type: 'begin' }, sql);
  }
  for (const sql of ['COMMIT', 'commit work', 'END', 'END TRANSACTION', 'COMMIT AND NO CHAIN']) assert.deepEqual(parseTransactionStatement(sql, 'sqlite'), { type: 'commit' }, sql);
  assert.deepEqual(parseTransactionStatement('ROLLBACK WORK', 'mysql'), { type: 'rollback' });
  assert.deepEqual(parseTransactionStatement('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED', 'mysql'), { type: 'accept' });
  for (const [sql, re] of [
    ['ROLLBACK TO SAVEPOINT a', /savepoints/],
    ['SAVEPOINT a', /not supported/],
    ['RELEASE SAVEPOINT a', /not supported/],
    ['COMMIT AND CHAIN', /CHAIN/],
    ['XA START 1', /XA/],
    ['SET GLOBAL TRANSACTION ISOLATION LEVEL SERIALIZABLE', /GLOBAL/],
    ['SET TRANSACTION READ ONLY', /READ ONLY/],
  ] as const) {
    const r = parseTransactionStatement(sql, 'mysql');
    assert.equal(r.type, 'refuse', sql);
    if (r.type === 'refuse') assert.match(r.message, re, sql);
  }
});

test('SET: autocommit values, accepted no-op variables, refusals that name the variable; USE', () => {
  assert.deepEqual(parseSessionStatement('SET autocommit = 0', 'mysql'), { ...NO_CHANGE, autocommit: false });
  assert.deepEqual(parseSessionStatement('set @@session.autocommit=ON', 'mysql'), { ...NO_CHANGE, autocommit: true });
  assert.deepEqual(parseSessionStatement("SET SESSION autocommit = 'OFF'", 'mysql'), { ...NO_CHANGE, autocommit: false });
  assert.deepEqual(parseSessionStatement('SET NAMES utf8mb4 COLLATE utf8mb4_general_ci, autocommit=1', 'mysql'), { ...NO_CHANGE, autocommit: true });
  assert.deepEqual(parseSessionStatement('SET character_set_results = NULL', 'mysql'), { ...NO_CHANGE, autocommit: null });
  assert.deepEqual(parseSessionStatement('SET CHARACTER SET utf8', 'mysql'), { ...NO_CHANGE, autocommit: null });
  assert.deepEqual(parseSessionStatement('SET @@tx_isolation = "READ-COMMITTED"', 'mysql'), { ...NO_CHANGE, autocommit: null });
  for (const [sql, re] of [
    ['SET sql_mode = ""', /sql_mode is not supported/],
    ['SET time_zone = "+00:00"', /time_zone is not supported/],
    ['SET @x = 1', /user variables \(@x\)/],
    ['SET GLOBAL max_connections = 10', /GLOBAL/],
    ['SET @@global.sql_mode = ""', /global/],
    ['SET autocommit = 2', /autocommit takes/],
    ['LOCK TABLES t WRITE', /LOCK is not supported/],
    ['USE a b', /exactly one/],
  ] as const) {
    const r = parseSessionStatement(sql, 'mysql');
    assert.equal(r.type, 'refuse', sql);
    if (r.type === 'refuse') assert.match(r.message, re, sql);
  }
  for (const sql of ['SELEC 1', 'INSRT INTO t VALUES (1)', 'hello']) {
    const r = parseSessionStatement(sql, 'mysql');
    assert.equal(r.type, 'syntax-error', sql);
    if (r.type === 'syntax-error') assert.match(r.message, /error in your SQL syntax near/);
  }
  assert.deepEqual(parseSessionStatement('USE `shop`', 'mysql'), { type: 'use', database: 'shop' });
  assert.deepEqual(parseSessionStatement('use main', 'sqlite'), { type: 'use', database: 'main' });
});

test('SELECT @@var / DATABASE(): items with labels and aliases; anything else is not a system select', () => {
  assert.deepEqual(parseSystemSelect('select @@version_comment limit 1'), [{ label: '@@version_comment', name: 'version_comment' }]);
  assert.deepEqual(parseSystemSelect('SELECT DATABASE(), @@session.autocommit AS ac, VERSION() v'), [
    { label: 'DATABASE()', name: 'database()' },
    { label: 'ac', name: 'autocommit' },
    { label: 'v', name: 'version()' },
  ]);
  for (const sql of ['SELECT 1', 'SELECT @@version, id FROM t', 'SELECT * FROM t WHERE a = @@x', 'SELECT NOW()', 'SELECT @@x + 1', 'INSERT INTO t VALUES (1)']) {
    assert.equal(parseSystemSelect(sql), null, sql);
  }
});

test('SET of replisql session variables: read level, staleness bound, write ack; bad values name the valid ones', () => {
  assert.deepEqual(parseSessionStatement("SET SESSION replisql_read_consistency = 'linearizable'", 'mysql'), { ...NO_CHANGE, readConsistency: 'linearizable' });
  assert.deepEqual(parseSessionStatement('SET replisql_read_consistency = BOUNDED, replisql_read_max_staleness_ms = 250', 'mysql'), { ...NO_CHANGE, readConsistency: 'bounded', maxStalenessMs: 250 });
  assert.deepEqual(parseSessionStatement("SET @@session.replisql_write_ack = 'all-applied'", 'mysql'), { ...NO_CHANGE, writeAck: 'all-applied' });
  assert.deepEqual(parseSessionStatement('SET replisql_write_ack = all-applied', 'mysql'), { ...NO_CHANGE, writeAck: 'all-applied' });
  const refused = (sql: string): string => {
    const r = parseSessionStatement(sql, 'mysql');
    assert.equal(r.type, 'refuse', sql);
    return r.type === 'refuse' ? r.message : '';
  };
  assert.match(refused("SET replisql_read_consistency = 'eventual'"), /unknown read consistency "eventual" in replisql_read_consistency: expected one of local, session, bounded, linearizable/);
  assert.match(refused('SET replisql_read_max_staleness_ms = -1'), /replisql_read_max_staleness_ms must be an integer number of milliseconds/);
  assert.match(refused("SET replisql_write_ack = 'maybe'"), /unknown ack level "maybe" in replisql_write_ack: expected one of one, quorum, all, all-applied/);
});
