// MysqlServer against a real client (mysql2) and a raw socket for what real clients never send.
// The server is backed by SqliteTestSession (in-memory SQLite): these tests are about the protocol.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mysql from 'mysql2/promise';
import { Command } from '../../../src/frontends/mysql/constants.js';
import { decodeColumnDefinition, decodeErr, decodeOk } from '../../../src/frontends/mysql/results.js';
import { encodeHandshakeResponse41 } from '../../../src/frontends/mysql/handshake.js';
import { nativePasswordToken } from '../../../src/frontends/mysql/auth.js';
import { PayloadWriter } from '../../../src/frontends/mysql/wire.js';
import { RAW_CLIENT_CAPS, RawClient } from './raw-client.js';
import { startTestServer, type TestServer } from './test-server.js';

type Conn = mysql.Connection;

function connectOpts(ts: TestServer, extra: Partial<mysql.ConnectionOptions> = {}): mysql.ConnectionOptions {
  return { host: '127.0.0.1', port: ts.port, user: 'root', password: '', database: 'test', ...extra };
}

async function stillServes(ts: TestServer): Promise<void> {
  const c = await mysql.createConnection(connectOpts(ts));
  const [rows] = await c.query('SELECT 1 AS one');
  assert.deepEqual(rows, [{ one: 1 }]);
  await c.end();
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('mysql2 against MysqlServer', () => {
  let ts: TestServer;
  let c: Conn;
  before(async () => {
    ts = await startTestServer();
    c = await mysql.createConnection(connectOpts(ts, { multipleStatements: true, supportBigNumbers: true, bigNumberStrings: true }));
    await c.query(
      'CREATE TABLE t (id INTEGER PRIMARY KEY, i BIGINT, f DOUBLE, s TEXT, b BLOB, d DATE, dt DATETIME, ts TIMESTAMP, tm TIME, y YEAR, n TEXT NOT NULL DEFAULT \'x\')',
    );
  });
  after(async () => {
    await c?.end();
    await ts?.close();
  });

  test('query: ints, floats, utf8 strings, NULL and blobs come back as mysql2 types', async () => {
    const [rows, fields] = await c.query("SELECT 1 AS i, -2.5 AS f, 'héllo wörld ✓ 𝄞' AS s, NULL AS n, x'00ff10' AS b");
    // Integers are always LONGLONG, which bigNumberStrings turns into strings.
    assert.deepEqual(rows, [{ i: '1', f: -2.5, s: 'héllo wörld ✓ 𝄞', n: null, b: Buffer.from([0, 0xff, 0x10]) }]);
    assert.deepEqual(fields.map((f) => f.name), ['i', 'f', 's', 'n', 'b']);
  });

  test('execute: parameters of every kind round-trip, temporal columns decode like MariaDB', async () => {
    const when = new Date(2024, 1, 29, 13, 14, 15, 123);
    const [ins] = await c.execute('INSERT INTO t (id, i, f, s, b, d, dt, ts, tm, y) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [
      1, 42, 1.25, 'ünïcødé', Buffer.from([1, 2, 3]), '2024-02-29', when, '2024-02-29 13:14:15', '-12:34:56', 2024,
    ]);
    assert.equal((ins as mysql.ResultSetHeader).affectedRows, 1);
    assert.equal((ins as mysql.ResultSetHeader).insertId, 1);
    const [rows] = await c.execute('SELECT id, i, f, s, b, d, dt, ts, tm, y FROM t WHERE id = ?', [1]);
    const r = (rows as mysql.RowDataPacket[])[0]!;
    assert.equal(r.id, '1'); // bigNumberStrings: LONGLONG as string
    assert.equal(r.f, 1.25);
    assert.equal(r.s, 'ünïcødé');
    assert.deepEqual(r.b, Buffer.from([1, 2, 3]));
    assert.deepEqual(r.d, new Date(2024, 1, 29));
    assert.deepEqual(r.dt, when);
    assert.deepEqual(r.ts, new Date(2024, 1, 29, 13, 14, 15));
    assert.equal(r.tm, '-12:34:56');
    assert.equal(r.y, 2024);
    // The text protocol gives the same values.
    const [trows] = await c.query('SELECT d, dt, tm FROM t WHERE id = 1');
    const tr = (trows as mysql.RowDataPacket[])[0]!;
    assert.deepEqual(tr.d, new Date(2024, 1, 29));
    assert.deepEqual(tr.dt, when);
    assert.equal(tr.tm, '-12:34:56');
  });

  test('NULL parameters and NULL columns', async () => {
    await c.execute('INSERT INTO t (id, i, s) VALUES (?, ?, ?)', [2, null, null]);
    const [rows] = await c.execute('SELECT i, s, d FROM t WHERE id = ?', [2]);
    assert.deepEqual(rows, [{ i: null, s: null, d: null }]);
  });

  test('big integers beyond 2^53 are exact in both protocols', async () => {
    await c.query('INSERT INTO t (id, i) VALUES (3, 9007199254740993)');
    const [q] = await c.query('SELECT i FROM t WHERE id = 3');
    assert.deepEqual(q, [{ i: '9007199254740993' }]);
    const [e] = await c.execute('SELECT i FROM t WHERE id = ?', [3]);
    assert.deepEqual(e, [{ i: '9007199254740993' }]);
    const [p] = await c.execute('SELECT id FROM t WHERE i = ?', ['9007199254740993']);
    assert.deepEqual(p, [{ id: '3' }]);
  });

  test('multi-statements: one result per statement; an error ends the sequence', async () => {
    const [results] = await c.query('SELECT 1 AS a; SELECT 2 AS b; UPDATE t SET s = s WHERE id = 1');
    const arr = results as unknown[];
    assert.equal(arr.length, 3);
    assert.deepEqual(arr[0], [{ a: '1' }]);
    assert.deepEqual(arr[1], [{ b: '2' }]);
    assert.equal((arr[2] as mysql.ResultSetHeader).affectedRows, 1);
    await assert.rejects(c.query('SELECT 1; SELECT * FROM missing; SELECT 3'), (e: mysql.QueryError) => e.errno === 1146);
    const [after] = await c.query('SELECT 4 AS d');
    assert.deepEqual(after, [{ d: '4' }]);
  });

  test('without multipleStatements a multi-statement text is refused', async () => {
    const single = await mysql.createConnection(connectOpts(ts));
    await assert.rejects(single.query('SELECT 1; SELECT 2'), (e: mysql.QueryError) => e.errno === 1064);
    await single.end();
  });

  test('errors carry the right errno, SQLSTATE and code', async () => {
    await assert.rejects(c.query('INSERT INTO t (id) VALUES (1)'), (e: mysql.QueryError) => e.errno === 1062 && e.sqlState === '23000' && e.code === 'ER_DUP_ENTRY');
    await assert.rejects(c.execute('SELECT * FROM nope WHERE id = ?', [1]), (e: mysql.QueryError) => e.errno === 1146 && e.sqlState === '42S02' && e.code === 'ER_NO_SUCH_TABLE');
    await assert.rejects(c.query('SELEC 1'), (e: mysql.QueryError) => e.errno === 1064 && e.code === 'ER_PARSE_ERROR');
    await assert.rejects(c.query('SELECT nosuchcol FROM t'), (e: mysql.QueryError) => e.errno === 1054 && e.sqlState === '42S22');
    await assert.rejects(c.query('INSERT INTO t (id, n) VALUES (9, NULL)'), (e: mysql.QueryError) => e.errno === 1048);
    await assert.rejects(c.query(''), (e: mysql.QueryError) => e.errno === 1065);
  });

  test('transactions show in the status flags', async () => {
    const [begin] = await c.query('BEGIN');
    assert.equal((begin as mysql.ResultSetHeader).serverStatus & 1, 1);
    const [commit] = await c.query('COMMIT');
    assert.equal((commit as mysql.ResultSetHeader).serverStatus & 1, 0);
    assert.equal((commit as mysql.ResultSetHeader).serverStatus & 2, 2);
  });

  test('many prepared statements, and closing them', async () => {
    for (let i = 0; i < 200; i++) {
      const [rows] = await c.execute(`SELECT ? + ${i} AS v`, [1]);
      assert.deepEqual(rows, [{ v: String(i + 1) }]);
      c.unprepare(`SELECT ? + ${i} AS v`);
    }
    const stmt = await c.prepare('SELECT ? AS a, ? AS b');
    const [rows] = await stmt.execute(['x', 2.5]);
    assert.deepEqual(rows, [{ a: 'x', b: 2.5 }]);
    await stmt.close();
  });

  test('the prepared statement bound refuses the next one with 1461, closing frees room', async () => {
    const small = await startTestServer({ maxPreparedStatements: 3 });
    const k = await mysql.createConnection(connectOpts(small));
    for (let i = 0; i < 3; i++) await k.execute(`SELECT ${i} AS v`);
    await assert.rejects(k.execute('SELECT 99 AS v'), (e: mysql.QueryError) => e.errno === 1461);
    k.unprepare('SELECT 0 AS v');
    const [rows] = await k.execute('SELECT 99 AS v');
    assert.deepEqual(rows, [{ v: 99 }]);
    await k.end();
    await small.close();
  });

  test('with a session that describes statements, prepare reports its columns and its errors', async () => {
    const d = await startTestServer({}, true);
    d.db.exec("CREATE TABLE p (id INTEGER PRIMARY KEY, s TEXT); INSERT INTO p VALUES (1, 'one')");
    const k = await mysql.createConnection(connectOpts(d));
    try {
      const stmt = await k.prepare('SELECT id, s FROM p WHERE id = ?');
      // mysql2's promise wrapper keeps the prepare response's column definitions on .statement
      const columns = (stmt as unknown as { statement: { columns: { name: string }[] } }).statement.columns;
      assert.deepEqual(columns.map((col) => col.name), ['id', 's']);
      const [rows] = await stmt.execute([1]);
      assert.deepEqual(rows, [{ id: 1, s: 'one' }]);
      await stmt.close();
      await assert.rejects(k.prepare('SELECT * FROM nope'), (e: mysql.QueryError) => e.errno === 1146);
    } finally {
      await k.end();
      await d.close();
    }
  });

  test('ping, changeUser to another user, and reconnects', async () => {
    const k = await mysql.createConnection(connectOpts(ts));
    await k.ping();
    await k.changeUser({ user: 'app', password: 'sécret-pw' });
    const [rows] = await k.query('SELECT 5 AS v');
    assert.deepEqual(rows, [{ v: 5 }]);
    await k.end();
  });
});

describe('authentication', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer();
  });
  after(async () => ts?.close());

  test('a user with a password logs in; a wrong password or user gets 1045 28000', async () => {
    const ok = await mysql.createConnection(connectOpts(ts, { user: 'app', password: 'sécret-pw' }));
    await ok.end();
    await assert.rejects(mysql.createConnection(connectOpts(ts, { user: 'app', password: 'nope' })), (e: mysql.QueryError) =>
      e.errno === 1045 && e.sqlState === '28000' && /Access denied for user 'app'@'127\.0\.0\.1' \(using password: YES\)/.test(e.message),
    );
    await assert.rejects(mysql.createConnection(connectOpts(ts, { user: 'app', password: '' })), /using password: NO/);
    await assert.rejects(mysql.createConnection(connectOpts(ts, { user: 'ghost', password: 'x' })), (e: mysql.QueryError) => e.errno === 1045);
    await assert.rejects(mysql.createConnection(connectOpts(ts, { database: 'other' })), (e: mysql.QueryError) => e.errno === 1049);
    await stillServes(ts);
  });

  test('caching_sha2_password fast path (greeting names it, mysql2 follows)', async () => {
    const sha = await startTestServer({ defaultAuthPlugin: 'caching_sha2_password' });
    const k = await mysql.createConnection(connectOpts(sha, { user: 'app', password: 'sécret-pw' }));
    const [rows] = await k.query('SELECT 1 AS v');
    assert.deepEqual(rows, [{ v: 1 }]);
    await k.end();
    await assert.rejects(mysql.createConnection(connectOpts(sha, { user: 'app', password: 'bad' })), (e: mysql.QueryError) => e.errno === 1045);
    await sha.close();
  });

  test('a client asking for another plugin is switched to mysql_native_password', async () => {
    const c = await RawClient.open(ts.port);
    const g = await c.readGreeting();
    c.send(encodeHandshakeResponse41({ capabilities: RAW_CLIENT_CAPS, maxPacketBytes: 1 << 24, charset: 45, user: 'app', authResponse: Buffer.from('whatever'), database: null, authPlugin: 'client_ed25519', attributes: new Map() }), 1);
    const sw = await c.next();
    assert.equal(sw.payload[0], 0xfe);
    assert.equal(sw.seq, 2);
    assert.match(sw.payload.toString('latin1'), /mysql_native_password/);
    c.send(nativePasswordToken('sécret-pw', g.scramble), 3);
    const ok = await c.next();
    assert.equal(ok.payload[0], 0x00);
    assert.equal(ok.seq, 4);
    c.close();
  });
});

describe('limits and bad input', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer({ maxConnections: 3, maxPacketBytes: 4096, connectTimeoutMs: 300 });
  });
  after(async () => ts?.close());

  test('one connection over maxConnections gets 1040 08004 Too many connections', async () => {
    const conns = await Promise.all([1, 2, 3].map(() => mysql.createConnection(connectOpts(ts))));
    await assert.rejects(mysql.createConnection(connectOpts(ts)), (e: mysql.QueryError) => e.errno === 1040 && e.sqlState === '08004');
    await conns[0]!.end();
    await waitFor(() => ts.server.connectionCount < 3, 'a connection to close');
    const again = await mysql.createConnection(connectOpts(ts));
    await again.end();
    await Promise.all(conns.slice(1).map((k) => k.end()));
  });

  test('an oversized packet gets ERR 1153 and the connection closes; others keep working', async () => {
    const k = await mysql.createConnection(connectOpts(ts));
    await assert.rejects(k.query(`SELECT '${'x'.repeat(5000)}'`), (e: mysql.QueryError) => e.errno === 1153 || e.code === 'PROTOCOL_CONNECTION_LOST');
    await stillServes(ts);
    const raw = await RawClient.login(ts.port);
    raw.send(Buffer.concat([Buffer.from([Command.QUERY]), Buffer.alloc(5000, 0x20)]));
    const err = decodeErr((await raw.next()).payload);
    assert.equal(err.errno, 1153);
    assert.match(err.message, /max_allowed_packet/);
    await raw.waitClosed();
  });

  test('a malformed packet gets an ERR naming the field; the connection stays usable', async () => {
    const raw = await RawClient.login(ts.port);
    raw.send(Buffer.from([Command.STMT_EXECUTE, 1, 0]));
    const err = decodeErr((await raw.next()).payload);
    assert.equal(err.errno, 1835);
    assert.match(err.message, /statement id/);
    raw.send(Buffer.from([0x55]));
    const unknown = decodeErr((await raw.next()).payload);
    assert.equal(unknown.errno, 1047);
    assert.equal(unknown.sqlState, '08S01');
    raw.send(Buffer.from([Command.PING]));
    const pong = await raw.next();
    assert.equal(pong.payload[0], 0x00);
    assert.equal(pong.seq, 1);
    raw.send(Buffer.from([Command.STMT_EXECUTE, 9, 0, 0, 0, 0, 1, 0, 0, 0]));
    assert.equal(decodeErr((await raw.next()).payload).errno, 1243);
    raw.send(Buffer.from([Command.STMT_FETCH, 1, 0, 0, 0, 1, 0, 0, 0]));
    assert.match(decodeErr((await raw.next()).payload).message, /cursors are not supported/);
    raw.close();
    await stillServes(ts);
  });

  test('garbage bytes instead of a handshake close the connection; the server keeps serving', async () => {
    const raw = await RawClient.open(ts.port);
    await raw.readGreeting();
    raw.writeRaw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await raw.waitClosed();
    const raw2 = await RawClient.open(ts.port);
    await raw2.readGreeting();
    raw2.writeRaw(Buffer.from([5, 0, 0, 1, 1, 2, 3, 4, 5]));
    const err = decodeErr((await raw2.next()).payload);
    assert.match(err.message, /malformed|protocol 4\.1/);
    await raw2.waitClosed();
    await stillServes(ts);
  });

  test('a client that disconnects mid-handshake or says nothing is cleaned up', async () => {
    const before = ts.sessions.length;
    const raw = await RawClient.open(ts.port);
    await raw.readGreeting();
    raw.writeRaw(Buffer.from([100, 0, 0, 1, 0x0f]));
    raw.close();
    const silent = await RawClient.open(ts.port);
    await silent.readGreeting();
    await silent.waitClosed(2000); // connectTimeoutMs 300
    await waitFor(() => ts.server.connectionCount === 0, 'connections to be gone');
    assert.equal(ts.sessions.length, before);
    await stillServes(ts);
  });

  test('quit closes the session; the idle timeout closes idle connections', async () => {
    const idle = await startTestServer({ waitTimeoutMs: 200 });
    const k = await mysql.createConnection(connectOpts(idle));
    const closed = new Promise<void>((resolve) => k.on('error', () => resolve()));
    await closed;
    assert.equal(idle.sessions[0]!.closed, true);
    const q = await mysql.createConnection(connectOpts(idle));
    await q.end();
    await waitFor(() => idle.sessions[1]!.closed, 'the session to close');
    await idle.close();
  });
});

describe('commands mysql2 does not send', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer();
    ts.db.exec("CREATE TABLE f (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO f VALUES (1, 'a')");
  });
  after(async () => ts?.close());

  test('COM_FIELD_LIST lists column definitions then EOF; unknown table is an ERR', async () => {
    const raw = await RawClient.login(ts.port);
    raw.send(Buffer.concat([Buffer.from([Command.FIELD_LIST]), Buffer.from('f\0')]));
    const a = decodeColumnDefinition((await raw.next()).payload);
    const b = decodeColumnDefinition((await raw.next()).payload);
    assert.deepEqual([a.name, a.table, b.name], ['id', 'f', 'name']);
    assert.equal((await raw.next()).payload[0], 0xfe);
    raw.send(Buffer.concat([Buffer.from([Command.FIELD_LIST]), Buffer.from('nope\0')]));
    assert.equal(decodeErr((await raw.next()).payload).errno, 1146);
    raw.close();
  });

  test('COM_INIT_DB, COM_STATISTICS, COM_SET_OPTION, COM_RESET_CONNECTION', async () => {
    const raw = await RawClient.login(ts.port);
    raw.send(Buffer.concat([Buffer.from([Command.INIT_DB]), Buffer.from('test')]));
    assert.equal((await raw.next()).payload[0], 0x00);
    raw.send(Buffer.concat([Buffer.from([Command.INIT_DB]), Buffer.from('other')]));
    assert.equal(decodeErr((await raw.next()).payload).errno, 1049);
    raw.send(Buffer.from([Command.STATISTICS]));
    assert.match((await raw.next()).payload.toString(), /^Uptime: \d+/);
    raw.send(Buffer.from([Command.SET_OPTION, 1, 0])); // multi-statements off
    assert.equal((await raw.next()).payload[0], 0xfe);
    raw.send(Buffer.concat([Buffer.from([Command.QUERY]), Buffer.from('SELECT 1; SELECT 2')]));
    assert.equal(decodeErr((await raw.next()).payload).errno, 1064);
    raw.send(Buffer.from([Command.RESET_CONNECTION]));
    assert.equal(decodeOk((await raw.next()).payload).statusFlags & 2, 2);
    assert.equal(ts.sessions.at(-1)!.resets, 1);
    raw.send(Buffer.from([Command.QUIT]));
    await raw.waitClosed();
  });

  test('COM_STMT_SEND_LONG_DATA supplies a parameter; COM_STMT_RESET clears it', async () => {
    const raw = await RawClient.login(ts.port);
    raw.send(Buffer.concat([Buffer.from([Command.STMT_PREPARE]), Buffer.from('SELECT ? AS v')]));
    const prep = (await raw.next()).payload;
    const id = prep.readUInt32LE(1);
    assert.equal(prep.readUInt16LE(5), 1); // one column
    assert.equal(prep.readUInt16LE(7), 1); // one parameter
    for (let i = 0; i < 4; i++) await raw.next(); // param def, EOF, column def, EOF
    for (const part of ['long ', 'data']) {
      raw.send(new PayloadWriter().u8(Command.STMT_SEND_LONG_DATA).u32(id).u16(0).string(part).finish());
    }
    raw.send(new PayloadWriter().u8(Command.STMT_EXECUTE).u32(id).u8(0).u32(1).u8(0).u8(1).u16(0xfd).finish());
    const packets = [];
    for (let i = 0; i < 5; i++) packets.push((await raw.next()).payload);
    assert.equal(packets[0]![0], 1); // one column
    assert.equal(packets[3]!.subarray(3).toString(), 'long data'); // binary row: 0x00, bitmap, lenenc
    raw.send(new PayloadWriter().u8(Command.STMT_RESET).u32(id).finish());
    assert.equal((await raw.next()).payload[0], 0x00);
    raw.send(new PayloadWriter().u8(Command.STMT_CLOSE).u32(id).finish());
    raw.send(new PayloadWriter().u8(Command.STMT_EXECUTE).u32(id).u8(0).u32(1).finish());
    assert.equal(decodeErr((await raw.next()).payload).errno, 1243);
    raw.close();
  });

  test('a command split over several TCP writes and pipelined commands are answered in order', async () => {
    const raw = await RawClient.login(ts.port);
    const q = Buffer.concat([Buffer.from([5, 0, 0, 0, Command.QUERY]), Buffer.from('SELE')]);
    raw.writeRaw(q.subarray(0, 3));
    await new Promise((r) => setTimeout(r, 20));
    raw.writeRaw(q.subarray(3));
    raw.send(Buffer.from([Command.PING]));
    assert.equal(decodeErr((await raw.next()).payload).errno, 1064);
    assert.equal((await raw.next()).payload[0], 0x00);
    raw.close();
  });
});
