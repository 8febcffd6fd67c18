// The one TCP port of a node. Peers and clients connect to the same port; the first frame of a
// connection decides what it is: a valid HELLO makes it a peer connection, anything else a client
// connection. See docs/design-transport.md.
import * as net from 'node:net';
import { ErrorCode, errorInfo, type ErrorInfo } from '../errors.js';
import { FrameDecoder, encodeFrame, type FrameEvent } from '../wire/framing.js';
import { LogRateLimiter, type Logger } from '../util/logger-port.js';

/** Version of the peer protocol carried in HELLO. A peer speaking another version is refused. */
export const PEER_PROTOCOL_VERSION = 1;
/** Bytes a connection may have waiting to be written before it is destroyed instead of buffering more. */
export const DEFAULT_MAX_WRITABLE_BYTES = 64 * 1024 * 1024;
/** A connection must complete its first frame within this time or it is closed. */
export const DEFAULT_FIRST_FRAME_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_CONNECTIONS = 1024;
const MAX_CLUSTER_NAME_LENGTH = 256;
/** After close(), a connection whose remote does not finish the shutdown is destroyed after this. */
const CLOSE_GRACE_MS = 2000;

export type FrameErrorCode = 'FRAME_TOO_LARGE' | 'MALFORMED_JSON';

/** The first frame of a peer connection. */
export interface HelloFrame {
  readonly type: 'HELLO';
  readonly protocol: number;
  readonly cluster: string;
  readonly nodeId: number;
}

/** The error frame sent to clients (and to refused peers): `{"type":"ERROR","id":null,"error":{...}}`. */
export function errorFrame(error: ErrorInfo): { readonly type: 'ERROR'; readonly id: null; readonly error: ErrorInfo } {
  return { type: 'ERROR', id: null, error };
}

/** True when a first frame claims to be a HELLO (and so must be a valid one). */
export function isHelloAttempt(value: unknown): boolean {
  return isPlainObject(value) && value['type'] === 'HELLO';
}

/** Validates a HELLO frame's fields; the reason says which field is wrong and why. */
export function parseHello(
  value: unknown,
): { readonly ok: true; readonly hello: HelloFrame } | { readonly ok: false; readonly reason: string } {
  if (!isPlainObject(value) || value['type'] !== 'HELLO') return { ok: false, reason: 'not a HELLO frame' };
  const { protocol, cluster, nodeId } = value;
  if (typeof protocol !== 'number') return { ok: false, reason: `HELLO.protocol must be a number, got ${describe(protocol)}` };
  if (protocol !== PEER_PROTOCOL_VERSION) {
    return { ok: false, reason: `unsupported protocol version ${protocol} (this node speaks ${PEER_PROTOCOL_VERSION})` };
  }
  if (typeof cluster !== 'string') return { ok: false, reason: `HELLO.cluster must be a string, got ${describe(cluster)}` };
  if (cluster.length === 0 || cluster.length > MAX_CLUSTER_NAME_LENGTH) {
    return { ok: false, reason: `HELLO.cluster must have 1 to ${MAX_CLUSTER_NAME_LENGTH} characters` };
  }
  if (typeof nodeId !== 'number' || !Number.isSafeInteger(nodeId) || nodeId < 0) {
    return { ok: false, reason: `HELLO.nodeId must be a non-negative integer, got ${describe(nodeId)}` };
  }
  return { ok: true, hello: { type: 'HELLO', protocol, cluster, nodeId } };
}

export interface FramedConnectionOptions {
  readonly maxFrameBytes: number;
  readonly logger: Logger;
  /** Default DEFAULT_MAX_WRITABLE_BYTES. */
  readonly maxWritableBytes?: number;
  /** How to name the other end in logs; default the socket's remote address:port. */
  readonly remote?: string;
}

/**
 * A socket carrying newline-delimited JSON frames. Never throws on bad input: frame errors and
 * socket errors are logged with the remote address. Frames that arrive while no frame handler is
 * set are held (and reading is paused) until one is set, so no frame is lost between owners.
 */
export class FramedConnection {
  readonly remote: string;
  private readonly decoder: FrameDecoder;
  private readonly logger: Logger;
  private readonly maxWritableBytes: number;
  private readonly errorLogLimiter = new LogRateLimiter(10_000);
  private frameHandler: ((value: unknown) => void) | null = null;
  private frameErrorHandler: ((code: FrameErrorCode, message: string) => void) | null = null;
  private readonly closeHandlers: Array<(reason: string) => void> = [];
  private readonly drainHandlers: Array<() => void> = [];
  private readonly pending: FrameEvent[] = [];
  private dispatching = false;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private closeReason: string | null = null;
  private closedLocally = false;
  private graceTimer: NodeJS.Timeout | null = null;
  private closeHandlersFired = false;

  constructor(
    private readonly socket: net.Socket,
    opts: FramedConnectionOptions,
  ) {
    this.decoder = new FrameDecoder(opts.maxFrameBytes);
    this.logger = opts.logger;
    this.maxWritableBytes = opts.maxWritableBytes ?? DEFAULT_MAX_WRITABLE_BYTES;
    this.remote = opts.remote ?? socketRemote(socket);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      if (this.closeReason === null) this.closeReason = 'closed by remote';
    });
    socket.on('error', (err: NodeJS.ErrnoException) => this.onSocketError(err));
    socket.on('drain', () => {
      for (const cb of [...this.drainHandlers]) this.safeCall(cb, 'drain handler');
    });
    socket.on('close', () => this.onSocketClose());
    if (socket.destroyed) queueMicrotask(() => this.onSocketClose());
  }

  /** True until close() or the socket closed. */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** True while the socket's buffer is above its high-water mark (wait for onDrain before writing more). */
  get needsDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  /** Encodes and writes one frame. False if not written (closed, unencodable, or the write bound was hit). */
  send(value: unknown): boolean {
    if (this.state !== 'open') return false;
    let frame: Buffer;
    try {
      frame = encodeFrame(value);
    } catch (err) {
      this.logger.error({ remote: this.remote, err: errMessage(err) }, `cannot encode frame for ${this.remote}`);
      return false;
    }
    return this.sendEncoded(frame);
  }

  /** Writes one frame already produced by encodeFrame. Same result as send(). */
  sendEncoded(frame: Buffer): boolean {
    if (this.state !== 'open') return false;
    const waiting = this.socket.writableLength;
    if (waiting + frame.length > this.maxWritableBytes) {
      const reason = `${waiting + frame.length} bytes waiting to be written exceed the bound of ${this.maxWritableBytes}`;
      this.logger.error({ remote: this.remote, waitingBytes: waiting }, `destroying connection to ${this.remote}: ${reason}`);
      this.destroy(reason);
      return false;
    }
    this.socket.write(frame);
    return true;
  }

  /** Sets (replaces) the frame handler; null detaches it and holds further frames until one is set. */
  onFrame(cb: ((value: unknown) => void) | null): void {
    this.frameHandler = cb;
    this.dispatch();
  }

  /** Called for each frame error after it was logged (e.g. to answer a client with an error frame). */
  onFrameError(cb: ((code: FrameErrorCode, message: string) => void) | null): void {
    this.frameErrorHandler = cb;
  }

  /** Called once when the connection has closed, with the reason. Called soon if already closed. */
  onClose(cb: (reason: string) => void): void {
    if (this.closeHandlersFired) {
      const reason = this.closeReason ?? 'closed';
      queueMicrotask(() => this.safeCall(() => cb(reason), 'close handler'));
      return;
    }
    this.closeHandlers.push(cb);
  }

  onDrain(cb: () => void): void {
    this.drainHandlers.push(cb);
  }

  /** Graceful close: pending writes are flushed first; no more frames are delivered. */
  close(reason = 'closed locally'): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.closedLocally = true;
    if (this.closeReason === null) this.closeReason = reason;
    this.socket.end();
    this.graceTimer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    this.graceTimer.unref();
  }

  /** Immediate close; unwritten data is lost. */
  destroy(reason = 'destroyed locally'): void {
    if (this.state === 'closed') return;
    this.closedLocally = true;
    if (this.closeReason === null || this.state === 'closing') this.closeReason = reason;
    this.state = 'closed';
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.state !== 'open') return;
    let events: FrameEvent[];
    try {
      events = this.decoder.push(chunk);
    } catch (err) {
      this.logger.error({ remote: this.remote, err: errMessage(err) }, `frame decoder failed on data from ${this.remote}`);
      this.destroy('frame decoder failure');
      return;
    }
    if (events.length === 0) return;
    for (const ev of events) this.pending.push(ev);
    this.dispatch();
  }

  /** Hands held events over in order; pauses reading while a frame waits for a handler. */
  private dispatch(): void {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      while (this.pending.length > 0 && this.state === 'open') {
        const ev = this.pending[0]!;
        if (ev.type === 'frame') {
          const handler = this.frameHandler;
          if (handler === null) break;
          this.pending.shift();
          this.safeCall(() => handler(ev.value), 'frame handler');
        } else {
          this.pending.shift();
          this.reportFrameError(ev.code, ev.message);
        }
      }
    } finally {
      this.dispatching = false;
    }
    if (this.state !== 'open') return;
    if (this.pending.length > 0) this.socket.pause();
    else if (this.socket.isPaused()) this.socket.resume();
  }

  private reportFrameError(code: FrameErrorCode, message: string): void {
    const suppressed = this.errorLogLimiter.take('frame-error');
    if (suppressed !== null) {
      this.logger.warn(
        { event: 'bad-frame', remote: this.remote, code, ...(suppressed > 0 ? { suppressed } : {}) },
        `bad frame from ${this.remote}: ${message}`,
      );
    }
    const handler = this.frameErrorHandler;
    if (handler !== null) this.safeCall(() => handler(code, message), 'frame error handler');
  }

  private onSocketError(err: NodeJS.ErrnoException): void {
    if (this.closeReason === null || this.state === 'open') this.closeReason = `socket error: ${err.code ?? err.message}`;
    const routine = err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ETIMEDOUT';
    const fields = { remote: this.remote, code: err.code, err: err.message };
    const msg = `socket error on connection with ${this.remote}: ${err.code ?? err.message}`;
    if (routine) this.logger.info(fields, msg);
    else this.logger.warn(fields, msg);
  }

  private onSocketClose(): void {
    if (this.closeHandlersFired) return;
    this.closeHandlersFired = true;
    this.state = 'closed';
    if (this.graceTimer !== null) clearTimeout(this.graceTimer);
    this.graceTimer = null;
    const truncated = this.decoder.pendingBytes();
    if (truncated > 0 && !this.closedLocally) {
      this.logger.warn(
        { event: 'truncated-frame', remote: this.remote, bytes: truncated },
        `connection from ${this.remote} closed in the middle of a frame; discarded ${truncated} bytes of a truncated frame`,
      );
    }
    this.pending.length = 0;
    const reason = this.closeReason ?? 'closed';
    this.closeReason = reason;
    const handlers = this.closeHandlers.splice(0);
    this.drainHandlers.length = 0;
    for (const cb of handlers) this.safeCall(() => cb(reason), 'close handler');
  }

  private safeCall(fn: () => void, what: string): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ remote: this.remote, err: errMessage(err) }, `${what} threw for connection ${this.remote}`);
    }
  }
}

export interface NodeListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly maxFrameBytes: number;
  readonly logger: Logger;
  /** A peer sent a valid HELLO. Return false to refuse it (the listener then sends an error frame and closes it). */
  readonly onPeerConnection: (hello: { readonly cluster: string; readonly nodeId: number }, conn: FramedConnection) => boolean;
  /** Any other first frame: the connection belongs to the client handler from now on. */
  readonly onClientConnection: (firstFrame: unknown, conn: FramedConnection) => void;
  /** Default 10 s. */
  readonly firstFrameTimeoutMs?: number;
  /** Default 1024. Connections beyond it are dropped by the kernel-facing accept loop. */
  readonly maxConnections?: number;
  /** Per-connection bound on unwritten bytes; default 64 MiB. */
  readonly maxWritableBytes?: number;
}

/** Accepts peer and client connections on one port and sorts them by their first frame. */
export class NodeListener {
  private readonly server: net.Server;
  private readonly connections = new Set<FramedConnection>();
  private readonly logger: Logger;
  private listening = false;

  constructor(private readonly opts: NodeListenerOptions) {
    this.logger = opts.logger;
    this.server = net.createServer((socket) => this.onSocket(socket));
    this.server.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.server.on('error', (err: NodeJS.ErrnoException) => {
      if (this.listening) this.logger.error({ code: err.code, err: err.message }, `listener error: ${err.message}`);
    });
    this.server.on('drop', (data?: { remoteAddress?: string; remotePort?: number }) => {
      this.logger.warn(
        { remote: `${data?.remoteAddress ?? '?'}:${data?.remotePort ?? '?'}`, maxConnections: this.server.maxConnections },
        `dropped a connection: already ${this.server.maxConnections} connections`,
      );
    });
  }

  listen(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host: this.opts.host, port: this.opts.port }, () => {
        this.server.off('error', onError);
        this.listening = true;
        const addr = this.address();
        this.logger.info({ host: addr?.address, port: addr?.port }, `listening on ${addr?.address}:${addr?.port}`);
        resolve();
      });
    });
  }

  /** Stops accepting and destroys every connection. */
  close(): Promise<void> {
    const wasListening = this.listening;
    this.listening = false;
    for (const conn of [...this.connections]) conn.destroy('listener closed');
    this.connections.clear();
    if (!wasListening) return Promise.resolve();
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  address(): net.AddressInfo | null {
    const addr = this.server.address();
    return addr !== null && typeof addr === 'object' ? addr : null;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  private onSocket(socket: net.Socket): void {
    const conn = new FramedConnection(socket, {
      maxFrameBytes: this.opts.maxFrameBytes,
      logger: this.logger,
      ...(this.opts.maxWritableBytes !== undefined ? { maxWritableBytes: this.opts.maxWritableBytes } : {}),
    });
    if (!this.listening) {
      conn.destroy('listener closed');
      return;
    }
    this.connections.add(conn);
    let kind: 'pending' | 'peer' | 'client' = 'pending';
    const timeoutMs = this.opts.firstFrameTimeoutMs ?? DEFAULT_FIRST_FRAME_TIMEOUT_MS;
    const timer = setTimeout(() => {
      if (kind !== 'pending') return;
      this.logger.warn({ remote: conn.remote, timeoutMs }, `closing connection from ${conn.remote}: no complete first frame within ${timeoutMs} ms`);
      conn.destroy('no first frame in time');
    }, timeoutMs);
    timer.unref();
    conn.onClose((reason) => {
      clearTimeout(timer);
      this.connections.delete(conn);
      this.logger.debug({ remote: conn.remote, kind, reason }, `connection from ${conn.remote} closed: ${reason}`);
    });
    conn.onFrameError((code, message) => {
      // A peer never gets error frames (its protocol has none); clients and not-yet-known connections do.
      if (kind !== 'peer') conn.send(errorFrame(errorInfo(ErrorCode.BAD_REQUEST, message, null, code)));
    });
    conn.onFrame((first) => {
      clearTimeout(timer);
      // Frames after the first are held until the new owner sets its handler.
      conn.onFrame(null);
      if (isHelloAttempt(first)) {
        kind = 'peer';
        this.onHello(first, conn);
      } else {
        kind = 'client';
        try {
          this.opts.onClientConnection(first, conn);
        } catch (err) {
          this.logger.error({ remote: conn.remote, err: errMessage(err) }, `client handler threw for ${conn.remote}`);
          conn.destroy('client handler failed');
        }
      }
    });
  }

  private onHello(first: unknown, conn: FramedConnection): void {
    const parsed = parseHello(first);
    if (!parsed.ok) {
      this.logger.warn({ event: 'peer-refused', remote: conn.remote, reason: parsed.reason }, `refused peer connection from ${conn.remote}: ${parsed.reason}`);
      conn.send(errorFrame(errorInfo(ErrorCode.BAD_REQUEST, `peer connection refused: ${parsed.reason}`)));
      conn.close('peer refused');
      return;
    }
    let accepted = false;
    try {
      accepted = this.opts.onPeerConnection({ cluster: parsed.hello.cluster, nodeId: parsed.hello.nodeId }, conn);
    } catch (err) {
      this.logger.error({ remote: conn.remote, err: errMessage(err) }, `peer handler threw for ${conn.remote}`);
    }
    if (!accepted && conn.isOpen) {
      this.logger.debug({ remote: conn.remote, nodeId: parsed.hello.nodeId }, `peer connection from ${conn.remote} refused`);
      conn.send(errorFrame(errorInfo(ErrorCode.BAD_REQUEST, 'peer connection refused')));
      conn.close('peer refused');
    }
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  if (typeof value === 'number') return `number ${value}`;
  return typeof value;
}

function socketRemote(socket: net.Socket): string {
  const addr = socket.remoteAddress;
  if (addr === undefined) return 'unknown';
  return addr.includes(':') ? `[${addr}]:${socket.remotePort}` : `${addr}:${socket.remotePort}`;
}

export function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
