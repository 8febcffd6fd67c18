// Newline-delimited JSON frames with a hard size bound.
// A line longer than maxFrameBytes is never buffered whole: the decoder reports it once and
// discards bytes until the next newline, so a 100 MB line costs no more memory than a small one.

export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

export type FrameEvent =
  | { readonly type: 'frame'; readonly value: unknown; readonly bytes: number }
  | { readonly type: 'error'; readonly code: 'FRAME_TOO_LARGE' | 'MALFORMED_JSON'; readonly message: string };

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  private discarding = false;
  private discardedBytes = 0;

  constructor(private readonly maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {}

  /** Feeds bytes; returns the frames and errors they complete, in order. */
  push(data: Buffer): FrameEvent[] {
    const out: FrameEvent[] = [];
    let start = 0;
    while (start < data.length) {
      const nl = data.indexOf(0x0a, start);
      const end = nl === -1 ? data.length : nl;
      const piece = data.subarray(start, end);
      if (this.discarding) {
        this.discardedBytes += piece.length;
      } else if (this.bufferedBytes + piece.length > this.maxFrameBytes) {
        this.discarding = true;
        this.discardedBytes = this.bufferedBytes + piece.length;
        this.chunks = [];
        this.bufferedBytes = 0;
      } else if (piece.length > 0) {
        this.chunks.push(Buffer.from(piece));
        this.bufferedBytes += piece.length;
      }
      if (nl === -1) break;
      out.push(this.finishLine());
      start = nl + 1;
    }
    return out;
  }

  /** Bytes held for an incomplete frame (a truncated frame at connection close). */
  pendingBytes(): number {
    return this.discarding ? this.discardedBytes : this.bufferedBytes;
  }

  private finishLine(): FrameEvent {
    if (this.discarding) {
      const n = this.discardedBytes;
      this.discarding = false;
      this.discardedBytes = 0;
      return {
        type: 'error',
        code: 'FRAME_TOO_LARGE',
        message: `frame of ${n} bytes exceeds maxFrameBytes=${this.maxFrameBytes}; discarded`,
      };
    }
    const line = Buffer.concat(this.chunks).toString('utf8').trim();
    const bytes = this.bufferedBytes;
    this.chunks = [];
    this.bufferedBytes = 0;
    if (line.length === 0) return { type: 'error', code: 'MALFORMED_JSON', message: 'empty frame' };
    try {
      return { type: 'frame', value: JSON.parse(line) as unknown, bytes };
    } catch (err) {
      const preview = line.length > 60 ? `${line.slice(0, 60)}...` : line;
      return {
        type: 'error',
        code: 'MALFORMED_JSON',
        message: `malformed JSON frame (${(err as Error).message}): ${JSON.stringify(preview)}`,
      };
    }
  }
}

/** Serialises one frame. JSON.stringify never emits a raw newline, so the framing is unambiguous. */
export function encodeFrame(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value) + '\n', 'utf8');
}
