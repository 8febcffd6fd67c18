// Server-side prepared statements: the statements of one connection (bounded), the
// COM_STMT_PREPARE response, and the decoding of COM_STMT_EXECUTE / COM_STMT_SEND_LONG_DATA.
//
// The result columns announced at prepare time come from describe.ts; the EXECUTE response
// carries the definitions of the columns as they turned out (clients take types from there).
import type { SqlValue } from '../../storage/sql-engine.js';
import { tokenize } from '../../sql/index.js';
import type { ColumnPlan } from './columns.js';
import { Charset, ColumnFlag, ErrorNumber, FieldType, ServerStatus } from './constants.js';
import { columnDefinitionOf, encodeColumnDefinition, encodeEof } from './results.js';
import { readBinaryDateTime, readBinaryTime } from './temporal.js';
import { PayloadReader, PayloadWriter, ProtocolError } from './wire.js';

/** MySQL's hard limit on placeholders per statement (the count is a 2-byte field). */
export const MAX_PARAMS_PER_STATEMENT = 65535;

/** Counts the `?` placeholders of a statement, ignoring those inside strings, identifiers and comments. */
export function countPlaceholders(sql: string): number {
  let n = 0;
  for (const t of tokenize(sql, { dialect: 'mysql' })) if (t.kind === 'param' && t.text === '?') n++;
  return n;
}

export interface PreparedStatement {
  readonly id: number;
  readonly sql: string;
  readonly paramCount: number;
  /** Parameter types (2 bytes each: type, then 0x80 when unsigned) from the last execute that sent them. */
  paramTypes: number[] | null;
  /** COM_STMT_SEND_LONG_DATA chunks per parameter, until the next execute or reset. */
  longData: Map<number, Buffer[]>;
  longDataBytes: number;
  /** An error from SEND_LONG_DATA (which has no reply), reported by the next execute. */
  longDataError: string | null;
}

/** The prepared statements of one connection. */
export class StatementRegistry {
  private readonly byId = new Map<number, PreparedStatement>();
  private nextId = 1;

  constructor(
    private readonly maxStatements: number,
    private readonly maxLongDataBytes: number,
  ) {}

  get size(): number {
    return this.byId.size;
  }

  /** Throws ER_MAX_PREPARED_STMT_COUNT_REACHED when no statement can be added. */
  checkRoom(): void {
    if (this.byId.size >= this.maxStatements) {
      throw new ProtocolError(
        `Can't create more than max_prepared_stmt_count statements (current value: ${this.maxStatements}); close statements you no longer use`,
        ErrorNumber.MAX_PREPARED_STMT_COUNT_REACHED,
        '42000',
      );
    }
  }

  add(sql: string, paramCount: number): PreparedStatement {
    this.checkRoom();
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    const stmt: PreparedStatement = { id, sql, paramCount, paramTypes: null, longData: new Map(), longDataBytes: 0, longDataError: null };
    this.byId.set(id, stmt);
    return stmt;
  }

  get(id: number, command: string): PreparedStatement {
    const s = this.byId.get(id);
    if (s === undefined) {
      throw new ProtocolError(`Unknown prepared statement handler (${id}) given to ${command}`, ErrorNumber.UNKNOWN_STMT_HANDLER, 'HY000');
    }
    return s;
  }

  /** null when unknown (SEND_LONG_DATA and CLOSE have no reply to carry an error). */
  find(id: number): PreparedStatement | null {
    return this.byId.get(id) ?? null;
  }

  close(id: number): void {
    this.byId.delete(id);
  }

  clear(): void {
    this.byId.clear();
  }

  appendLongData(stmt: PreparedStatement, param: number, data: Buffer): void {
    if (stmt.longDataError !== null) return;
    if (param >= stmt.paramCount) {
      stmt.longDataError = `COM_STMT_SEND_LONG_DATA for parameter ${param}, the statement has ${stmt.paramCount}`;
      return;
    }
    if (stmt.longDataBytes + data.length > this.maxLongDataBytes) {
      stmt.longDataError = `long data for statement ${stmt.id} exceeds ${this.maxLongDataBytes} bytes (max_allowed_packet)`;
      stmt.longData.clear();
      return;
    }
    const chunks = stmt.longData.get(param) ?? [];
    chunks.push(Buffer.from(data));
    stmt.longData.set(param, chunks);
    stmt.longDataBytes += data.length;
  }

  resetLongData(stmt: PreparedStatement): void {
    stmt.longData.clear();
    stmt.longDataBytes = 0;
    stmt.longDataError = null;
  }
}

/** The COM_STMT_PREPARE response payloads: the header, parameter and column definitions. */
export function encodePrepareResponse(stmt: PreparedStatement, columns: readonly ColumnPlan[], schema: string, deprecateEof: boolean): Buffer[] {
  const out = [
    new PayloadWriter(12).u8(0x00).u32(stmt.id).u16(columns.length).u16(stmt.paramCount).u8(0).u16(0).finish(),
  ];
  if (stmt.paramCount > 0) {
    const def = encodeColumnDefinition({
      schema: '',
      table: '',
      orgTable: '',
      name: '?',
      orgName: '',
      charset: Charset.BINARY,
      length: 0,
      type: FieldType.VAR_STRING,
      flags: ColumnFlag.BINARY,
      decimals: 0,
    });
    for (let i = 0; i < stmt.paramCount; i++) out.push(def);
    if (!deprecateEof) out.push(encodeEof(ServerStatus.AUTOCOMMIT));
  }
  if (columns.length > 0) {
    for (const c of columns) out.push(encodeColumnDefinition(columnDefinitionOf(c, schema)));
    if (!deprecateEof) out.push(encodeEof(ServerStatus.AUTOCOMMIT));
  }
  return out;
}

const CURSOR_TYPE_MASK = 0x07;
const UNSIGNED_PARAM = 0x80;
const TWO_POW_53 = 2n ** 53n;

export interface ExecuteRequest {
  readonly statementId: number;
  readonly flags: number;
}

/** Reads the statement id and flags of a COM_STMT_EXECUTE payload (after the command byte). */
export function decodeExecuteHeader(r: PayloadReader): ExecuteRequest {
  const statementId = r.u32('statement id');
  const flags = r.u8('execute flags');
  r.u32('iteration count');
  if ((flags & CURSOR_TYPE_MASK) !== 0) {
    throw new ProtocolError(
      `cursors are not supported (COM_STMT_EXECUTE flags 0x${flags.toString(16)}); use CURSOR_TYPE_NO_CURSOR`,
      ErrorNumber.NOT_SUPPORTED_YET,
      '42000',
    );
  }
  return { statementId, flags };
}

function safeBig(v: bigint): number | string {
  return v > TWO_POW_53 || v < -TWO_POW_53 ? v.toString() : Number(v);
}

function isBlobType(t: number): boolean {
  return t === FieldType.TINY_BLOB || t === FieldType.MEDIUM_BLOB || t === FieldType.LONG_BLOB || t === FieldType.BLOB || t === FieldType.GEOMETRY || t === FieldType.BIT;
}

function isStringType(t: number): boolean {
  return (
    t === FieldType.STRING ||
    t === FieldType.VARCHAR ||
    t === FieldType.VAR_STRING ||
    t === FieldType.ENUM ||
    t === FieldType.SET ||
    t === FieldType.JSON ||
    t === FieldType.DECIMAL ||
    t === FieldType.NEWDECIMAL
  );
}

function readParam(r: PayloadReader, type: number, unsigned: boolean, field: string): SqlValue {
  switch (type) {
    case FieldType.NULL:
      return null;
    case FieldType.TINY: {
      const v = r.u8(field);
      return unsigned ? v : (v << 24) >> 24;
    }
    case FieldType.SHORT:
    case FieldType.YEAR: {
      const v = r.u16(field);
      return unsigned ? v : (v << 16) >> 16;
    }
    case FieldType.LONG:
    case FieldType.INT24: {
      const v = r.u32(field);
      return unsigned ? v : v | 0;
    }
    case FieldType.LONGLONG:
      return safeBig(unsigned ? r.u64(field) : r.i64(field));
    case FieldType.FLOAT:
      return r.f32(field);
    case FieldType.DOUBLE:
      return r.f64(field);
    case FieldType.DATE:
    case FieldType.NEWDATE:
      return readBinaryDateTime(r, field, true);
    case FieldType.DATETIME:
    case FieldType.TIMESTAMP:
      return readBinaryDateTime(r, field, false);
    case FieldType.TIME:
      return readBinaryTime(r, field);
    default:
      if (isBlobType(type)) return { $blob: r.lenencBytes(field).toString('base64') };
      if (isStringType(type)) return r.lenencString(field);
      throw new ProtocolError(`COM_STMT_EXECUTE: ${field} has unsupported type 0x${type.toString(16)}`, ErrorNumber.WRONG_ARGUMENTS, 'HY000');
  }
}

function longDataValue(type: number, chunks: Buffer[]): SqlValue {
  const bytes = Buffer.concat(chunks);
  if (isStringType(type)) return bytes.toString('utf8');
  return { $blob: bytes.toString('base64') };
}

/**
 * Reads the parameters of a COM_STMT_EXECUTE (the reader is just past the header). Parameter types
 * are remembered on the statement for later executes that do not resend them.
 */
export function decodeExecuteParams(r: PayloadReader, stmt: PreparedStatement): SqlValue[] {
  const n = stmt.paramCount;
  if (n === 0) return [];
  const bitmap = r.bytes((n + 7) >> 3, 'NULL bitmap');
  const newParamsBound = r.u8('new-params-bound flag');
  if (newParamsBound === 1) {
    const types: number[] = [];
    for (let i = 0; i < n; i++) types.push(r.u16(`type of parameter ${i}`));
    stmt.paramTypes = types;
  } else if (stmt.paramTypes === null) {
    throw new ProtocolError('COM_STMT_EXECUTE: the first execute of a statement must send the parameter types (new-params-bound flag is 0)');
  }
  const types = stmt.paramTypes;
  const out: SqlValue[] = [];
  for (let i = 0; i < n; i++) {
    const t = types[i]!;
    const type = t & 0xff;
    const unsigned = (t >> 8 & UNSIGNED_PARAM) !== 0;
    const isNull = (bitmap[i >> 3]! & (1 << (i & 7))) !== 0;
    const long = stmt.longData.get(i);
    if (long !== undefined) out.push(longDataValue(type, long));
    else if (isNull) out.push(null);
    else out.push(readParam(r, type, unsigned, `parameter ${i}`));
  }
  return out;
}
