// Client library for the JSON client protocol (docs/client-protocol.md): one JSON object per line
// over TCP, requests pipelined on one connection and correlated by `id`.
//
// Failover. The request id is also the write's idempotency key, so when a connection fails
// (refused, reset, silent) the client moves to the next endpoint and re-sends the SAME ids: a write
// that did reach the old node is answered as a duplicate, never applied twice. NO_COORDINATOR (an
// election is under way) is retried with a short backoff until the request's deadline. Everything
// else (NO_QUORUM, SQL errors, ...) is returned to the caller as a ReplisqlError.
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { FrameDecoder, encodeFrame, DEFAULT_MAX_FRAME_BYTES, type FrameEvent } from '../wire/framing.js';
import { ErrorCode, errorInfo, isErrorCode, MAX_ERROR_MESSAGE_CHARS, parseErrorInfo, ReplisqlError, type ErrorInfo } from '../errors.js';
import { ACK_LEVELS, READ_CONSISTENCY_LEVELS, type AckLevel, type ReadConsistency } from '../core/types.js';

// ---------------------------------------------------------------- endpoints

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** `host:port` (or `[v6]:port`) to an Endpoint; throws an Error that says what is wrong. */
export function parseEndpoint(text: string): Endpoint {
  const s = text.trim();
  if (s === '') throw new Error('empty endpoint; expected host:port, e.g. 127.0.0.1:7001');
  let host: string;
  let portText: string;
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(s);
  if (v6 !== null) {
    host = v6[1]!;
    portText = v6[2]!;
    if (isIP(host) !== 6) throw new Error(`endpoint "${s}": "${host}" is not an IPv6 address`);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon === -1) throw new Error(`endpoint "${s}" has no port; expected host:port, e.g. ${s}:7001`);
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) throw new Error(`endpoint "${s}": write IPv6 addresses in brackets, e.g. [::1]:7001`);
    if (host === '') throw new Error(`endpoint "${s}" has no host; expected host:port, e.g. 127.0.0.1${s}`);
    if (!/^[A-Za-z0-9.-]+$/.test(host)) throw new Error(`endpoint "${s}": "${host}" is not a valid host name or address`);
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    throw new Error(`endpoint "${s}": port must be an integer between 1 and 65535, got "${portText}"`);
  }
  return { host, port: Number(portText) };
}

export function formatEndpoint(e: Endpoint): string {
  return isIP(e.host) === 6 ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

/** "h:p,h2:p2" to normalised ["h:p", "h2:p2"]; throws an Error naming the bad entry. */
export function parseEndpoints(list: string): string[] {
  const parts = list.split(',');
  if (parts.length > 64) throw new Error(`too many endpoints (${parts.length}); at most 64`);
  const out: string[] = [];
  parts.forEach((part, i) => {
    if (part.trim() === '') {
      throw new Error(
        list.trim() === ''
          ? 'no endpoint given; expected host:port[,host:port...], e.g. 127.0.0.1:7001'
          : `empty endpoint at position ${i + 1} in "${list}"; expected host:port[,host:port...]`,
      );
    }
    const e = formatEndpoint(parseEndpoint(part));
    if (!out.includes(e)) out.push(e);
  });
  return out;
}

// ---------------------------------------------------------------- protocol types

export type SqlParam = string | number | boolean | null;

export type { ReadConsistency };

export interface StatementResult {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly unknown[])[];
  readonly affectedRows: number;
  readonly lastInsertId: number | null;
}

export interface QueryResponse {
  /** The request id (idempotency key) the answer belongs to. */
  readonly id: string;
  /** One result per statement in the SQL string. */
  readonly results: readonly StatementResult[];
  /** True when the node had already applied this id: the write was not applied again. */
  readonly duplicate: boolean;
  /** The endpoint that answered. */
  readonly endpoint: string;
}

export interface PeerStatus {
  readonly id: number;
  readonly online: boolean;
  readonly lastHeartbeatMsAgo: number | null;
  readonly matchIndex: number | null;
}

export interface NodeStatus {
  readonly nodeId: number;
  readonly coordinator: number | null;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  /** Last index in the node's log (may be ahead of commitIndex). */
  readonly lastIndex: number;
  readonly role: 'leader' | 'follower' | 'candidate';
  readonly healthy: boolean;
  readonly nodes: readonly PeerStatus[];
}

const nonNegInt = z.number().int().nonnegative();

const StatementResultSchema = z
  .looseObject({
    columns: z.array(z.string()).max(4096),
    rows: z.array(z.array(z.unknown())),
    affectedRows: nonNegInt,
    lastInsertId: z.number().nullable().optional(),
  })
  .refine((r) => r.rows.every((row) => row.length === r.columns.length), {
    message: 'a row has a different number of values than there are columns',
  });

const ResultFrameSchema = z.looseObject({
  type: z.literal('RESULT'),
  id: z.string(),
  results: z.array(StatementResultSchema),
  duplicate: z.boolean().optional(),
});

/** The `error` of an ERROR frame (src/errors.ts: a cluster code, or SQL_ERROR with the database's `sql` detail). */
function readError(v: unknown): ErrorInfo | string {
  const info = parseErrorInfo(v);
  if (typeof info !== 'string') return info;
  const o = typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  // A code this client does not know (a newer node): kept visible, reported as INTERNAL.
  if (typeof o['code'] === 'string' && !isErrorCode(o['code']) && typeof o['message'] === 'string' && o['message'].length <= MAX_ERROR_MESSAGE_CHARS) {
    return errorInfo(ErrorCode.INTERNAL, `the node reported error code '${o['code'].slice(0, 64)}', which this client does not know: ${o['message']}`);
  }
  return info;
}

const StatusFrameSchema = z.looseObject({
  type: z.literal('STATUS'),
  id: z.string(),
  status: z.looseObject({
    nodeId: z.number().int(),
    coordinator: z.number().int().nullable(),
    term: nonNegInt,
    commitIndex: nonNegInt,
    appliedIndex: nonNegInt,
    lastIndex: nonNegInt.optional(),
    role: z.enum(['leader', 'follower', 'candidate']),
    healthy: z.boolean(),
    nodes: z
      .array(
        z.looseObject({
          id: z.number().int(),
          online: z.boolean(),
          lastHeartbeatMsAgo: z.number().nonnegative().nullable(),
          matchIndex: nonNegInt.nullable(),
        }),
      )
      .max(64),
  }),
});

const PongFrameSchema = z.looseObject({ type: z.literal('PONG'), id: z.string() });

function describeZodError(err: z.ZodError): string {
  const first = err.issues[0];
  if (first === undefined) return 'invalid';
  const path = first.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
  return `${path === '' ? '' : `${path.slice(path.startsWith('.') ? 1 : 0)}: `}${first.message}`;
}


export interface QueryOptions {
  /** The request id (idempotency key); a fresh UUID when absent. */
  readonly id?: string;
  /** The read level of this request (docs/consistency.md); the node's default when absent. */
  readonly consistency?: ReadConsistency;
  /** The bound of the `bounded` level for this request, in ms. */
  readonly maxStalenessMs?: number;
  /** When this request's writes are acknowledged (`all-applied`: once every online node applied them); the node's default when absent. */
  readonly ack?: AckLevel;
}

// ---------------------------------------------------------------- errors

/** No configured endpoint could be reached (nothing was sent, or a read could not be completed). */
export class ClientConnectionError extends Error {
  readonly code = 'UNAVAILABLE' as const;
  constructor(
    message: string,
    /** The last failure seen for each endpoint tried. */
    readonly attempts: readonly { readonly endpoint: string; readonly error: string }[] = [],
  ) {
    super(message);
    this.name = 'ClientConnectionError';
  }
}

// ---------------------------------------------------------------- client

export interface ClientOptions {
  /** Deadline for each request, including failover and NO_COORDINATOR waits. Default 20000. */
  readonly timeoutMs?: number;
  /** How many times a request is re-sent after the connection it was sent on failed. Default 5. */
  readonly retries?: number;
  /** Per-endpoint TCP connect timeout. Default 3000 (capped by timeoutMs). */
  readonly connectTimeoutMs?: number;
  /**
   * A connection with requests outstanding that receives nothing for this long is considered dead
   * (a stopped or hung node) and the client fails over. A PING is sent at half this time so that a
   * slow but live node is not abandoned. Default 6000.
   */
  readonly livenessTimeoutMs?: number;
  /** Largest response line accepted, and largest request sent. Default 16 MiB. */
  readonly maxFrameBytes?: number;
  /** Most requests outstanding at once; more are refused with OVERLOADED. Default 1000. */
  readonly maxInFlight?: number;
}

type Kind = 'QUERY' | 'STATUS' | 'PING';

interface Pending {
  readonly id: string;
  readonly kind: Kind;
  readonly frame: Buffer;
  readonly deadline: number;
  readonly resolve: (answer: Answer) => void;
  readonly reject: (err: Error) => void;
  timer: NodeJS.Timeout | null;
  retryTimer: NodeJS.Timeout | null;
  /** The connection the request is awaiting an answer on, if any. */
  onConn: Connection | null;
  /** The endpoint the request was last written to. */
  endpoint: string;
  sends: number;
  backoffMs: number;
  lastError: string | null;
}

interface Answer {
  readonly frame: unknown;
  readonly endpoint: string;
}

interface Connection {
  readonly socket: Socket;
  readonly endpoint: string;
  readonly index: number;
  readonly decoder: FrameDecoder;
  lastReceivedAt: number;
  probeId: string | null;
  /** The last connection-level error the node sent (`id: null`), if any. */
  serverError: string | null;
  dead: boolean;
}

const NO_COORDINATOR_FIRST_BACKOFF_MS = 50;
const NO_COORDINATOR_MAX_BACKOFF_MS = 1000;
const RECONNECT_MAX_BACKOFF_MS = 1000;

function positiveInt(name: string, v: number | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

function checkParam(p: unknown, i: number): void {
  const ok = p === null || typeof p === 'string' || typeof p === 'boolean' || (typeof p === 'number' && Number.isFinite(p));
  if (!ok) {
    throw new ReplisqlError(
      ErrorCode.BAD_REQUEST,
      `params[${i}]: expected a string, finite number, boolean or null, got ${typeof p === 'number' ? String(p) : typeof p}`,
    );
  }
}

export class ReplisqlClient {
  private readonly endpoints: readonly Endpoint[];
  private readonly labels: readonly string[];
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly connectTimeoutMs: number;
  private readonly livenessTimeoutMs: number;
  private readonly maxFrameBytes: number;
  private readonly maxInFlight: number;

  private readonly pending = new Map<string, Pending>();
  private conn: Connection | null = null;
  /**
   * The connection whose session is inside a transaction (BEGIN ... COMMIT), as the node's last
   * answer said. Its requests are never re-sent elsewhere: the transaction lives on that connection.
   */
  private transactionConn: Connection | null = null;
  private reconnecting = false;
  private nextIndex = 0;
  private closed = false;
  private readonly lastConnectErrors = new Map<string, string>();
  private readonly livenessTimer: NodeJS.Timeout;

  private constructor(endpoints: readonly string[], opts: ClientOptions) {
    if (endpoints.length === 0) throw new Error('no endpoint given; expected at least one host:port');
    this.endpoints = endpoints.map(parseEndpoint);
    this.labels = this.endpoints.map(formatEndpoint);
    this.timeoutMs = positiveInt('timeoutMs', opts.timeoutMs, 20_000);
    this.retries = positiveInt('retries', opts.retries, 5, 0);
    this.connectTimeoutMs = Math.min(positiveInt('connectTimeoutMs', opts.connectTimeoutMs, 3000), this.timeoutMs);
    this.livenessTimeoutMs = positiveInt('livenessTimeoutMs', opts.livenessTimeoutMs, 6000, 10);
    this.maxFrameBytes = positiveInt('maxFrameBytes', opts.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES, 1024);
    this.maxInFlight = positiveInt('maxInFlight', opts.maxInFlight, 1000);
    const every = Math.max(5, Math.min(500, Math.floor(this.livenessTimeoutMs / 4)));
    this.livenessTimer = setInterval(() => this.checkLiveness(), every);
    this.livenessTimer.unref();
  }

  /**
   * Connects to the first reachable endpoint (tried in order). Throws ClientConnectionError listing
   * every endpoint's failure when none answers. Endpoints are "host:port" or "[v6]:port".
   */
  static async connect(endpoints: readonly string[], opts: ClientOptions = {}): Promise<ReplisqlClient> {
    const client = new ReplisqlClient(endpoints, opts);
    for (let i = 0; i < client.endpoints.length; i++) {
      try {
        await client.open(i);
        return client;
      } catch {
        // recorded in lastConnectErrors; try the next one
      }
    }
    await client.close();
    throw client.unavailableError('could not connect to any endpoint');
  }

  /** The endpoint currently connected to, or null while reconnecting. */
  get endpoint(): string | null {
    return this.conn?.endpoint ?? null;
  }

  /** Runs the SQL (one or more statements) and returns one result per statement. */
  async query(sql: string, params: readonly SqlParam[] = [], opts: QueryOptions = {}): Promise<StatementResult[]> {
    return [...(await this.queryDetailed(sql, params, opts)).results];
  }

  /**
   * Like query() but also returns the request id, whether the node had already applied it
   * (`duplicate`) and which endpoint answered. Pass `opts.id` to retry a write whose outcome was
   * unknown: the same id is applied at most once.
   */
  async queryDetailed(sql: string, params: readonly SqlParam[] = [], opts: QueryOptions = {}): Promise<QueryResponse> {
    if (typeof sql !== 'string') throw new ReplisqlError(ErrorCode.BAD_REQUEST, 'sql must be a string');
    if (!Array.isArray(params)) throw new ReplisqlError(ErrorCode.BAD_REQUEST, 'params must be an array');
    params.forEach(checkParam);
    const id = opts.id ?? randomUUID();
    if (!/^[\x21-\x7e]{1,128}$/.test(id)) {
      throw new ReplisqlError(ErrorCode.BAD_REQUEST, 'id must be 1-128 printable ASCII characters without spaces');
    }
    if (opts.consistency !== undefined && !(READ_CONSISTENCY_LEVELS as readonly string[]).includes(opts.consistency)) {
      throw new ReplisqlError(ErrorCode.BAD_REQUEST, `unknown read consistency ${JSON.stringify(opts.consistency)}: expected one of ${READ_CONSISTENCY_LEVELS.join(', ')}`);
    }
    if (opts.ack !== undefined && !ACK_LEVELS.includes(opts.ack)) {
      throw new ReplisqlError(ErrorCode.BAD_REQUEST, `unknown ack level ${JSON.stringify(opts.ack)}: expected one of ${ACK_LEVELS.join(', ')}`);
    }
    const level = {
      ...(opts.consistency === undefined ? {} : { consistency: opts.consistency }),
      ...(opts.maxStalenessMs === undefined ? {} : { maxStalenessMs: opts.maxStalenessMs }),
      ...(opts.ack === undefined ? {} : { ack: opts.ack }),
    };
    const answer = await this.request('QUERY', id, { sql, params: [...params], ...level });
    const f = answer.frame as z.infer<typeof ResultFrameSchema>;
    return {
      id,
      duplicate: f.duplicate ?? false,
      endpoint: answer.endpoint,
      results: f.results.map((r) => ({
        columns: r.columns,
        rows: r.rows,
        affectedRows: r.affectedRows,
        lastInsertId: r.lastInsertId ?? null,
      })),
    };
  }

  /** True while the node's last answer said this client's session is inside a transaction (BEGIN ... COMMIT). */
  get inTransaction(): boolean {
    return this.transactionConn !== null;
  }

  /** The answering node's view of the cluster. */
  async status(): Promise<NodeStatus> {
    const frame = (await this.request('STATUS', randomUUID(), {})).frame as z.infer<typeof StatusFrameSchema>;
    const s = frame.status;
    return {
      nodeId: s.nodeId,
      coordinator: s.coordinator,
      term: s.term,
      commitIndex: s.commitIndex,
      appliedIndex: s.appliedIndex,
      lastIndex: s.lastIndex ?? s.commitIndex,
      role: s.role,
      healthy: s.healthy,
      nodes: s.nodes.map((n) => ({
        id: n.id,
        online: n.online,
        lastHeartbeatMsAgo: n.lastHeartbeatMsAgo,
        matchIndex: n.matchIndex,
      })),
    };
  }

  /** Round trip in milliseconds. */
  async ping(): Promise<number> {
    const started = performance.now();
    await this.request('PING', randomUUID(), {});
    return performance.now() - started;
  }

  /** Fails every outstanding request and closes the connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.livenessTimer);
    for (const p of [...this.pending.values()]) this.settle(p, new ClientConnectionError('client closed'));
    const conn = this.conn;
    this.conn = null;
    if (conn !== null && !conn.dead) {
      conn.dead = true;
      await new Promise<void>((resolve) => {
        conn.socket.once('close', () => resolve());
        conn.socket.end();
        setTimeout(() => {
          conn.socket.destroy();
          resolve();
        }, 200).unref();
      });
    }
  }

  // ---------------------------------------------------------------- requests

  private request(kind: Kind, id: string, body: Record<string, unknown>): Promise<Answer> {
    if (this.closed) return Promise.reject(new ClientConnectionError('client closed'));
    if (this.pending.has(id)) {
      return Promise.reject(new ReplisqlError(ErrorCode.BAD_REQUEST, `request id ${id} is already in flight on this client`));
    }
    if (this.pending.size >= this.maxInFlight) {
      return Promise.reject(new ReplisqlError(ErrorCode.OVERLOADED, `more than ${this.maxInFlight} requests in flight on this client`));
    }
    const frame = encodeFrame({ type: kind, id, ...body });
    if (frame.length > this.maxFrameBytes) {
      return Promise.reject(
        new ReplisqlError(ErrorCode.BAD_REQUEST, `request of ${frame.length} bytes exceeds maxFrameBytes=${this.maxFrameBytes}`),
      );
    }
    return new Promise<Answer>((resolve, reject) => {
      const p: Pending = {
        id,
        kind,
        frame,
        deadline: Date.now() + this.timeoutMs,
        resolve,
        reject,
        timer: null,
        retryTimer: null,
        onConn: null,
        endpoint: '',
        sends: 0,
        backoffMs: NO_COORDINATOR_FIRST_BACKOFF_MS,
        lastError: null,
      };
      p.timer = setTimeout(() => this.settle(p, this.timeoutError(p)), this.timeoutMs);
      this.pending.set(id, p);
      this.dispatch(p);
    });
  }

  private dispatch(p: Pending): void {
    if (this.closed || !this.pending.has(p.id)) return;
    const conn = this.conn;
    if (conn !== null && !conn.dead) this.write(conn, p);
    else this.startReconnect();
  }

  private write(conn: Connection, p: Pending): void {
    if (this.outstandingOn(conn) === 0) conn.lastReceivedAt = Date.now(); // quiet time counts from now
    p.onConn = conn;
    p.sends++;
    p.endpoint = conn.endpoint;
    conn.socket.write(p.frame);
  }

  private outstandingOn(conn: Connection): number {
    let n = 0;
    for (const p of this.pending.values()) if (p.onConn === conn) n++;
    return n;
  }

  private settle(p: Pending, result: Error | { readonly frame: unknown }): void {
    if (!this.pending.has(p.id) || this.pending.get(p.id) !== p) return;
    this.pending.delete(p.id);
    if (p.timer !== null) clearTimeout(p.timer);
    if (p.retryTimer !== null) clearTimeout(p.retryTimer);
    p.onConn = null;
    if (result instanceof Error) p.reject(result);
    else p.resolve({ frame: result.frame, endpoint: p.endpoint });
  }

  private timeoutError(p: Pending): Error {
    const detail = p.lastError !== null ? ` (last problem: ${p.lastError})` : '';
    if (p.sends === 0) {
      return this.unavailableError(`no endpoint reachable within ${this.timeoutMs} ms${detail}`);
    }
    if (p.kind === 'QUERY') {
      return new ReplisqlError(
        ErrorCode.UNKNOWN_OUTCOME,
        `no answer within ${this.timeoutMs} ms${detail}; the statement may or may not have been applied ` +
          `(retrying with the same id ${p.id} is safe: it is applied at most once)`,
      );
    }
    return new ClientConnectionError(`no answer to ${p.kind} within ${this.timeoutMs} ms${detail}`, this.attemptList());
  }

  private unavailableError(what: string): ClientConnectionError {
    const attempts = this.attemptList();
    const list = attempts.map((a) => `${a.endpoint}: ${a.error}`).join('; ');
    return new ClientConnectionError(`${what}${list === '' ? '' : ` (${list})`}`, attempts);
  }

  private attemptList(): { endpoint: string; error: string }[] {
    return [...this.lastConnectErrors.entries()].map(([endpoint, error]) => ({ endpoint, error }));
  }

  // ---------------------------------------------------------------- connections

  private open(index: number): Promise<Connection> {
    const endpoint = this.endpoints[index]!;
    const label = this.labels[index]!;
    return new Promise<Connection>((resolve, reject) => {
      const socket = netConnect({ host: endpoint.host, port: endpoint.port });
      socket.setNoDelay(true);
      let connected = false;
      const timer = setTimeout(() => {
        socket.destroy();
        fail(`connect timed out after ${this.connectTimeoutMs} ms`);
      }, this.connectTimeoutMs);
      const fail = (why: string) => {
        if (connected) return;
        connected = true; // settle once
        clearTimeout(timer);
        this.lastConnectErrors.set(label, why);
        reject(new Error(why));
      };
      socket.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
      socket.once('connect', () => {
        if (connected) return;
        connected = true;
        clearTimeout(timer);
        socket.removeAllListeners('error');
        if (this.closed) {
          socket.destroy();
          reject(new Error('client closed'));
          return;
        }
        this.lastConnectErrors.delete(label);
        const conn: Connection = {
          socket,
          endpoint: label,
          index,
          decoder: new FrameDecoder(this.maxFrameBytes),
          lastReceivedAt: Date.now(),
          probeId: null,
          serverError: null,
          dead: false,
        };
        let lastSocketError = 'connection closed by the node';
        socket.on('data', (data: Buffer) => this.onData(conn, data));
        socket.on('error', (err: NodeJS.ErrnoException) => {
          lastSocketError = err.code ?? err.message;
        });
        socket.on('close', () => this.connectionLost(conn, conn.serverError ?? lastSocketError));
        this.conn = conn;
        this.nextIndex = index;
        // The first frame tells the node this is a client connection (a node closes connections
        // that stay silent), and it checks at once that the other end speaks this protocol.
        conn.probeId = `hello-${randomUUID()}`;
        socket.write(encodeFrame({ type: 'PING', id: conn.probeId }));
        for (const p of this.pending.values()) {
          if (p.onConn === null && p.retryTimer === null) this.write(conn, p);
        }
        resolve(conn);
      });
    });
  }

  /** Cycles through the endpoints (starting after the failed one) until one accepts or nothing waits. */
  private startReconnect(): void {
    if (this.reconnecting || this.closed) return;
    this.reconnecting = true;
    void (async () => {
      let backoffMs = 50;
      try {
        while (!this.closed && this.conn === null && this.pending.size > 0) {
          for (let k = 0; k < this.endpoints.length && !this.closed && this.pending.size > 0; k++) {
            const index = (this.nextIndex + k) % this.endpoints.length;
            try {
              await this.open(index);
              return;
            } catch {
              for (const p of this.pending.values()) {
                p.lastError = `${this.labels[index]}: ${this.lastConnectErrors.get(this.labels[index]!) ?? 'failed'}`;
              }
            }
          }
          await new Promise((r) => setTimeout(r, backoffMs).unref());
          backoffMs = Math.min(backoffMs * 2, RECONNECT_MAX_BACKOFF_MS);
        }
      } finally {
        this.reconnecting = false;
      }
    })();
  }

  private connectionLost(conn: Connection, reason: string): void {
    if (conn.dead && this.conn !== conn) return;
    conn.dead = true;
    conn.socket.destroy();
    if (this.conn === conn) this.conn = null;
    if (this.closed) return;
    const why = `${conn.endpoint}: ${reason}`;
    this.lastConnectErrors.set(conn.endpoint, reason);
    if (this.transactionConn === conn) {
      // The node rolls back a transaction whose connection closes; a COMMIT in flight may have landed.
      this.transactionConn = null;
      for (const p of [...this.pending.values()]) {
        if (p.kind !== 'QUERY') continue;
        const maybeCommit = p.onConn === conn && /\b(COMMIT|END)\b/i.test(p.frame.toString('utf8'));
        this.settle(
          p,
          maybeCommit
            ? new ReplisqlError(ErrorCode.UNKNOWN_OUTCOME, `connection lost while committing a transaction (${why}); it may or may not have been committed`)
            : new ReplisqlError(ErrorCode.TRANSACTION_ABORTED, `connection lost during a transaction (${why}); the transaction was rolled back`),
        );
      }
    }
    // Move on to the next endpoint when requests were in flight; an idle connection the node
    // closed is simply reopened to the same endpoint on the next request.
    const inFlight = this.outstandingOn(conn) > 0;
    this.nextIndex = inFlight ? (conn.index + 1) % this.endpoints.length : conn.index;
    for (const p of [...this.pending.values()]) {
      if (p.onConn !== conn) continue;
      p.onConn = null;
      p.lastError = why;
      if (p.sends > this.retries) {
        this.settle(
          p,
          p.kind === 'QUERY'
            ? new ReplisqlError(
                ErrorCode.UNKNOWN_OUTCOME,
                `connection lost after the request was sent ${p.sends} time(s) (${why}); the statement may or may not ` +
                  `have been applied (retrying with the same id ${p.id} is safe: it is applied at most once)`,
              )
            : new ClientConnectionError(`connection lost ${p.sends} time(s) (${why})`, this.attemptList()),
        );
      }
    }
    if (this.pending.size > 0) this.startReconnect();
  }

  private checkLiveness(): void {
    const conn = this.conn;
    if (conn === null || conn.dead || this.outstandingOn(conn) === 0) return;
    const quietMs = Date.now() - conn.lastReceivedAt;
    if (quietMs > this.livenessTimeoutMs) {
      this.connectionLost(conn, `no response for ${quietMs} ms`);
    } else if (quietMs > this.livenessTimeoutMs / 2 && conn.probeId === null) {
      conn.probeId = `probe-${randomUUID()}`;
      conn.socket.write(encodeFrame({ type: 'PING', id: conn.probeId }));
    }
  }

  // ---------------------------------------------------------------- responses

  private onData(conn: Connection, data: Buffer): void {
    if (conn.dead) return;
    let events: FrameEvent[];
    try {
      events = conn.decoder.push(data);
    } catch (err) {
      this.connectionLost(conn, `cannot decode response: ${(err as Error).message}`);
      return;
    }
    conn.lastReceivedAt = Date.now();
    for (const ev of events) {
      if (conn.dead) return;
      if (ev.type === 'error') this.onBadFrame(conn, ev.message);
      else this.onFrame(conn, ev.value);
    }
  }

  /** A response that cannot be correlated: blame the only request waiting, else drop the connection. */
  private onBadFrame(conn: Connection, message: string): void {
    const waiting = [...this.pending.values()].filter((p) => p.onConn === conn);
    if (waiting.length === 1) {
      this.settle(waiting[0]!, this.malformed(waiting[0]!, conn, message));
    } else if (waiting.length > 1) {
      this.connectionLost(conn, `protocol error: ${message}`);
    }
  }

  private malformed(p: Pending, conn: Connection, message: string): Error {
    const what = `unreadable response from ${conn.endpoint}: ${message}`;
    return p.kind === 'QUERY'
      ? new ReplisqlError(ErrorCode.UNKNOWN_OUTCOME, `${what}; the statement may or may not have been applied`)
      : new ReplisqlError(ErrorCode.INTERNAL, what);
  }

  private onFrame(conn: Connection, value: unknown): void {
    const envelope = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
    const id = envelope !== null && typeof envelope.id === 'string' ? envelope.id : null;
    if (id === null && envelope !== null && envelope.type === 'ERROR' && envelope.id === null) {
      this.onConnectionError(conn, value);
      return;
    }
    if (id === null) {
      this.onBadFrame(conn, `frame without a string "id": ${JSON.stringify(value).slice(0, 80)}`);
      return;
    }
    if (id === conn.probeId) {
      conn.probeId = null;
      return;
    }
    const p = this.pending.get(id);
    if (p === undefined || p.onConn !== conn) return; // late answer to a settled or re-sent request
    if (p.kind === 'QUERY' && typeof envelope!.transaction === 'boolean') {
      if (envelope!.transaction) this.transactionConn = conn;
      else if (this.transactionConn === conn) this.transactionConn = null;
    }
    if (envelope!.type === 'ERROR') {
      const error = readError(envelope!.error);
      if (typeof error === 'string') {
        this.settle(p, this.malformed(p, conn, `ERROR frame: ${error}`));
        return;
      }
      this.onErrorFrame(p, error);
      return;
    }
    const schema = p.kind === 'QUERY' ? ResultFrameSchema : p.kind === 'STATUS' ? StatusFrameSchema : PongFrameSchema;
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      const expected = p.kind === 'QUERY' ? 'RESULT' : p.kind === 'STATUS' ? 'STATUS' : 'PONG';
      const detail =
        envelope!.type !== expected
          ? `expected a ${expected} or ERROR frame, got type ${JSON.stringify(envelope!.type)}`
          : `${expected} frame: ${describeZodError(parsed.error)}`;
      this.settle(p, this.malformed(p, conn, detail));
      return;
    }
    this.settle(p, { frame: parsed.data });
  }

  /**
   * `{"type":"ERROR","id":null,...}`: the node's verdict on the connection or on a frame it could not
   * read (too large, malformed). With exactly one request waiting it is that request's answer;
   * otherwise it is kept as the reason given if the node then closes the connection.
   */
  private onConnectionError(conn: Connection, value: unknown): void {
    const read = readError((value as Record<string, unknown>).error);
    const error = typeof read === 'string' ? errorInfo(ErrorCode.INTERNAL, `malformed connection error frame: ${read}`) : read;
    conn.serverError = `${error.code}: ${error.message}`;
    const waiting = [...this.pending.values()].filter((p) => p.onConn === conn);
    if (waiting.length === 1) this.onErrorFrame(waiting[0]!, error);
  }

  private onErrorFrame(p: Pending, e: ErrorInfo): void {
    if (e.code === ErrorCode.NO_COORDINATOR) {
      const remaining = p.deadline - Date.now();
      if (remaining > p.backoffMs) {
        // An election is under way: nothing was applied, ask again (same id) shortly.
        p.onConn = null;
        p.lastError = `NO_COORDINATOR: ${e.message}`;
        const delay = p.backoffMs;
        p.backoffMs = Math.min(p.backoffMs * 2, NO_COORDINATOR_MAX_BACKOFF_MS);
        p.retryTimer = setTimeout(() => {
          p.retryTimer = null;
          this.dispatch(p);
        }, delay);
        return;
      }
    }
    this.settle(p, ReplisqlError.fromInfo(e));
  }
}
