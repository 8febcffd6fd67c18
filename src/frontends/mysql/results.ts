// Response packets: OK, ERR, EOF, ColumnDefinition41, text and binary result rows, and whole
// result sets (column count, definitions, [EOF], rows, EOF or OK) as lists of payloads.
import type { StatementResult } from '../../storage/sql-engine.js';
import { planColumns, textBytes, writeBinaryValue, type ColumnPlan } from './columns.js';
import { ServerStatus } from './constants.js';
import { PayloadReader, PayloadWriter } from './wire.js';

/** MySQL's MYSQL_ERRMSG_SIZE: longer messages are cut. */
export const MAX_ERROR_MESSAGE_BYTES = 512;

export interface OkPacket {
  readonly affectedRows: number | string;
  readonly lastInsertId: number | string;
  readonly statusFlags: number;
  readonly warnings: number;
  readonly info?: string;
}

/** `header` is 0x00, or 0xFE for the OK that ends a result set under CLIENT_DEPRECATE_EOF. */
export function encodeOk(ok: OkPacket, header: 0x00 | 0xfe = 0x00): Buffer {
  const w = new PayloadWriter(16)
    .u8(header)
    .lenencInt(BigInt(ok.affectedRows))
    .lenencInt(BigInt(ok.lastInsertId))
    .u16(ok.statusFlags)
    .u16(ok.warnings);
  if (ok.info !== undefined && ok.info !== '') w.string(ok.info);
  return w.finish();
}

export function decodeOk(payload: Buffer): OkPacket {
  const r = new PayloadReader(payload);
  const header = r.u8('OK header');
  if (header !== 0x00 && header !== 0xfe) throw new Error(`not an OK packet: header 0x${header.toString(16)}`);
  const affectedRows = r.lenencInt('affected rows');
  const lastInsertId = r.lenencInt('last insert id');
  const statusFlags = r.u16('status flags');
  const warnings = r.u16('warnings');
  const info = r.rest().toString('utf8');
  return { affectedRows, lastInsertId, statusFlags, warnings, info };
}

export interface ErrPacket {
  readonly errno: number;
  readonly sqlState: string;
  readonly message: string;
}

function cutUtf8(s: string, maxBytes: number): string {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= maxBytes) return s;
  // drop a partial character at the cut
  return b.subarray(0, maxBytes).toString('utf8').replace(/\uFFFD$/, '');
}

export function encodeErr(err: ErrPacket): Buffer {
  const state = /^[0-9A-Z]{5}$/.test(err.sqlState) ? err.sqlState : 'HY000';
  return new PayloadWriter(64)
    .u8(0xff)
    .u16(err.errno)
    .string('#')
    .string(state)
    .string(cutUtf8(err.message, MAX_ERROR_MESSAGE_BYTES))
    .finish();
}

export function decodeErr(payload: Buffer): ErrPacket {
  const r = new PayloadReader(payload);
  if (r.u8('ERR header') !== 0xff) throw new Error('not an ERR packet');
  const errno = r.u16('error number');
  let sqlState = 'HY000';
  if (r.peekU8('SQLSTATE marker') === 0x23) {
    r.skip(1, 'SQLSTATE marker');
    sqlState = r.bytes(5, 'SQLSTATE').toString('latin1');
  }
  return { errno, sqlState, message: r.rest().toString('utf8') };
}

export function encodeEof(statusFlags: number, warnings = 0): Buffer {
  return new PayloadWriter(5).u8(0xfe).u16(warnings).u16(statusFlags).finish();
}

export interface ColumnDefinition {
  readonly schema: string;
  readonly table: string;
  readonly orgTable: string;
  readonly name: string;
  readonly orgName: string;
  readonly charset: number;
  readonly length: number;
  readonly type: number;
  readonly flags: number;
  readonly decimals: number;
  /**
   * MariaDB's extended type info (a length-encoded string after org_name), present only when the
   * client and a MariaDB server agreed MARIADB_CLIENT_EXTENDED_TYPE_INFO; this server never offers it.
   */
  readonly extendedMetadata?: string;
}

export function encodeColumnDefinition(c: ColumnDefinition): Buffer {
  const w = new PayloadWriter(64)
    .lenencString('def')
    .lenencString(c.schema)
    .lenencString(c.table)
    .lenencString(c.orgTable)
    .lenencString(c.name)
    .lenencString(c.orgName);
  if (c.extendedMetadata !== undefined) w.lenencString(c.extendedMetadata);
  return w
    .lenencInt(0x0c)
    .u16(c.charset)
    .u32(c.length)
    .u8(c.type)
    .u16(c.flags)
    .u8(c.decimals)
    .u16(0)
    .finish();
}

export function decodeColumnDefinition(payload: Buffer): ColumnDefinition {
  const r = new PayloadReader(payload);
  r.lenencString('catalog');
  const schema = r.lenencString('schema');
  const table = r.lenencString('table');
  const orgTable = r.lenencString('org_table');
  const name = r.lenencString('name');
  const orgName = r.lenencString('org_name');
  const extendedMetadata = r.peekU8('fixed-length fields length') !== 0x0c ? r.lenencString('extended metadata') : undefined;
  r.lenencInt('fixed-length fields length');
  const charset = r.u16('character set');
  const length = r.u32('column length');
  const type = r.u8('column type');
  const flags = r.u16('flags');
  const decimals = r.u8('decimals');
  const def = { schema, table, orgTable, name, orgName, charset, length, type, flags, decimals };
  return extendedMetadata === undefined ? def : { ...def, extendedMetadata };
}

export function columnDefinitionOf(plan: ColumnPlan, schema: string, table = ''): ColumnDefinition {
  return {
    schema,
    table,
    orgTable: table,
    name: plan.name,
    orgName: plan.name,
    charset: plan.charset,
    length: plan.length,
    type: plan.fieldType,
    flags: plan.flags,
    decimals: plan.decimals,
  };
}

export function encodeTextRow(plans: readonly ColumnPlan[], row: readonly unknown[]): Buffer {
  const w = new PayloadWriter(64);
  for (let i = 0; i < plans.length; i++) {
    const v = row[i];
    if (v === null || v === undefined) w.lenencNull();
    else w.lenencBytes(textBytes(v));
  }
  return w.finish();
}

export function encodeBinaryRow(plans: readonly ColumnPlan[], row: readonly unknown[]): Buffer {
  const bitmapBytes = (plans.length + 7 + 2) >> 3;
  const bitmap = Buffer.alloc(bitmapBytes);
  const values = new PayloadWriter(64);
  for (let i = 0; i < plans.length; i++) {
    const v = row[i];
    const plan = plans[i]!;
    if (v === null || v === undefined || plan.kind === 'null') {
      const bit = i + 2;
      bitmap[bit >> 3]! |= 1 << (bit & 7);
    } else {
      writeBinaryValue(values, plan, v);
    }
  }
  return new PayloadWriter(1 + bitmapBytes + values.length).u8(0x00).bytes(bitmap).bytes(values.finish()).finish();
}

export type RowFormat = 'text' | 'binary';

export interface ResultSetOptions {
  readonly format: RowFormat;
  readonly deprecateEof: boolean;
  /** Status flags for the final EOF/OK (MORE_RESULTS_EXISTS included by the caller when needed). */
  readonly statusFlags: number;
  readonly schema: string;
}

/** Column definitions (and the EOF after them unless DEPRECATE_EOF) of a result. */
export function encodeColumnDefinitions(plans: readonly ColumnPlan[], opts: ResultSetOptions): Buffer[] {
  const out = plans.map((p) => encodeColumnDefinition(columnDefinitionOf(p, opts.schema)));
  if (!opts.deprecateEof) out.push(encodeEof(opts.statusFlags));
  return out;
}

/**
 * The payloads that answer one statement: an OK packet for a statement without columns, else a
 * result set. Calls `onPayload` for each, so the caller can stream and bound what it buffers.
 */
export function encodeStatementResult(result: StatementResult, opts: ResultSetOptions, onPayload: (p: Buffer) => void): void {
  if (result.columns.length === 0) {
    onPayload(
      encodeOk({ affectedRows: result.affectedRows, lastInsertId: result.lastInsertId ?? 0, statusFlags: opts.statusFlags, warnings: 0 }),
    );
    return;
  }
  const plans = planColumns(result);
  onPayload(new PayloadWriter(9).lenencInt(plans.length).finish());
  for (const p of encodeColumnDefinitions(plans, opts)) onPayload(p);
  const encodeRow = opts.format === 'text' ? encodeTextRow : encodeBinaryRow;
  for (const row of result.rows) onPayload(encodeRow(plans, row));
  onPayload(
    opts.deprecateEof
      ? encodeOk({ affectedRows: 0, lastInsertId: 0, statusFlags: opts.statusFlags, warnings: 0 }, 0xfe)
      : encodeEof(opts.statusFlags),
  );
}

export function statusFlagsOf(status: { inTransaction: boolean; autocommit: boolean }, moreResults: boolean): number {
  return (
    (status.inTransaction ? ServerStatus.IN_TRANS : 0) |
    (status.autocommit ? ServerStatus.AUTOCOMMIT : 0) |
    (moreResults ? ServerStatus.MORE_RESULTS_EXISTS : 0)
  );
}
