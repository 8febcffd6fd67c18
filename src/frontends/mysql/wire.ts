// Bounded reading and writing of the protocol's basic data types: fixed-length little-endian
// integers, length-encoded integers and strings, NUL-terminated strings. Reading past the end of a
// payload throws a ProtocolError that names the field being read.
import { ErrorNumber } from './constants.js';

/** A client sent something this layer cannot accept; carries the ERR packet to answer with. */
export class ProtocolError extends Error {
  constructor(
    message: string,
    readonly errno: number = ErrorNumber.MALFORMED_PACKET,
    readonly sqlState: string = '08S01',
    /** false: the stream cannot be trusted any more, close the connection after the ERR. */
    readonly recoverable: boolean = true,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

const TWO_POW_53 = 2n ** 53n;

/** Reads one payload; every read checks the bound first. */
export class PayloadReader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  get offset(): number {
    return this.pos;
  }
  remaining(): number {
    return this.buf.length - this.pos;
  }
  atEnd(): boolean {
    return this.pos >= this.buf.length;
  }

  private need(n: number, field: string): void {
    if (this.pos + n > this.buf.length) {
      throw new ProtocolError(
        `malformed packet: ${field} needs ${n} byte(s) at offset ${this.pos}, the packet has ${this.buf.length}`,
      );
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.buf[this.pos++]!;
  }
  peekU8(field: string): number {
    this.need(1, field);
    return this.buf[this.pos]!;
  }
  u16(field: string): number {
    this.need(2, field);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u24(field: string): number {
    this.need(3, field);
    const v = this.buf.readUIntLE(this.pos, 3);
    this.pos += 3;
    return v;
  }
  u32(field: string): number {
    this.need(4, field);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(field: string): bigint {
    this.need(8, field);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }
  i64(field: string): bigint {
    this.need(8, field);
    const v = this.buf.readBigInt64LE(this.pos);
    this.pos += 8;
    return v;
  }
  f32(field: string): number {
    this.need(4, field);
    const v = this.buf.readFloatLE(this.pos);
    this.pos += 4;
    return v;
  }
  f64(field: string): number {
    this.need(8, field);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }
  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  skip(n: number, field: string): void {
    this.need(n, field);
    this.pos += n;
  }
  rest(): Buffer {
    const v = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return v;
  }

  /** Length-encoded integer; null for 0xFB (the NULL marker). Values beyond 2^53 are refused. */
  lenencIntOrNull(field: string): number | null {
    const first = this.u8(field);
    if (first < 0xfb) return first;
    switch (first) {
      case 0xfb:
        return null;
      case 0xfc:
        return this.u16(field);
      case 0xfd:
        return this.u24(field);
      case 0xfe: {
        const v = this.u64(field);
        if (v >= TWO_POW_53) throw new ProtocolError(`malformed packet: ${field} is too large (${v})`);
        return Number(v);
      }
      default:
        throw new ProtocolError(`malformed packet: ${field} starts with 0x${first.toString(16)}, not a length-encoded integer`);
    }
  }
  lenencInt(field: string): number {
    const v = this.lenencIntOrNull(field);
    if (v === null) throw new ProtocolError(`malformed packet: ${field} is NULL (0xFB) where a number is required`);
    return v;
  }
  lenencBytes(field: string): Buffer {
    return this.bytes(this.lenencInt(field), field);
  }
  lenencString(field: string): string {
    return this.lenencBytes(field).toString('utf8');
  }
  /** NUL-terminated string; a missing NUL is an error. */
  nulBytes(field: string): Buffer {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new ProtocolError(`malformed packet: ${field} has no terminating NUL byte`);
    const v = this.buf.subarray(this.pos, end);
    this.pos = end + 1;
    return v;
  }
  nulString(field: string): string {
    return this.nulBytes(field).toString('utf8');
  }
  /** NUL-terminated string, or the rest of the packet when it ends without NUL (clients differ). */
  nulOrEofString(field: string): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) return this.rest().toString('utf8');
    return this.nulString(field);
  }
}

/** Builds one payload; grows as needed, the caller bounds what it writes. */
export class PayloadWriter {
  private buf: Buffer;
  private pos = 0;
  constructor(initialBytes = 64) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }
  u16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.pos);
    this.pos += 2;
    return this;
  }
  u24(v: number): this {
    this.ensure(3);
    this.buf.writeUIntLE(v, this.pos, 3);
    this.pos += 3;
    return this;
  }
  u32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }
  u64(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigUInt64LE(v, this.pos);
    this.pos += 8;
    return this;
  }
  i64(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigInt64LE(v, this.pos);
    this.pos += 8;
    return this;
  }
  f32(v: number): this {
    this.ensure(4);
    this.buf.writeFloatLE(v, this.pos);
    this.pos += 4;
    return this;
  }
  f64(v: number): this {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
    return this;
  }
  /** Length-encoded integer; a bigint or decimal string for values beyond 2^53. */
  lenencInt(v: number | bigint): this {
    const n = typeof v === 'bigint' ? v : BigInt(v);
    if (n < 0n) throw new RangeError(`length-encoded integer cannot be negative: ${n}`);
    if (n < 0xfbn) return this.u8(Number(n));
    if (n <= 0xffffn) return this.u8(0xfc).u16(Number(n));
    if (n <= 0xffffffn) return this.u8(0xfd).u24(Number(n));
    return this.u8(0xfe).u64(n);
  }
  lenencNull(): this {
    return this.u8(0xfb);
  }
  lenencBytes(b: Uint8Array): this {
    return this.lenencInt(b.length).bytes(b);
  }
  lenencString(s: string): this {
    return this.lenencBytes(Buffer.from(s, 'utf8'));
  }
  nulString(s: string): this {
    return this.bytes(Buffer.from(s, 'utf8')).u8(0);
  }
  string(s: string): this {
    return this.bytes(Buffer.from(s, 'utf8'));
  }
  get length(): number {
    return this.pos;
  }
  /** The payload written so far (a copy-free view; do not write after taking it). */
  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}
