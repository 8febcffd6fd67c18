// Which MySQL type each result column is sent as, and how its values are encoded in text and
// binary rows. Engines that know column types (MySQL/MariaDB) give `columnTypes`; for SQLite the
// type is inferred from the values. A value that does not fit the column's type (SQLite lets a
// DATE column hold 'abc') turns that column into VAR_STRING, so a result is always encodable.
import type { ColumnType, StatementResult } from '../../storage/sql-engine.js';
import { Charset, ColumnFlag, FieldType } from './constants.js';
import { parseDateTime, parseTime, writeBinaryDateTime, writeBinaryTime } from './temporal.js';
import { PayloadWriter } from './wire.js';

/** How one column is described and encoded. */
export interface ColumnPlan {
  readonly name: string;
  readonly fieldType: FieldType;
  readonly charset: number;
  readonly flags: number;
  readonly length: number;
  readonly decimals: number;
  readonly kind: ColumnType;
  /** Only for 'int': some value is beyond the signed 64-bit range, send as unsigned. */
  readonly unsigned: boolean;
}

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
const INT_RE = /^-?\d+$/;
const DECIMAL_RE = /^-?\d+(\.\d+)?$/;
const NOT_FIXED_DEC = 31;

function isBlob(v: unknown): v is { $blob: string } {
  return typeof v === 'object' && v !== null && typeof (v as { $blob?: unknown }).$blob === 'string';
}

/** Bytes of a value sent as text (text protocol, or a string column in the binary protocol). */
export function textBytes(v: unknown): Buffer {
  if (isBlob(v)) return Buffer.from(v.$blob, 'base64');
  if (typeof v === 'number') return Buffer.from(formatNumber(v), 'latin1');
  if (typeof v === 'boolean') return Buffer.from(v ? '1' : '0', 'latin1');
  if (typeof v === 'bigint') return Buffer.from(v.toString(), 'latin1');
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  return Buffer.from(JSON.stringify(v) ?? '', 'utf8');
}

/** Byte length of a non-string value's text form. */
function textLength(v: unknown): number {
  if (isBlob(v)) return Math.floor((v.$blob.length * 3) / 4) - (v.$blob.endsWith('==') ? 2 : v.$blob.endsWith('=') ? 1 : 0);
  return textBytes(v).length;
}

/** Numbers as MySQL prints them: integers plainly, doubles shortest round-trip, exponent without '+'. */
export function formatNumber(n: number): string {
  return String(n).replace('e+', 'e');
}

function intValue(v: unknown): bigint | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : null;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'boolean') return v ? 1n : 0n;
  if (typeof v === 'string' && INT_RE.test(v) && v.length <= 21) return BigInt(v);
  return null;
}

/** Does `v` fit the column kind (so that it can be encoded as that type)? null fits everything. */
function fits(kind: ColumnType, v: unknown): boolean {
  if (v === null || v === undefined) return true;
  switch (kind) {
    case 'int': {
      const n = intValue(v);
      return n !== null && n >= INT64_MIN && n <= UINT64_MAX;
    }
    case 'float':
    case 'float32':
      return typeof v === 'number' || (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)));
    case 'decimal':
      return (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && DECIMAL_RE.test(v));
    case 'text':
    case 'blob':
      return true;
    case 'date':
    case 'datetime':
    case 'timestamp':
      return typeof v === 'string' && parseDateTime(v) !== null;
    case 'time':
      return typeof v === 'string' && parseTime(v) !== null;
    case 'year':
      return intValue(v) !== null;
    case 'null':
      return false;
  }
}

/** The inferred kind of a SQLite column from its values. */
export function inferKind(rows: readonly (readonly unknown[])[], col: number): ColumnType {
  let allInt = true;
  let allNum = true;
  let allBlob = true;
  let seen = false;
  for (const row of rows) {
    const v = row[col];
    if (v === null || v === undefined) continue;
    seen = true;
    if (!(typeof v === 'number' && Number.isSafeInteger(v))) allInt = false;
    if (typeof v !== 'number') allNum = false;
    if (!isBlob(v)) allBlob = false;
  }
  if (!seen) return 'text';
  if (allInt) return 'int';
  if (allNum) return 'float';
  if (allBlob) return 'blob';
  return 'text';
}

function fractionDigits(v: unknown): number {
  if (typeof v !== 'string') return 0;
  const dot = v.lastIndexOf('.');
  return dot < 0 ? 0 : Math.min(6, v.length - dot - 1);
}

/** Plans every column of a result. */
export function planColumns(result: StatementResult): ColumnPlan[] {
  return result.columns.map((name, col) => {
    let kind: ColumnType = result.columnTypes?.[col] ?? inferKind(result.rows, col);
    if (result.columnTypes !== undefined && kind !== 'null' && !result.rows.every((r) => fits(kind, r[col]))) kind = 'text';
    if (kind === 'null' && result.rows.some((r) => r[col] !== null && r[col] !== undefined)) kind = 'text';
    return planColumn(name, kind, result.rows, col);
  });
}

function planColumn(name: string, kind: ColumnType, rows: readonly (readonly unknown[])[], col: number): ColumnPlan {
  const base = { name, kind, unsigned: false, charset: Charset.BINARY, decimals: 0 };
  let maxBytes = 0;
  let maxChars = 0;
  let maxFraction = 0;
  for (const r of rows) {
    const v = r[col];
    if (v === null || v === undefined) continue;
    // Only the lengths are needed: measure strings without encoding them (this runs for every row).
    const bytes = typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : textLength(v);
    maxBytes = Math.max(maxBytes, bytes);
    // UTF-16 units: never fewer than the characters, and the column length is only a display hint.
    maxChars = Math.max(maxChars, typeof v === 'string' ? v.length : bytes);
    maxFraction = Math.max(maxFraction, fractionDigits(v));
  }
  const bin = ColumnFlag.BINARY;
  switch (kind) {
    case 'int': {
      const unsigned = rows.some((r) => {
        const n = intValue(r[col]);
        return n !== null && n > INT64_MAX;
      });
      return { ...base, unsigned, fieldType: FieldType.LONGLONG, flags: bin | (unsigned ? ColumnFlag.UNSIGNED : 0), length: 20 };
    }
    case 'float':
      return { ...base, fieldType: FieldType.DOUBLE, flags: bin, length: 22, decimals: NOT_FIXED_DEC };
    case 'float32':
      // MySQL's FLOAT: 4 bytes in the binary protocol, so clients see the same rounding as from MySQL.
      return { ...base, fieldType: FieldType.FLOAT, flags: bin, length: 12, decimals: NOT_FIXED_DEC };
    case 'decimal':
      return { ...base, fieldType: FieldType.NEWDECIMAL, flags: bin, length: Math.max(maxBytes, 1), decimals: Math.min(maxFraction, 30) };
    case 'text':
      // MySQL gives a string column's length in bytes: characters * 4 for utf8mb4.
      return { ...base, fieldType: FieldType.VAR_STRING, charset: Charset.UTF8MB4, flags: 0, length: Math.min(Math.max(maxChars, 1) * 4, 0xffffffff) };
    case 'blob':
      return { ...base, fieldType: FieldType.BLOB, flags: bin | ColumnFlag.BLOB, length: maxBytes > 0xffff ? 0xffffffff : 0xffff };
    case 'date':
      return { ...base, fieldType: FieldType.DATE, flags: bin, length: 10 };
    case 'datetime':
      return { ...base, fieldType: FieldType.DATETIME, flags: bin, length: maxFraction > 0 ? 20 + maxFraction : 19, decimals: maxFraction };
    case 'timestamp':
      return { ...base, fieldType: FieldType.TIMESTAMP, flags: bin, length: maxFraction > 0 ? 20 + maxFraction : 19, decimals: maxFraction };
    case 'time':
      return { ...base, fieldType: FieldType.TIME, flags: bin, length: maxFraction > 0 ? 11 + maxFraction : 10, decimals: maxFraction };
    case 'year':
      return { ...base, fieldType: FieldType.YEAR, flags: bin | ColumnFlag.UNSIGNED, length: 4 };
    case 'null':
      return { ...base, fieldType: FieldType.NULL, flags: bin, length: 0 };
  }
}

/** Writes one non-null value of a column in the binary protocol. */
export function writeBinaryValue(w: PayloadWriter, plan: ColumnPlan, v: unknown): void {
  switch (plan.kind) {
    case 'int': {
      const n = intValue(v)!;
      if (plan.unsigned) w.u64(BigInt.asUintN(64, n));
      else w.i64(n);
      return;
    }
    case 'float':
      w.f64(Number(v));
      return;
    case 'float32':
      w.f32(Number(v));
      return;
    case 'year':
      w.u16(Number(intValue(v)!));
      return;
    case 'date':
    case 'datetime':
    case 'timestamp':
      writeBinaryDateTime(w, parseDateTime(v as string)!);
      return;
    case 'time':
      writeBinaryTime(w, parseTime(v as string)!);
      return;
    case 'decimal':
    case 'text':
    case 'blob':
    case 'null':
      w.lenencBytes(textBytes(v));
      return;
  }
}
