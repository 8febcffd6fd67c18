// The MySQL protocol listener: accepts TCP connections, bounds their number, and gives each a
// MysqlConnection. See docs/mysql-protocol.md.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { LogRateLimiter, type Logger } from '../../util/logger-port.js';
import { newScramble, type MysqlUser } from './auth.js';
import { MysqlConnection, type CreateSession } from './connection.js';
import { ErrorNumber } from './constants.js';
import { AuthPlugin, SERVER_VERSION } from './handshake.js';

export interface MysqlServerOptions {
  readonly host: string;
  /** 0 picks a free port (see address()). */
  readonly port: number;
  /** Accepted users with their plaintext passwords ('' for none). */
  readonly users: readonly MysqlUser[];
  /** Makes the session of an authenticated connection, or refuses it (e.g. unknown database). */
  readonly createSession: CreateSession;
  readonly logger: Logger;
  /** Open connections at most; one more gets ERR 1040 "Too many connections". Default 1000. */
  readonly maxConnections?: number;
  /** Largest command payload accepted (max_allowed_packet). Default 64 MiB. */
  readonly maxPacketBytes?: number;
  /** Time a client has to complete the handshake (connect_timeout). Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** An idle connection is closed after this long (wait_timeout). Default 8 h. */
  readonly waitTimeoutMs?: number;
  /** Prepared statements per connection (max_prepared_stmt_count). Default 16382. */
  readonly maxPreparedStatements?: number;
  /** The version string in the greeting. Default SERVER_VERSION ('8.0.35-replisql'). */
  readonly serverVersion?: string;
  /** The auth plugin the greeting names. Default mysql_native_password. */
  readonly defaultAuthPlugin?: AuthPlugin;
  /** Interval for rate-limited refusal logs. Default 10 s. */
  readonly logIntervalMs?: number;
}

export const MYSQL_SERVER_DEFAULTS = {
  maxConnections: 1000,
  maxPacketBytes: 64 * 1024 * 1024,
  connectTimeoutMs: 10_000,
  waitTimeoutMs: 8 * 3600 * 1000,
  maxPreparedStatements: 16382,
  logIntervalMs: 10_000,
} as const;

function checkPositiveInt(name: string, v: number, max: number): number {
  if (!Number.isSafeInteger(v) || v < 1 || v > max) throw new RangeError(`MysqlServer: ${name} must be an integer in 1..${max}, got ${v}`);
  return v;
}

export class MysqlServer {
  private readonly server: Server;
  private readonly connections = new Set<MysqlConnection>();
  private readonly limiter: LogRateLimiter;
  private nextConnectionId = 1;
  private readonly maxConnections: number;
  private readonly maxPacketBytes: number;
  private readonly connectTimeoutMs: number;
  private readonly waitTimeoutMs: number;
  private readonly maxPreparedStatements: number;
  private closed = false;

  constructor(private readonly opts: MysqlServerOptions) {
    const d = MYSQL_SERVER_DEFAULTS;
    this.maxConnections = checkPositiveInt('maxConnections', opts.maxConnections ?? d.maxConnections, 100_000);
    this.maxPacketBytes = checkPositiveInt('maxPacketBytes', opts.maxPacketBytes ?? d.maxPacketBytes, 1024 * 1024 * 1024);
    this.connectTimeoutMs = checkPositiveInt('connectTimeoutMs', opts.connectTimeoutMs ?? d.connectTimeoutMs, 3600_000);
    this.waitTimeoutMs = checkPositiveInt('waitTimeoutMs', opts.waitTimeoutMs ?? d.waitTimeoutMs, 365 * 24 * 3600_000);
    this.maxPreparedStatements = checkPositiveInt('maxPreparedStatements', opts.maxPreparedStatements ?? d.maxPreparedStatements, 1_048_576);
    for (const u of opts.users) {
      if (typeof u.user !== 'string' || u.user === '' || typeof u.password !== 'string') throw new RangeError('MysqlServer: every user needs a non-empty user name and a password string');
    }
    this.limiter = new LogRateLimiter(opts.logIntervalMs ?? d.logIntervalMs);
    this.server = createServer((socket) => this.accept(socket));
    this.server.on('error', (e) => this.opts.logger.error({ err: String(e) }, 'mysql server error'));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(new Error(`MySQL protocol: cannot listen on ${this.opts.host}:${this.opts.port}: ${e.message}`));
      this.server.once('error', onError);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
  }

  address(): { host: string; port: number } {
    const a = this.server.address() as AddressInfo | null;
    if (a === null) throw new Error('MysqlServer.address(): not listening');
    return { host: a.address, port: a.port };
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Stops listening and destroys every connection (their sessions are closed). */
  close(): Promise<void> {
    this.closed = true;
    for (const c of [...this.connections]) c.close();
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
    });
  }

  private accept(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const id = this.nextConnectionId;
    this.nextConnectionId = this.nextConnectionId >= 0xffffffff ? 1 : this.nextConnectionId + 1;
    const conn = new MysqlConnection(
      socket,
      {
        connectionId: id,
        users: this.opts.users,
        createSession: this.opts.createSession,
        logger: this.opts.logger,
        logLimiter: this.limiter,
        serverVersion: this.opts.serverVersion ?? SERVER_VERSION,
        maxPacketBytes: this.maxPacketBytes,
        connectTimeoutMs: this.connectTimeoutMs,
        waitTimeoutMs: this.waitTimeoutMs,
        maxPreparedStatements: this.maxPreparedStatements,
        defaultAuthPlugin: this.opts.defaultAuthPlugin ?? AuthPlugin.NATIVE,
        scramble: newScramble(),
      },
      () => this.connections.delete(conn),
    );
    if (this.connections.size >= this.maxConnections) {
      const suppressed = this.limiter.take('too-many-connections');
      if (suppressed !== null) {
        this.opts.logger.warn({ remote: socket.remoteAddress, maxConnections: this.maxConnections, suppressed }, 'mysql connection refused: too many connections');
      }
      conn.refuse({ errno: ErrorNumber.CON_COUNT_ERROR, sqlState: '08004', message: 'Too many connections' });
      return;
    }
    this.connections.add(conn);
    conn.start();
  }
}
