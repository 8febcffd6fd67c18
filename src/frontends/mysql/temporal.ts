// Temporal values between their string forms ('YYYY-MM-DD', 'YYYY-MM-DD HH:MM:SS[.ffffff]',
// '[-][H]HH:MM:SS[.ffffff]') and the binary protocol's encoding (a length byte, then only the parts
// that are not zero: DATE/DATETIME/TIMESTAMP 0, 4, 7 or 11 bytes; TIME 0, 8 or 12 bytes).
import { PayloadReader, PayloadWriter, ProtocolError } from './wire.js';

export interface DateTimeParts {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  readonly microsecond: number;
}

export interface TimeParts {
  readonly negative: boolean;
  /** Total hours (may exceed 24, MySQL's TIME range is -838:59:59..838:59:59). */
  readonly hours: number;
  readonly minute: number;
  readonly second: number;
  readonly microsecond: number;
}

const DATETIME_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?)?$/;
const TIME_RE = /^(-)?(\d{1,4}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/;

function micros(frac: string | undefined): number {
  return frac === undefined ? 0 : Number(frac.padEnd(6, '0'));
}

/** Parses 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS[.ffffff]'; null when the string has another form. */
export function parseDateTime(s: string): DateTimeParts | null {
  const m = DATETIME_RE.exec(s);
  if (m === null) return null;
  const parts = {
    year: Number(m[1]),
    month: Number(m[2]),
    day: Number(m[3]),
    hour: m[4] === undefined ? 0 : Number(m[4]),
    minute: m[5] === undefined ? 0 : Number(m[5]),
    second: m[6] === undefined ? 0 : Number(m[6]),
    microsecond: micros(m[7]),
  };
  if (parts.month > 12 || parts.day > 31 || parts.hour > 23 || parts.minute > 59 || parts.second > 59) return null;
  return parts;
}

/** Parses '[-][H]HH:MM:SS[.ffffff]'; null when the string has another form. */
export function parseTime(s: string): TimeParts | null {
  const m = TIME_RE.exec(s);
  if (m === null) return null;
  const parts = { negative: m[1] === '-', hours: Number(m[2]), minute: Number(m[3]), second: Number(m[4]), microsecond: micros(m[5]) };
  if (parts.minute > 59 || parts.second > 59) return null;
  return parts;
}

export function writeBinaryDateTime(w: PayloadWriter, p: DateTimeParts): void {
  const hasTime = p.hour !== 0 || p.minute !== 0 || p.second !== 0;
  if (p.microsecond !== 0) {
    w.u8(11).u16(p.year).u8(p.month).u8(p.day).u8(p.hour).u8(p.minute).u8(p.second).u32(p.microsecond);
  } else if (hasTime) {
    w.u8(7).u16(p.year).u8(p.month).u8(p.day).u8(p.hour).u8(p.minute).u8(p.second);
  } else if (p.year !== 0 || p.month !== 0 || p.day !== 0) {
    w.u8(4).u16(p.year).u8(p.month).u8(p.day);
  } else {
    w.u8(0);
  }
}

export function writeBinaryTime(w: PayloadWriter, p: TimeParts): void {
  const days = Math.floor(p.hours / 24);
  const hour = p.hours % 24;
  if (p.microsecond !== 0) {
    w.u8(12).u8(p.negative ? 1 : 0).u32(days).u8(hour).u8(p.minute).u8(p.second).u32(p.microsecond);
  } else if (p.hours !== 0 || p.minute !== 0 || p.second !== 0) {
    w.u8(8).u8(p.negative ? 1 : 0).u32(days).u8(hour).u8(p.minute).u8(p.second);
  } else {
    w.u8(0);
  }
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

function fraction(us: number): string {
  return us === 0 ? '' : `.${pad(us, 6)}`;
}

/** Reads a binary DATE/DATETIME/TIMESTAMP parameter into 'YYYY-MM-DD' (DATE) or 'YYYY-MM-DD HH:MM:SS[.ffffff]'. */
export function readBinaryDateTime(r: PayloadReader, field: string, dateOnly: boolean): string {
  const len = r.u8(`${field} length`);
  if (len !== 0 && len !== 4 && len !== 7 && len !== 11) throw new ProtocolError(`malformed packet: ${field} has length ${len}, expected 0, 4, 7 or 11`);
  const year = len >= 4 ? r.u16(field) : 0;
  const month = len >= 4 ? r.u8(field) : 0;
  const day = len >= 4 ? r.u8(field) : 0;
  const hour = len >= 7 ? r.u8(field) : 0;
  const minute = len >= 7 ? r.u8(field) : 0;
  const second = len >= 7 ? r.u8(field) : 0;
  const us = len === 11 ? r.u32(field) : 0;
  const date = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
  if (dateOnly) return date;
  return `${date} ${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}${fraction(us)}`;
}

/** Reads a binary TIME parameter into '[-]HH:MM:SS[.ffffff]'. */
export function readBinaryTime(r: PayloadReader, field: string): string {
  const len = r.u8(`${field} length`);
  if (len !== 0 && len !== 8 && len !== 12) throw new ProtocolError(`malformed packet: ${field} has length ${len}, expected 0, 8 or 12`);
  if (len === 0) return '00:00:00';
  const negative = r.u8(field) === 1;
  const days = r.u32(field);
  const hour = r.u8(field);
  const minute = r.u8(field);
  const second = r.u8(field);
  const us = len === 12 ? r.u32(field) : 0;
  return `${negative ? '-' : ''}${pad(days * 24 + hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}${fraction(us)}`;
}
