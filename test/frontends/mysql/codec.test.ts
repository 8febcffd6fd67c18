// Codec tests on packets captured from real clients and a real MariaDB server
// (fixtures/mariadb-capture.ts says how they were captured).
import { ErrorCode, errorInfo, isErrorCode, sqlErrorInfo } from '../../../src/errors.js';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cachingSha2Token, nativePasswordToken, newScramble, verifyPassword } from '../../../src/frontends/mysql/auth.js';
import { planColumns } from '../../../src/frontends/mysql/columns.js';
import { Capability, FieldType } from '../../../src/frontends/mysql/constants.js';
import { describeSql } from '../../../src/frontends/mysql/describe.js';
import { errPacketOf } from '../../../src/frontends/mysql/errors.js';
import {
  AuthPlugin,
  decodeHandshakeResponse41,
  decodeHandshakeV10,
  encodeHandshakeResponse41,
  encodeHandshakeV10,
} from '../../../src/frontends/mysql/handshake.js';
import { framePayload, PacketSplitter } from '../../../src/frontends/mysql/packet.js';
import {
  countPlaceholders,
  decodeExecuteHeader,
  decodeExecuteParams,
  encodePrepareResponse,
  StatementRegistry,
} from '../../../src/frontends/mysql/prepared.js';
import {
  decodeColumnDefinition,
  decodeErr,
  decodeOk,
  encodeBinaryRow,
  encodeColumnDefinition,
  encodeEof,
  encodeErr,
  encodeOk,
  encodeStatementResult,
  encodeTextRow,
} from '../../../src/frontends/mysql/results.js';
import { parseTime, readBinaryDateTime, readBinaryTime } from '../../../src/frontends/mysql/temporal.js';
import { PayloadReader, PayloadWriter, ProtocolError } from '../../../src/frontends/mysql/wire.js';
import type { ColumnType, StatementResult } from '../../../src/storage/sql-engine.js';
import * as fx from './fixtures/mariadb-capture.js';

const hex = (h: string): Buffer => Buffer.from(h, 'hex');

describe('wire', () => {
  test('length-encoded integers at every size boundary round-trip', () => {
    for (const n of [0, 250, 251, 0xffff, 0x10000, 0xffffff, 0x1000000, 2 ** 53 - 1]) {
      const b = new PayloadWriter().lenencInt(n).finish();
      assert.equal(new PayloadReader(b).lenencInt('n'), n);
    }
    assert.deepEqual(new PayloadWriter().lenencInt(251).finish(), hex('fcfb00'));
    assert.deepEqual(new PayloadWriter().lenencInt(2n ** 64n - 1n).finish(), hex('feffffffffffffffff'));
    assert.equal(new PayloadReader(hex('fb')).lenencIntOrNull('x'), null);
  });

  test('a read past the end names the field', () => {
    assert.throws(() => new PayloadReader(hex('fc01')).lenencInt('affected rows'), (e: unknown) => e instanceof ProtocolError && /affected rows/.test(e.message));
    assert.throws(() => new PayloadReader(hex('6162')).nulString('user name'), /user name has no terminating NUL/);
    assert.throws(() => new PayloadReader(hex('ff')).lenencInt('column count'), /column count starts with 0xff/);
  });
});

describe('packet framing', () => {
  test('messages split across chunks and several in one chunk', () => {
    const s = new PacketSplitter(1024);
    const a = Buffer.concat(framePayload(hex('0301'), 0).frames);
    const b = Buffer.concat(framePayload(hex('0e'), 0).frames);
    const all = Buffer.concat([a, b]);
    assert.deepEqual(s.push(all.subarray(0, 2)), []);
    const ev = s.push(all.subarray(2));
    assert.equal(ev.length, 2);
    assert.deepEqual(ev.map((e) => (e.type === 'message' ? e.payload.toString('hex') : e.type)), ['0301', '0e']);
  });

  test('a payload of 0xFFFFFF bytes continues in the next packet; an exact multiple ends with an empty packet', () => {
    const payload = Buffer.alloc(0xffffff, 7);
    const { frames, nextSeq } = framePayload(payload, 0);
    assert.equal(frames.length, 4); // header+body, then header+empty body
    assert.equal(frames[2]!.readUIntLE(0, 3), 0);
    assert.equal(nextSeq, 2);
    const s = new PacketSplitter(64 * 1024 * 1024);
    const ev = s.push(Buffer.concat(frames));
    assert.equal(ev.length, 1);
    assert.ok(ev[0]!.type === 'message' && ev[0]!.payload.length === 0xffffff && ev[0]!.lastSeq === 1);
    const longer = framePayload(Buffer.alloc(0xffffff + 10, 1), 5);
    assert.equal(longer.nextSeq, 7);
  });

  test('a message over the bound is reported from its header, before the body arrives', () => {
    const s = new PacketSplitter(100);
    const header = Buffer.from([200, 0, 0, 0]);
    const ev = s.push(header);
    assert.deepEqual(ev, [{ type: 'tooLarge', announcedBytes: 200, maxPacketBytes: 100 }]);
    assert.deepEqual(s.push(Buffer.alloc(10)), []);
  });
});

describe('handshake', () => {
  test("decodes MariaDB's greeting", () => {
    const g = decodeHandshakeV10(hex(fx.mariadbGreeting));
    assert.equal(g.serverVersion, '5.5.5-10.11.19-MariaDB-0+deb12u1');
    assert.equal(g.connectionId, 10);
    assert.equal(g.scramble.length, 20);
    assert.equal(g.authPlugin, 'mysql_native_password');
    assert.ok(g.capabilities & Capability.PROTOCOL_41);
  });

  test('our greeting decodes to what we encoded; the scramble has no NUL byte', () => {
    const scramble = newScramble();
    assert.ok(!scramble.includes(0));
    const h = { serverVersion: '8.0.35-replisql', connectionId: 7, scramble, capabilities: 0x01ffa20f, charset: 45, statusFlags: 2, authPlugin: 'mysql_native_password' };
    assert.deepEqual(decodeHandshakeV10(encodeHandshakeV10(h)), h);
  });

  test("parses the Debian mariadb client's handshake response", () => {
    const r = decodeHandshakeResponse41(hex(fx.mariadbClientHandshakeResponse));
    assert.equal(r.user, 'root');
    assert.equal(r.database, 'test');
    assert.equal(r.authPlugin, 'mysql_native_password');
    assert.equal(r.authResponse.length, 0);
    assert.equal(r.attributes.get('_client_name'), 'libmariadb');
    assert.ok(r.capabilities & Capability.MULTI_STATEMENTS);
    assert.ok(r.capabilities & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA);
    assert.equal(r.charset, 33);
  });

  test("parses mysql2's handshake response", () => {
    const r = decodeHandshakeResponse41(hex(fx.mysql2HandshakeResponse));
    assert.equal(r.user, 'root');
    assert.equal(r.database, 'test');
    assert.equal(r.authPlugin, 'mysql_native_password');
    assert.equal(r.attributes.get('_client_name'), 'Node-MySQL-2');
    assert.equal(r.charset, 224);
    assert.equal(r.capabilities & Capability.SSL, 0);
  });

  test('a handshake response round-trips; an SSLRequest is refused with a clear error', () => {
    const h = {
      capabilities: Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.CONNECT_WITH_DB | Capability.CONNECT_ATTRS,
      maxPacketBytes: 1 << 24,
      charset: 45,
      user: 'app',
      authResponse: Buffer.alloc(20, 3),
      database: 'db1',
      authPlugin: 'mysql_native_password',
      attributes: new Map([['k', 'v']]),
    };
    assert.deepEqual(decodeHandshakeResponse41(encodeHandshakeResponse41(h)), h);
    const ssl = new PayloadWriter().u32(Capability.PROTOCOL_41 | Capability.SSL).u32(0).u8(45).zeros(23).finish();
    assert.throws(() => decodeHandshakeResponse41(ssl), /SSL\/TLS is not offered/);
  });
});

describe('auth', () => {
  const scramble = Buffer.from('0123456789abcdefghij');
  const users = [{ user: 'u', password: 'pw' }, { user: 'empty', password: '' }];
  test('mysql_native_password and caching_sha2_password tokens verify; wrong ones do not', () => {
    assert.ok(verifyPassword(users, 'u', AuthPlugin.NATIVE, scramble, nativePasswordToken('pw', scramble)));
    assert.ok(!verifyPassword(users, 'u', AuthPlugin.NATIVE, scramble, nativePasswordToken('px', scramble)));
    assert.ok(verifyPassword(users, 'u', AuthPlugin.CACHING_SHA2, scramble, cachingSha2Token('pw', scramble)));
    assert.ok(!verifyPassword(users, 'u', AuthPlugin.CACHING_SHA2, scramble, nativePasswordToken('pw', scramble)));
    assert.ok(verifyPassword(users, 'empty', AuthPlugin.NATIVE, scramble, Buffer.alloc(0)));
    assert.ok(!verifyPassword(users, 'nobody', AuthPlugin.NATIVE, scramble, Buffer.alloc(0)));
    assert.equal(nativePasswordToken('pw', scramble).length, 20);
    assert.equal(cachingSha2Token('pw', scramble).length, 32);
  });
});

describe('result packets against MariaDB', () => {
  test('OK, ERR and EOF are byte-equal to the server', () => {
    const ok = decodeOk(hex(fx.okInsert));
    assert.equal(ok.affectedRows, 1);
    assert.equal(ok.statusFlags, 2);
    assert.deepEqual(encodeOk({ affectedRows: 1, lastInsertId: 0, statusFlags: 2, warnings: 0 }), hex(fx.okInsert));
    const err = decodeErr(hex(fx.errDuplicate));
    assert.deepEqual(err, { errno: 1062, sqlState: '23000', message: "Duplicate entry '1' for key 'PRIMARY'" });
    assert.deepEqual(encodeErr(err), hex(fx.errDuplicate));
    assert.deepEqual(encodeEof(2), hex(fx.eofAfterColumns));
    assert.equal(decodeOk(hex(fx.okAfterAuth)).statusFlags & 2, 2);
  });

  test('column definitions round-trip byte for byte', () => {
    for (const h of [fx.textColumnDefInt, fx.textColumnDefString, fx.textColumnDefNull, fx.textColumnDefBinary, ...fx.captypesColumnDefs, ...fx.temporalColumnDefs]) {
      assert.deepEqual(encodeColumnDefinition(decodeColumnDefinition(hex(h))), hex(h));
    }
    const d = decodeColumnDefinition(hex(fx.captypesColumnDefs[5]));
    assert.equal(d.name, 'dt');
    assert.equal(d.type, FieldType.DATE);
  });

  test('a text row is byte-equal', () => {
    const r: StatementResult = { columns: ['a', 'b', 'c', 'd'], rows: [[1, 'x', null, { $blob: 'AP8=' }]], affectedRows: 0, lastInsertId: null };
    assert.deepEqual(encodeTextRow(planColumns(r), r.rows[0]!), hex(fx.textRow));
  });

  test('binary rows of every column type are byte-equal', () => {
    const types: ColumnType[] = ['int', 'float', 'decimal', 'text', 'blob', 'date', 'datetime', 'timestamp', 'time', 'year'];
    const values = ['9007199254740993', 1.5, '12.34', 'héllo', { $blob: 'AP8Q' }, '2024-02-29', '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15', '-838:59:59', 2024];
    const r: StatementResult = { columns: types.map((t) => t), columnTypes: types, rows: [values, types.map(() => null)], affectedRows: 0, lastInsertId: null };
    const plans = planColumns(r);
    assert.deepEqual(encodeBinaryRow(plans, r.rows[0]!), hex(fx.captypesRowValues));
    assert.deepEqual(encodeBinaryRow(plans, r.rows[1]!), hex(fx.captypesRowNulls));

    const t: StatementResult = {
      columns: ['t0', 'tz', 'dz', 'dmid'],
      columnTypes: ['time', 'time', 'date', 'datetime'],
      rows: [['12:00:00', '00:00:00', '2024-01-02', '2024-01-02 00:00:00']],
      affectedRows: 0,
      lastInsertId: null,
    };
    assert.deepEqual(encodeBinaryRow(planColumns(t), t.rows[0]!), hex(fx.temporalRow));

    const echo: StatementResult = {
      columns: ['a', 'b', 'c', 'd', 'e'],
      columnTypes: ['float', 'text', 'null', 'blob', 'datetime'],
      rows: [[42, 'héllo', null, { $blob: 'AQID' }, '2024-02-29 13:14:15.123']],
      affectedRows: 0,
      lastInsertId: null,
    };
    assert.deepEqual(encodeBinaryRow(planColumns(echo), echo.rows[0]!), hex(fx.paramEchoRow));
  });

  test('types are inferred from values when the engine gives none', () => {
    const r: StatementResult = {
      columns: ['i', 'f', 'b', 's', 'n', 'mixed'],
      rows: [[1, 1.5, { $blob: 'AA==' }, 'x', null, 1], [2, 2, { $blob: 'AQ==' }, 'y', null, 'z']],
      affectedRows: 0,
      lastInsertId: null,
    };
    const plans = planColumns(r);
    assert.deepEqual(plans.map((p) => p.fieldType), [FieldType.LONGLONG, FieldType.DOUBLE, FieldType.BLOB, FieldType.VAR_STRING, FieldType.VAR_STRING, FieldType.VAR_STRING]);
    assert.equal(plans[2]!.charset, 63);
    assert.equal(plans[3]!.charset, 45);
  });

  test('a value that does not fit its declared type turns the column into text', () => {
    const r: StatementResult = { columns: ['d'], columnTypes: ['date'], rows: [['2024-01-01'], ['not a date']], affectedRows: 0, lastInsertId: null };
    assert.equal(planColumns(r)[0]!.fieldType, FieldType.VAR_STRING);
  });

  test('CLIENT_DEPRECATE_EOF: no EOF after the columns, an OK with header 0xFE at the end', () => {
    const r: StatementResult = { columns: ['a'], rows: [[1]], affectedRows: 0, lastInsertId: null };
    const out: Buffer[] = [];
    encodeStatementResult(r, { format: 'text', deprecateEof: true, statusFlags: 2, schema: 'test' }, (p) => out.push(p));
    assert.equal(out.length, 4); // count, definition, row, OK
    assert.equal(out[3]![0], 0xfe);
    assert.equal(decodeOk(out[3]!).statusFlags, 2);
    const withEof: Buffer[] = [];
    encodeStatementResult(r, { format: 'text', deprecateEof: false, statusFlags: 10, schema: 'test' }, (p) => withEof.push(p));
    assert.equal(withEof.length, 5);
    assert.deepEqual(withEof[4], encodeEof(10));
  });

  test('an OK carries a last insert id beyond 2^53 exactly', () => {
    const ok = encodeOk({ affectedRows: 1, lastInsertId: '18446744073709551615', statusFlags: 2, warnings: 0 });
    assert.deepEqual(ok.subarray(2, 11), hex('feffffffffffffffff'));
  });
});

describe('prepared statements', () => {
  test('the prepare response header is byte-equal to MariaDB', () => {
    const reg = new StatementRegistry(10, 1000);
    const stmt = reg.add('select ? as a, ? as b, ? as c, ? as d, ? as e', 5);
    const cols = planColumns({ columns: ['a', 'b', 'c', 'd', 'e'], rows: [], affectedRows: 0, lastInsertId: null });
    const out = encodePrepareResponse(stmt, cols, 'test', false);
    assert.deepEqual(out[0], hex(fx.prepareOk));
    assert.equal(out.length, 1 + 5 + 1 + 5 + 1);
  });

  test("decodes mysql2's COM_STMT_EXECUTE with int, string, null, Buffer and Date parameters", () => {
    const reg = new StatementRegistry(10, 1000);
    const stmt = reg.add('select ? as a, ? as b, ? as c, ? as d, ? as e', 5);
    const r = new PayloadReader(hex(fx.mysql2Execute));
    assert.equal(r.u8('command'), 0x17);
    assert.equal(decodeExecuteHeader(r).statementId, 1);
    assert.deepEqual(decodeExecuteParams(r, stmt), [42, 'héllo', null, { $blob: 'AQID' }, '2024-02-29 13:14:15.123000']);
    // A later execute without types reuses them.
    const again = new PayloadWriter().u32(1).u8(0).u32(1).u8(0b11111).u8(0).finish();
    const r2 = new PayloadReader(again);
    decodeExecuteHeader(r2);
    assert.deepEqual(decodeExecuteParams(r2, stmt), [null, null, null, null, null]);
  });

  test('integer parameters beyond 2^53 become decimal strings; unsigned flags are honoured', () => {
    const reg = new StatementRegistry(10, 1000);
    const stmt = reg.add('?,?,?', 3);
    const w = new PayloadWriter().u32(stmt.id).u8(0).u32(1).u8(0).u8(1);
    w.u16(FieldType.LONGLONG | 0x8000).u16(FieldType.LONGLONG).u16(FieldType.TINY);
    w.u64(2n ** 64n - 1n).i64(-(2n ** 60n)).u8(0xff);
    const r = new PayloadReader(w.finish());
    decodeExecuteHeader(r);
    assert.deepEqual(decodeExecuteParams(r, stmt), ['18446744073709551615', String(-(2n ** 60n)), -1]);
  });

  test('cursors are refused; the first execute must send types; the statement count is bounded', () => {
    assert.throws(() => decodeExecuteHeader(new PayloadReader(new PayloadWriter().u32(1).u8(1).u32(1).finish())), /cursors are not supported/);
    const reg = new StatementRegistry(2, 1000);
    const s = reg.add('?', 1);
    const r = new PayloadReader(new PayloadWriter().u32(s.id).u8(0).u32(1).u8(0).u8(0).finish());
    decodeExecuteHeader(r);
    assert.throws(() => decodeExecuteParams(r, s), /must send the parameter types/);
    reg.add('x', 0);
    assert.throws(() => reg.add('y', 0), (e: unknown) => e instanceof ProtocolError && e.errno === 1461);
  });

  test('long data accumulates per parameter and is bounded', () => {
    const reg = new StatementRegistry(2, 10);
    const s = reg.add('?', 1);
    reg.appendLongData(s, 0, Buffer.from('hello'));
    reg.appendLongData(s, 0, Buffer.from('world'));
    assert.equal(s.longDataError, null);
    reg.appendLongData(s, 0, Buffer.from('!'));
    assert.match(s.longDataError ?? '', /exceeds 10 bytes/);
  });

  test('placeholders are counted with the lexer: not inside strings, identifiers or comments', () => {
    assert.equal(countPlaceholders("select '?', `?`, \"?\", ? /* ? */, ? -- ?\n"), 2);
    assert.equal(countPlaceholders('insert into t values (?, ?, ?)'), 3);
  });

  test('the describe probe runs a row statement with a zero limit and leaves others alone', () => {
    assert.equal(describeSql('SELECT c FROM t WHERE id = ?'), 'SELECT c FROM t WHERE id = ? LIMIT 0');
    assert.equal(describeSql('select * from t limit ?;'), 'SELECT * FROM (select * from t limit ?) AS replisql_describe LIMIT 0');
    assert.equal(describeSql('select * from t where id in (select id from u limit 1)'), 'select * from t where id in (select id from u limit 1) LIMIT 0');
    assert.equal(describeSql('select 1 into @x'), null);
    assert.equal(describeSql('insert into t values (?)'), null);
    assert.equal(describeSql('(select 1) union (select 2)'), '(select 1) union (select 2) LIMIT 0');
  });
});

describe('temporal values', () => {
  test('binary parameters become the engine string forms', () => {
    assert.equal(readBinaryDateTime(new PayloadReader(hex('04e8070102')), 'p', true), '2024-01-02');
    assert.equal(readBinaryDateTime(new PayloadReader(hex('00')), 'p', false), '0000-00-00 00:00:00');
    assert.equal(readBinaryTime(new PayloadReader(hex('080122000000163b3b')), 'p'), '-838:59:59');
    assert.equal(readBinaryTime(new PayloadReader(hex('0c00000000000c000040e20100')), 'p'), '12:00:00.123456');
    assert.throws(() => readBinaryTime(new PayloadReader(hex('05')), 'parameter 3'), /parameter 3 has length 5/);
    assert.deepEqual(parseTime('-01:02:03.5'), { negative: true, hours: 1, minute: 2, second: 3, microsecond: 500000 });
  });
});

describe('error mapping', () => {
  const cases: [string, string, number, string][] = [
    ['ER_DUP_ENTRY', "Duplicate entry '1' for key 'PRIMARY'", 1062, '23000'],
    ['SQLITE_CONSTRAINT_UNIQUE', 'UNIQUE constraint failed: t.id', 1062, '23000'],
    ['SQLITE_CONSTRAINT_PRIMARYKEY', 'x', 1062, '23000'],
    ['SQLITE_CONSTRAINT_NOTNULL', 'x', 1048, '23000'],
    ['SQLITE_CONSTRAINT_FOREIGNKEY', 'x', 1452, '23000'],
    ['SQLITE_CONSTRAINT_CHECK', 'x', 4025, '23000'],
    ['SQLITE_ERROR', 'no such table: t', 1146, '42S02'],
    ['SQLITE_ERROR', 'no such column: x', 1054, '42S22'],
    ['SQLITE_ERROR', 'near "selec": syntax error', 1064, '42000'],
    ['SQLITE_ERROR', 'something else', 1105, 'HY000'],
    ['NO_QUORUM', 'no majority', 1047, '08S01'],
    ['NOT_COORDINATOR', 'x', 1047, '08S01'],
    ['TRANSACTION_ABORTED', 'coordinator changed', 1213, '40001'],
    ['UNKNOWN_OUTCOME', 'timed out', 1180, 'HY000'],
    ['UNSAFE_STATEMENT', 'RAND()', 1235, '42000'],
    ['BAD_REQUEST', 'SQL text too long', 1064, '42000'],
    ['BAD_REQUEST', 'too many sessions', 1105, 'HY000'],
    ['ER_BAD_DB_ERROR', "Unknown database 'x'", 1049, '42000'],
    ['SOMETHING', 'Unknown database x', 1049, '42000'],
  ];
  for (const [code, message, errno, sqlState] of cases) {
    test(`${code}: ${message} -> ${errno} ${sqlState}`, () => {
      const p = errPacketOf(isErrorCode(code) && code !== 'SQL_ERROR' ? errorInfo(code, message) : sqlErrorInfo({ engineCode: code }, message));
      assert.equal(p.errno, errno);
      assert.equal(p.sqlState, sqlState);
    });
  }
  test('given errno and SQLSTATE win; cluster errors say which layer spoke; database messages pass through', () => {
    assert.deepEqual(errPacketOf(sqlErrorInfo({ engineCode: 'ER_X', errno: 1234, sqlState: '12345' }, 'm')), { errno: 1234, sqlState: '12345', message: 'm' });
    assert.equal(errPacketOf(errorInfo(ErrorCode.NO_QUORUM, 'no majority')).message, 'replisql NO_QUORUM: no majority');
    assert.equal(errPacketOf(sqlErrorInfo({ engineCode: 'SQLITE_ERROR' }, 'no such table: t')).message, 'no such table: t');
  });
});
