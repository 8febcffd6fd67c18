// Packet framing: a 3-byte little-endian payload length and a 1-byte sequence id before every
// payload. A payload of exactly 0xFFFFFF bytes continues in the next packet (a logical message of
// N * 0xFFFFFF bytes ends with an empty packet). The splitter reassembles messages with a bound on
// their size; the writer splits and numbers them.
import { MAX_PACKET_PAYLOAD_BYTES } from './constants.js';

export type SplitEvent =
  | { readonly type: 'message'; readonly payload: Buffer; readonly firstSeq: number; readonly lastSeq: number }
  /** The message would be larger than maxPacketBytes; the stream cannot be resynchronised. */
  | { readonly type: 'tooLarge'; readonly announcedBytes: number; readonly maxPacketBytes: number };

/** Streaming splitter: feed it socket chunks, get whole messages back. */
export class PacketSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private firstSeq = -1;
  private dead = false;

  constructor(private maxPacketBytes: number) {}

  /** Changes the bound for the messages that follow (the handshake has a smaller one). */
  setMaxPacketBytes(n: number): void {
    this.maxPacketBytes = n;
  }

  /** Bytes received and not yet returned as a message. */
  get bufferedBytes(): number {
    return this.buffered + this.partsBytes;
  }

  push(chunk: Buffer): SplitEvent[] {
    if (this.dead) return [];
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const out: SplitEvent[] = [];
    while (this.buffered >= 4) {
      const header = this.peek(4);
      const len = header.readUIntLE(0, 3);
      const seq = header[3]!;
      if (this.partsBytes + len > this.maxPacketBytes) {
        this.dead = true;
        this.chunks = [];
        this.parts = [];
        out.push({ type: 'tooLarge', announcedBytes: this.partsBytes + len, maxPacketBytes: this.maxPacketBytes });
        return out;
      }
      if (this.buffered < 4 + len) break;
      this.take(4);
      const body = this.take(len);
      if (this.firstSeq < 0) this.firstSeq = seq;
      this.parts.push(body);
      this.partsBytes += len;
      if (len < MAX_PACKET_PAYLOAD_BYTES) {
        const payload = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsBytes);
        out.push({ type: 'message', payload, firstSeq: this.firstSeq, lastSeq: seq });
        this.parts = [];
        this.partsBytes = 0;
        this.firstSeq = -1;
      }
    }
    return out;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    return Buffer.concat(this.chunks, n);
  }

  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0];
    if (n === 0) return Buffer.alloc(0);
    if (first !== undefined && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const use = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, use);
      filled += use;
      if (use === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(use);
    }
    return out;
  }
}

/**
 * Frames one logical message starting at sequence id `seq`; returns the frames and the next
 * sequence id (ids wrap at 256).
 */
export function framePayload(payload: Buffer, seq: number): { frames: Buffer[]; nextSeq: number } {
  const frames: Buffer[] = [];
  let offset = 0;
  let s = seq & 0xff;
  for (;;) {
    const len = Math.min(MAX_PACKET_PAYLOAD_BYTES, payload.length - offset);
    const header = Buffer.allocUnsafe(4);
    header.writeUIntLE(len, 0, 3);
    header[3] = s;
    frames.push(header, payload.subarray(offset, offset + len));
    s = (s + 1) & 0xff;
    offset += len;
    if (len < MAX_PACKET_PAYLOAD_BYTES) break;
  }
  return { frames, nextSeq: s };
}

/** Collects the packets of one response with consecutive sequence ids, to write them at once. */
export class ResponseWriter {
  private frames: Buffer[] = [];
  private bytes = 0;
  constructor(private seq: number) {}

  get nextSeq(): number {
    return this.seq;
  }
  get pendingBytes(): number {
    return this.bytes;
  }

  add(payload: Buffer): this {
    const { frames, nextSeq } = framePayload(payload, this.seq);
    this.seq = nextSeq;
    for (const f of frames) {
      this.frames.push(f);
      this.bytes += f.length;
    }
    return this;
  }

  /** The frames collected so far; the writer keeps numbering from where it is. */
  drain(): Buffer[] {
    const out = this.frames;
    this.frames = [];
    this.bytes = 0;
    return out;
  }
}
