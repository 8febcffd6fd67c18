// Peer-to-peer messages over TCP. Each node keeps one outbound connection per peer and sends only
// on it; it receives on the inbound connections the NodeListener hands over (the peers' outbound
// connections). Sending never blocks and never throws: a message that cannot go out now is queued
// (bounded, oldest dropped first) or dropped with a log line. The protocol core retries what
// matters (heartbeats, REPLICATE from matchIndex), so a dropped message costs time, not safety.
// See docs/design-transport.md.
import * as net from 'node:net';
import { ConfigError, ErrorCode, errorInfo } from '../errors.js';
import { Backoff, DEFAULT_RECONNECT_BACKOFF, type BackoffPolicy } from './backoff.js';
import { encodeFrame } from '../wire/framing.js';
import { FramedConnection, PEER_PROTOCOL_VERSION, errMessage, errorFrame } from './listener.js';
import { LogRateLimiter, type Logger } from '../util/logger-port.js';

export const DEFAULT_MAX_QUEUED_MESSAGES_PER_PEER = 10_000;
export const DEFAULT_MAX_QUEUED_BYTES_PER_PEER = 64 * 1024 * 1024;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
/** At most one "failed to send" warning per peer and kind of failure per this interval. */
const DROP_WARNING_INTERVAL_MS = 1000;

/**
 * Liveness of outbound connections, derived from the heartbeat interval (docs/design-transport.md,
 * "Liveness"). A connection to a peer that has gone silent (a partition drops its packets without a
 * RST) would otherwise stay "established" while the kernel retransmits with a backoff that reaches
 * many seconds, so a healed link would be used again only at the next retransmission.
 */
export interface LivenessTimings {
  /** A PING goes out on each established outbound connection this often. */
  readonly pingIntervalMs: number;
  /** No PONG for this long: the connection is destroyed and dialled afresh. */
  readonly silenceLimitMs: number;
  /** A dial that has not connected after this long is abandoned (and retried). */
  readonly connectTimeoutMs: number;
  /** Reconnect delays, capped at a fraction of the heartbeat interval. */
  readonly backoff: BackoffPolicy;
}

/** Every liveness timing from the heartbeat interval: ping every 1/2, silent after 3/2, dial timeout 1/2, backoff cap 1/4. */
export function livenessTimings(heartbeatIntervalMs: number): LivenessTimings {
  if (!Number.isSafeInteger(heartbeatIntervalMs) || heartbeatIntervalMs < 1) {
    throw new ConfigError(`heartbeatIntervalMs must be a positive integer, got ${heartbeatIntervalMs}`);
  }
  const hb = heartbeatIntervalMs;
  const maxDelayMs = Math.max(10, Math.round(hb / 4));
  return {
    pingIntervalMs: Math.max(10, Math.round(hb / 2)),
    silenceLimitMs: Math.max(30, Math.round((hb * 3) / 2)),
    connectTimeoutMs: Math.max(50, Math.round(hb / 2)),
    backoff: { ...DEFAULT_RECONNECT_BACKOFF, initialDelayMs: Math.min(DEFAULT_RECONNECT_BACKOFF.initialDelayMs, maxDelayMs), maxDelayMs },
  };
}

/** The env var of the test-only delay hook (docs/design-transport.md, "Test-only delay"). */
export const TEST_PEER_DELAY_ENV = 'REPLISQL_TEST_PEER_DELAY_MS';

/**
 * TEST ONLY: the delay for every outgoing peer frame, from REPLISQL_TEST_PEER_DELAY_MS. null when the
 * variable is unset or empty. Throws a ConfigError naming the variable for anything but an integer
 * 0..60000.
 */
export function parseTestPeerDelay(env: NodeJS.ProcessEnv): number | null {
  const raw = env[TEST_PEER_DELAY_ENV];
  if (raw === undefined || raw.trim() === '') return null;
  const text = raw.trim();
  if (!/^\d+$/.test(text) || Number(text) > 60_000) {
    throw new ConfigError(`${TEST_PEER_DELAY_ENV} must be an integer number of milliseconds 0..60000 (a test-only hook), got '${raw}'`);
  }
  return Number(text);
}

export interface PeerAddress {
  readonly id: number;
  readonly host: string;
  readonly port: number;
}

/** What the send filter test hook decides for one message. */
export type SendFilterDecision = 'deliver' | 'drop' | { readonly delayMs: number };
export type SendFilter = (to: number, msg: object) => SendFilterDecision;

export interface TcpTransportOptions {
  readonly selfId: number;
  readonly cluster: string;
  /** The cluster's nodes; an entry with selfId is ignored. */
  readonly peers: ReadonlyArray<PeerAddress>;
  readonly maxFrameBytes: number;
  readonly logger: Logger;
  readonly onMessage: (from: number, raw: unknown) => void;
  /** The outbound connection to a peer is up (HELLO sent). */
  readonly onPeerConnected?: (id: number) => void;
  /** The outbound connection to a peer went down; a reconnect is scheduled. */
  readonly onPeerDisconnected?: (id: number, reason: string) => void;
  /** Default 10000. Beyond it the oldest queued message is dropped. */
  readonly maxQueuedMessagesPerPeer?: number;
  /** Default 64 MiB. Beyond it the oldest queued message is dropped. */
  readonly maxQueuedBytesPerPeer?: number;
  /** Default 5 s. */
  readonly connectTimeoutMs?: number;
  /** Default DEFAULT_RECONNECT_BACKOFF (50 ms doubling to 2 s, with jitter). */
  readonly backoff?: BackoffPolicy;
  /** Per-connection bound on unwritten bytes; default 64 MiB. */
  readonly maxWritableBytes?: number;
  /**
   * Turns on the liveness check of outbound connections (PING/PONG) with timings from
   * livenessTimings(heartbeatIntervalMs); it also sets the connect timeout and the backoff unless
   * they are given. Without it, connections are only replaced when the socket reports an error.
   */
  readonly heartbeatIntervalMs?: number;
}

interface QueuedFrame {
  readonly type: string;
  readonly frame: Buffer;
}

/** FIFO with O(1) push/shift and a byte count. */
class FrameQueue {
  private items: Array<QueuedFrame | undefined> = [];
  private head = 0;
  bytes = 0;

  get length(): number {
    return this.items.length - this.head;
  }
  push(item: QueuedFrame): void {
    this.items.push(item);
    this.bytes += item.frame.length;
  }
  peek(): QueuedFrame | undefined {
    return this.items[this.head];
  }
  shift(): QueuedFrame | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head++;
    if (item !== undefined) this.bytes -= item.frame.length;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
  clear(): void {
    this.items = [];
    this.head = 0;
    this.bytes = 0;
  }
}

interface PeerState {
  readonly id: number;
  readonly host: string;
  readonly port: number;
  readonly backoff: Backoff;
  readonly queue: FrameQueue;
  /** Established outbound connection (HELLO sent), the only one we send on. */
  conn: FramedConnection | null;
  /** Outbound socket still connecting. */
  connecting: net.Socket | null;
  reconnectTimer: NodeJS.Timeout | null;
  connectedAtMs: number;
  failuresSinceConnected: number;
  /** The peer answered our HELLO with an ERROR frame: do not reset the backoff. */
  refused: boolean;
  /** When the current outbound connection last proved alive (connected, or a PONG arrived). */
  lastAliveAtMs: number;
  /** A PONG arrived on the current outbound connection. */
  answered: boolean;
  /** The peer's outbound connection to us. */
  inbound: FramedConnection | null;
  delayedCount: number;
}

export class TcpTransport {
  private readonly selfId: number;
  private readonly cluster: string;
  private readonly logger: Logger;
  private readonly peers = new Map<number, PeerState>();
  private readonly maxFrameBytes: number;
  private readonly maxQueuedMessages: number;
  private readonly maxQueuedBytes: number;
  private readonly connectTimeoutMs: number;
  private readonly backoffPolicy: BackoffPolicy;
  private readonly helloFrame: Buffer;
  private readonly dropLimiter = new LogRateLimiter(DROP_WARNING_INTERVAL_MS);
  private readonly inboundLimiter = new LogRateLimiter(DROP_WARNING_INTERVAL_MS);
  private readonly delayTimers = new Set<NodeJS.Timeout>();
  private sendFilter: SendFilter | null = null;
  private closed = false;
  private readonly liveness: LivenessTimings | null;
  private livenessTimer: NodeJS.Timeout | null = null;
  private readonly pingFrame = encodeFrame({ type: 'LINK_PING' });
  private readonly pongFrame = encodeFrame({ type: 'LINK_PONG' });

  constructor(private readonly opts: TcpTransportOptions) {
    this.selfId = opts.selfId;
    this.cluster = opts.cluster;
    this.logger = opts.logger;
    this.maxFrameBytes = opts.maxFrameBytes;
    this.maxQueuedMessages = opts.maxQueuedMessagesPerPeer ?? DEFAULT_MAX_QUEUED_MESSAGES_PER_PEER;
    this.maxQueuedBytes = opts.maxQueuedBytesPerPeer ?? DEFAULT_MAX_QUEUED_BYTES_PER_PEER;
    this.liveness = opts.heartbeatIntervalMs !== undefined ? livenessTimings(opts.heartbeatIntervalMs) : null;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? this.liveness?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.backoffPolicy = opts.backoff ?? this.liveness?.backoff ?? DEFAULT_RECONNECT_BACKOFF;
    validateOptions(opts, this.maxQueuedMessages);
    this.helloFrame = encodeFrame({
      type: 'HELLO',
      protocol: PEER_PROTOCOL_VERSION,
      cluster: opts.cluster,
      nodeId: opts.selfId,
    });
    for (const p of opts.peers) {
      if (p.id === opts.selfId) continue;
      this.peers.set(p.id, {
        id: p.id,
        host: p.host,
        port: p.port,
        backoff: new Backoff(this.backoffPolicy),
        queue: new FrameQueue(),
        conn: null,
        connecting: null,
        reconnectTimer: null,
        connectedAtMs: 0,
        failuresSinceConnected: 0,
        refused: false,
        lastAliveAtMs: 0,
        answered: false,
        inbound: null,
        delayedCount: 0,
      });
    }
    for (const peer of this.peers.values()) this.connect(peer);
    if (this.liveness !== null) {
      this.livenessTimer = setInterval(() => this.checkLiveness(), this.liveness.pingIntervalMs);
      this.livenessTimer.unref();
    }
  }

  /** Queues or writes `msg` (an object with a string `type`) for peer `to`. Never throws, never blocks. */
  send(to: number, msg: object): void {
    let type = '?';
    try {
      const t: unknown = (msg as { type?: unknown } | null)?.type;
      if (typeof t === 'string') type = t;
      if (this.closed) {
        this.logger.debug({ peer: to, type }, `not sending ${type} to node ${to}: transport closed`);
        return;
      }
      const peer = this.peers.get(to);
      if (peer === undefined) {
        this.warnDrop(to, type, 'unknown', `unknown node id ${to} (not a configured peer)`);
        return;
      }
      if (typeof t !== 'string') {
        this.warnDrop(to, type, 'invalid', 'message has no string "type"');
        return;
      }
      let decision: SendFilterDecision = 'deliver';
      if (this.sendFilter !== null) {
        try {
          decision = this.sendFilter(to, msg);
        } catch (err) {
          this.logger.error({ peer: to, type, err: errMessage(err) }, 'send filter threw; delivering');
        }
      }
      if (decision === 'drop') {
        this.logger.debug({ peer: to, type }, `send filter dropped ${type} to node ${to}`);
        return;
      }
      let frame: Buffer;
      try {
        frame = encodeFrame(msg);
      } catch (err) {
        this.warnDrop(to, type, 'encode', `cannot encode: ${errMessage(err)}`);
        return;
      }
      if (frame.length - 1 > this.maxFrameBytes) {
        this.warnDrop(to, type, 'too-large', `frame of ${frame.length - 1} bytes exceeds maxFrameBytes=${this.maxFrameBytes}`);
        return;
      }
      if (decision !== 'deliver') {
        this.delay(peer, type, frame, decision.delayMs);
        return;
      }
      this.enqueueOrWrite(peer, { type, frame });
    } catch (err) {
      this.logger.error({ peer: to, type, err: errMessage(err) }, `failed to send ${type} to node ${to}: ${errMessage(err)}`);
    }
  }

  /**
   * Takes over an inbound peer connection from the NodeListener after its HELLO was validated.
   * Returns false (after logging, sending an error frame and closing it) when it is refused.
   */
  acceptInbound(hello: { readonly cluster: string; readonly nodeId: number }, conn: FramedConnection): boolean {
    if (this.closed) return this.refuse(conn, 'transport closed', 'transport closed');
    if (hello.cluster !== this.cluster) {
      return this.refuse(conn, `cluster '${hello.cluster}' is not '${this.cluster}'`, 'cluster mismatch');
    }
    const peer = hello.nodeId === this.selfId ? undefined : this.peers.get(hello.nodeId);
    if (peer === undefined) {
      const why = hello.nodeId === this.selfId ? `unknown node id ${hello.nodeId} (this node's own id)` : `unknown node id ${hello.nodeId}`;
      return this.refuse(conn, why, why);
    }
    const previous = peer.inbound;
    if (previous !== null && previous !== conn) {
      this.logger.info({ peer: peer.id, remote: conn.remote }, `node ${peer.id} connected again from ${conn.remote}; closing its previous connection`);
      previous.close('replaced by a newer connection');
    }
    peer.inbound = conn;
    conn.onClose((reason) => {
      if (peer.inbound === conn) peer.inbound = null;
      this.logger.debug({ peer: peer.id, remote: conn.remote, reason }, `inbound connection from node ${peer.id} closed: ${reason}`);
    });
    conn.onFrame((value) => this.onInboundFrame(peer.id, conn, value));
    this.logger.info({ event: 'peer-accepted', peer: peer.id, remote: conn.remote }, `accepted peer connection from node ${peer.id} (${conn.remote})`);
    return true;
  }

  /** Test hook: decide per message to deliver, drop or delay it. null removes the filter. */
  setSendFilter(fn: SendFilter | null): void {
    this.sendFilter = fn;
  }

  /** True when the outbound connection to `id` is up. */
  isConnected(id: number): boolean {
    return this.peers.get(id)?.conn?.isOpen === true;
  }

  /** Messages waiting for the outbound connection to `id`. */
  queuedMessages(id: number): number {
    return this.peers.get(id)?.queue.length ?? 0;
  }

  /** Closes every connection, drops queued messages and stops reconnecting. Resolves when sockets are closed. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    if (this.livenessTimer !== null) clearInterval(this.livenessTimer);
    this.livenessTimer = null;
    for (const t of this.delayTimers) clearTimeout(t);
    this.delayTimers.clear();
    const waits: Array<Promise<void>> = [];
    const closeConn = (conn: FramedConnection | null): void => {
      if (conn === null) return;
      waits.push(new Promise<void>((resolve) => conn.onClose(() => resolve())));
      conn.close('transport closed');
    };
    for (const peer of this.peers.values()) {
      if (peer.reconnectTimer !== null) clearTimeout(peer.reconnectTimer);
      peer.reconnectTimer = null;
      const connecting = peer.connecting;
      if (connecting !== null) {
        waits.push(new Promise<void>((resolve) => connecting.once('close', () => resolve())));
        connecting.destroy();
      }
      if (peer.queue.length > 0) {
        this.logger.debug({ peer: peer.id, dropped: peer.queue.length }, `dropping ${peer.queue.length} queued messages for node ${peer.id}: transport closed`);
      }
      peer.queue.clear();
      closeConn(peer.conn);
      closeConn(peer.inbound);
    }
    return Promise.all(waits).then(() => undefined);
  }

  // ------------------------------------------------------------------ outbound

  private connect(peer: PeerState): void {
    if (this.closed || peer.conn !== null || peer.connecting !== null) return;
    const socket = net.connect({ host: peer.host, port: peer.port });
    // Replication sends small frames back to back; with Nagle's algorithm each one after the first
    // waits for the peer's delayed ACK (~40 ms on Linux), which capped pipelined writes at a few
    // hundred per second.
    socket.setNoDelay(true);
    peer.connecting = socket;
    let failure: string | null = null;
    const onTimeout = (): void => {
      failure = `connect timed out after ${this.connectTimeoutMs} ms`;
      socket.destroy();
    };
    const onError = (err: NodeJS.ErrnoException): void => {
      failure = err.code ?? err.message;
    };
    const onClose = (): void => {
      if (peer.connecting === socket) peer.connecting = null;
      this.connectFailed(peer, failure ?? 'connection closed');
    };
    socket.setTimeout(this.connectTimeoutMs);
    socket.once('timeout', onTimeout);
    socket.on('error', onError);
    socket.once('close', onClose);
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.off('timeout', onTimeout);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (peer.connecting === socket) peer.connecting = null;
      if (this.closed) {
        socket.on('error', () => {});
        socket.destroy();
        return;
      }
      this.onConnected(peer, socket);
    });
  }

  private connectFailed(peer: PeerState, reason: string): void {
    if (this.closed) return;
    const fields = { peer: peer.id, address: `${peer.host}:${peer.port}`, reason };
    const msg = `cannot connect to node ${peer.id} at ${peer.host}:${peer.port}: ${reason}; retrying`;
    if (peer.failuresSinceConnected === 0) this.logger.info(fields, msg);
    else this.logger.debug(fields, msg);
    peer.failuresSinceConnected++;
    this.scheduleReconnect(peer);
  }

  private onConnected(peer: PeerState, socket: net.Socket): void {
    const conn = new FramedConnection(socket, {
      maxFrameBytes: this.maxFrameBytes,
      logger: this.logger,
      remote: `${peer.host}:${peer.port}`,
      ...(this.opts.maxWritableBytes !== undefined ? { maxWritableBytes: this.opts.maxWritableBytes } : {}),
    });
    peer.conn = conn;
    peer.connectedAtMs = Date.now();
    peer.lastAliveAtMs = peer.connectedAtMs;
    peer.answered = false;
    peer.refused = false;
    peer.failuresSinceConnected = 0;
    conn.sendEncoded(this.helloFrame);
    conn.onFrame((value) => this.onOutboundFrame(peer, value));
    conn.onDrain(() => this.flush(peer));
    conn.onClose((reason) => this.onOutboundClosed(peer, conn, reason));
    this.logger.info({ event: 'peer-connected', peer: peer.id, address: conn.remote }, `connected to node ${peer.id} at ${conn.remote}`);
    this.flush(peer);
    this.callback(() => this.opts.onPeerConnected?.(peer.id), 'onPeerConnected');
  }

  private onOutboundClosed(peer: PeerState, conn: FramedConnection, reason: string): void {
    if (peer.conn !== conn) return;
    peer.conn = null;
    if (this.closed) return;
    this.logger.info({ event: 'peer-connection-lost', peer: peer.id, reason }, `connection to node ${peer.id} lost: ${reason}`);
    this.callback(() => this.opts.onPeerDisconnected?.(peer.id, reason), 'onPeerDisconnected');
    // A connection that stayed up for a while was healthy: start again from the shortest delay.
    // One that was refused or dropped at once keeps growing its delay, so a misconfigured peer is
    // retried every few seconds rather than in a tight loop.
    // With the liveness check, "healthy" means the peer answered a PING: a connection accepted by
    // something that never answers (a proxy to a partitioned peer) keeps the delay growing.
    const healthy = this.liveness !== null ? peer.answered : Date.now() - peer.connectedAtMs >= this.backoffPolicy.maxDelayMs;
    if (!peer.refused && healthy) peer.backoff.reset();
    this.scheduleReconnect(peer);
  }

  /**
   * Every pingIntervalMs: an outbound connection that has not proved alive for silenceLimitMs is
   * destroyed (a reconnect follows at once, with the short capped backoff); the others get a PING,
   * which the peer answers with a PONG on the same connection. A PING that cannot be written now
   * (the socket is not draining) is skipped, so a connection whose writes do not drain goes silent too.
   */
  private checkLiveness(): void {
    const liveness = this.liveness;
    if (this.closed || liveness === null) return;
    const now = Date.now();
    for (const peer of this.peers.values()) {
      const conn = peer.conn;
      if (conn === null || !conn.isOpen) continue;
      const silentMs = now - peer.lastAliveAtMs;
      if (silentMs > liveness.silenceLimitMs) {
        this.logger.warn(
          { event: 'peer-connection-silent', peer: peer.id, address: conn.remote, silentMs, limitMs: liveness.silenceLimitMs, queued: peer.queue.length },
          `connection to node ${peer.id} at ${conn.remote} silent for ${silentMs} ms (limit ${liveness.silenceLimitMs} ms); dialling afresh`,
        );
        conn.destroy(`silent for ${silentMs} ms`);
        continue;
      }
      if (!conn.needsDrain) conn.sendEncoded(this.pingFrame);
    }
  }

  private scheduleReconnect(peer: PeerState): void {
    if (this.closed || peer.reconnectTimer !== null) return;
    const delayMs = peer.backoff.next();
    peer.reconnectTimer = setTimeout(() => {
      peer.reconnectTimer = null;
      this.connect(peer);
    }, delayMs);
  }

  /** Frames on our outbound connection: a PONG (liveness) or an ERROR (our HELLO was refused). */
  private onOutboundFrame(peer: PeerState, value: unknown): void {
    const v = value as { type?: unknown; error?: { message?: unknown } } | null;
    if (typeof v === 'object' && v !== null && v.type === 'LINK_PONG') {
      peer.lastAliveAtMs = Date.now();
      peer.answered = true;
      return;
    }
    if (typeof v === 'object' && v !== null && v.type === 'ERROR') {
      peer.refused = true;
      const why = typeof v.error?.message === 'string' ? v.error.message : JSON.stringify(v.error ?? null);
      if (this.inboundLimiter.take(`refused:${peer.id}`) !== null) {
        this.logger.warn({ peer: peer.id, address: `${peer.host}:${peer.port}`, error: v.error }, `node ${peer.id} at ${peer.host}:${peer.port} refused our connection: ${why}`);
      }
      return;
    }
    this.logger.debug({ peer: peer.id }, `ignoring unexpected frame from node ${peer.id} on the outbound connection`);
  }

  private enqueueOrWrite(peer: PeerState, item: QueuedFrame): void {
    if (this.closed) return;
    const conn = peer.conn;
    if (conn !== null && conn.isOpen && peer.queue.length === 0 && !conn.needsDrain) {
      if (conn.sendEncoded(item.frame)) return;
    }
    peer.queue.push(item);
    while (peer.queue.length > this.maxQueuedMessages || (peer.queue.bytes > this.maxQueuedBytes && peer.queue.length > 1)) {
      const dropped = peer.queue.shift();
      if (dropped === undefined) break;
      const full = peer.queue.length >= this.maxQueuedMessages ? `${this.maxQueuedMessages} messages` : `${this.maxQueuedBytes} bytes`;
      const state = peer.conn === null ? 'not connected and the send queue is full' : 'connection congested and the send queue is full';
      this.warnDrop(peer.id, dropped.type, 'queue-full', `${state} (${full}); dropped the oldest message`);
    }
  }

  private flush(peer: PeerState): void {
    const conn = peer.conn;
    while (conn !== null && conn.isOpen && !conn.needsDrain) {
      const next = peer.queue.peek();
      if (next === undefined) return;
      if (!conn.sendEncoded(next.frame)) return;
      peer.queue.shift();
    }
  }

  private delay(peer: PeerState, type: string, frame: Buffer, delayMs: number): void {
    if (peer.delayedCount >= this.maxQueuedMessages) {
      this.warnDrop(peer.id, type, 'delay-full', `${peer.delayedCount} messages already delayed by the send filter`);
      return;
    }
    peer.delayedCount++;
    const timer = setTimeout(() => {
      this.delayTimers.delete(timer);
      peer.delayedCount--;
      this.enqueueOrWrite(peer, { type, frame });
    }, Math.max(0, Number.isFinite(delayMs) ? delayMs : 0));
    this.delayTimers.add(timer);
  }

  // ------------------------------------------------------------------ inbound

  private onInboundFrame(from: number, conn: FramedConnection, value: unknown): void {
    const type: unknown = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as { type?: unknown }).type : undefined;
    if (typeof type !== 'string') {
      if (this.inboundLimiter.take(`bad:${from}`) !== null) {
        this.logger.warn({ peer: from, remote: conn.remote }, `dropped frame from node ${from} (${conn.remote}): not an object with a string "type"`);
      }
      return;
    }
    if (type === 'HELLO') {
      this.logger.debug({ peer: from, remote: conn.remote }, `ignoring repeated HELLO from node ${from}`);
      return;
    }
    if (type === 'LINK_PING') {
      // Transport liveness: answered on the connection it came on, never passed to the core.
      if (!conn.needsDrain) conn.sendEncoded(this.pongFrame);
      return;
    }
    try {
      this.opts.onMessage(from, value);
    } catch (err) {
      this.logger.error({ peer: from, type, err: errMessage(err) }, `onMessage threw for ${type} from node ${from}: ${errMessage(err)}`);
    }
  }

  private refuse(conn: FramedConnection, logReason: string, remoteReason: string): false {
    this.logger.warn({ event: 'peer-refused', remote: conn.remote, reason: logReason }, `refused peer connection from ${conn.remote}: ${logReason}`);
    conn.send(errorFrame(errorInfo(ErrorCode.BAD_REQUEST, `peer connection refused: ${remoteReason}`)));
    conn.close('peer refused');
    return false;
  }

  // ------------------------------------------------------------------ helpers

  private warnDrop(to: number, type: string, kind: string, reason: string): void {
    const suppressed = this.dropLimiter.take(`${to}:${kind}`);
    if (suppressed === null) return;
    this.logger.warn(
      { peer: to, type, reason, ...(suppressed > 0 ? { suppressed } : {}) },
      `failed to send ${type} to node ${to}: ${reason}`,
    );
  }

  private callback(fn: () => void, what: string): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ err: errMessage(err) }, `${what} threw: ${errMessage(err)}`);
    }
  }
}

function validateOptions(opts: TcpTransportOptions, maxQueuedMessages: number): void {
  if (!Number.isSafeInteger(opts.selfId) || opts.selfId < 0) throw new ConfigError(`selfId must be a non-negative integer, got ${opts.selfId}`);
  if (typeof opts.cluster !== 'string' || opts.cluster.length === 0) throw new ConfigError('cluster must be a non-empty string');
  if (!Number.isSafeInteger(maxQueuedMessages) || maxQueuedMessages < 1) {
    throw new ConfigError(`maxQueuedMessagesPerPeer must be a positive integer, got ${maxQueuedMessages}`);
  }
  if (!(opts.maxFrameBytes > 0)) throw new ConfigError(`maxFrameBytes must be positive, got ${opts.maxFrameBytes}`);
  const seen = new Set<number>();
  for (const p of opts.peers) {
    if (!Number.isSafeInteger(p.id) || p.id < 0) throw new ConfigError(`peer id must be a non-negative integer, got ${p.id}`);
    if (seen.has(p.id)) throw new ConfigError(`peer id ${p.id} appears twice`);
    seen.add(p.id);
    if (p.id === opts.selfId) continue;
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) throw new ConfigError(`peer ${p.id}: port must be 1..65535, got ${p.port}`);
    if (typeof p.host !== 'string' || p.host.length === 0) throw new ConfigError(`peer ${p.id}: host must be a non-empty string`);
  }
}
