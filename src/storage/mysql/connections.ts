// The MySQL engine's connections and their health: one write connection that serves one request at a
// time in arrival order (onWriter), a pool of read-only read connections (withReadConnection), and what
// happens when they fail. A lost connection makes the engine unhealthy: every call rejects with
// UNHEALTHY until a background probe reconnects; a lost batch or snapshot install, or a failure the
// engine cannot undo, needs close() + open(). The write connection's session state lives here too:
// the cached fencing row and whether the coordinator's batch is open.
import mysql from 'mysql2';
import type { Connection, ConnectionOptions, Pool, PoolConnection, PoolOptions, QueryError } from 'mysql2';
import { ConfigError, ErrorCode } from '../../errors.js';
import { EngineLifecycle, ReadGate, type EngineStatus } from '../engine-lifecycle.js';
import { EngineCode, SqlEngineError } from '../sql-engine.js';
import type { FenceRow } from './fence.js';
import { classifyMysqlError, errorCodeOf, errorMessageOf, serverErrorOf, quoteIdent, quoteString, type MysqlErrorLike } from './mysql-context.js';
import type { MysqlSettings } from './options.js';
import { delay, destroyConnection, endConnection, query, rowsOf } from './query.js';

interface Failure {
  readonly reason: string;
  readonly engineCode: string;
  /** The engine cannot recover by itself (a batch or a snapshot install was lost): close() + open(). */
  reopen: boolean;
}

export class MysqlConnections {
  private readonly life = new EngineLifecycle();
  private failure: Failure | null = null;
  /** The write connection; null while closed or unhealthy. */
  writer: Connection | null = null;
  private readPool: Pool | null = null;
  private readonly initialized = new WeakSet<object>();
  private flavor: { mariadb: boolean; version: string } | null = null;
  /** Committed fencing row, as last read or written by the write connection. */
  state: FenceRow | null = null;
  /** The coordinator's batch is open on the write connection. */
  batchOpen = false;
  private writeChain: Promise<unknown> = Promise.resolve();
  private queued = 0;
  /** Shut while a snapshot is installed. */
  readonly readGate = new ReadGate();
  private probeTimer: NodeJS.Timeout | null = null;

  /**
   * `recover`: on a new write connection, reads the fencing row and finishes what an interrupted
   * snapshot install left (open() and the reconnect probe both run it).
   */
  constructor(
    private readonly s: MysqlSettings,
    private readonly recover: (w: Connection) => Promise<FenceRow>,
  ) {}

  get status(): EngineStatus {
    return this.life.status;
  }

  // ================================================================ lifecycle

  /** Connects, lets `prepare` set up the database on the write connection (it returns the fencing row), opens the read pool. */
  async open(prepare: (w: Connection) => Promise<FenceRow>): Promise<void> {
    if (this.life.status !== 'closed') throw this.misuse(`open() while ${this.life.status}`);
    this.life.status = 'opening';
    this.failure = null;
    this.batchOpen = false;
    let w: Connection | null = null;
    try {
      if (this.s.opts.createDatabase === true) {
        const c = await this.connect(false);
        try {
          await query(c, `CREATE DATABASE IF NOT EXISTS ${quoteIdent(this.s.opts.database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
        } finally {
          destroyConnection(c);
        }
      }
      w = await this.connect(true);
      const fence = await prepare(w);
      this.readPool = this.createReadPool();
      this.writer = w;
      this.watchWriter(w);
      this.state = fence;
      this.life.status = 'open';
    } catch (e) {
      if (w) destroyConnection(w);
      await this.endPool();
      this.life.status = 'closed';
      throw this.openError(e);
    }
  }

  close(): Promise<void> {
    return this.life.close(() => this.doClose());
  }

  private async doClose(): Promise<void> {
    this.stopProbe();
    // Requests already queued for the write connection finish (or fail) first.
    await Promise.race([this.writeChain.catch(() => undefined), delay(5000)]);
    const w = this.writer;
    this.writer = null;
    if (w !== null) {
      if (this.batchOpen) await query(w, 'ROLLBACK').catch(() => undefined);
      await endConnection(w);
    }
    this.batchOpen = false;
    await this.endPool();
    this.state = null;
  }

  /** A failure made the engine unhealthy (it may still be open). */
  failed(): boolean {
    return this.failure !== null;
  }

  isHealthy(): boolean {
    return this.life.status === 'open' && this.failure === null;
  }

  /** Why the engine is unhealthy (null when healthy). */
  unhealthyReason(): string | null {
    return this.failure?.reason ?? (this.life.status === 'open' ? null : `the engine is ${this.life.status}`);
  }

  /** `host:port/database` (or the socket), for messages. */
  describe(): string {
    const where = this.s.opts.socketPath ?? `${this.s.opts.host ?? '127.0.0.1'}:${this.s.opts.port ?? 3306}`;
    return `mysql ${where}/${this.s.opts.database}`;
  }

  private connectionOptions(withDatabase: boolean): ConnectionOptions {
    const o = this.s.opts;
    return {
      ...(o.socketPath !== undefined ? { socketPath: o.socketPath } : { host: o.host ?? '127.0.0.1', port: o.port ?? 3306 }),
      user: o.user,
      password: o.password ?? '',
      ...(withDatabase ? { database: o.database } : {}),
      charset: 'UTF8MB4_GENERAL_CI',
      connectTimeout: this.s.connectTimeoutMs,
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: false,
      jsonStrings: true,
      decimalNumbers: false,
      multipleStatements: false,
      enableKeepAlive: true,
      // Parameters are inlined by analyzeStatement; mysql2 must never rewrite the SQL text.
      queryFormat: (sql: string) => sql,
      typeCast: (field, next) => (field.type === 'GEOMETRY' ? field.buffer() : next()),
    };
  }

  /** A new connection with the session pinned for writing (checks the server on the first one). */
  private async connect(withDatabase: boolean): Promise<Connection> {
    const c = mysql.createConnection(this.connectionOptions(withDatabase));
    c.on('error', () => undefined); // reported through the failing call, or by watchWriter
    try {
      await new Promise<void>((resolve, reject) => c.connect((err) => (err ? reject(err) : resolve())));
      if (this.flavor === null) {
        const v = String((await rowsOf(c, 'SELECT VERSION()'))[0]![0]);
        const mariadb = /mariadb/i.test(v);
        const [major = 0, minor = 0] = v.split(/[.-]/).map((x) => Number(x));
        const atomicDdl = mariadb ? major > 10 || (major === 10 && minor >= 6) : major >= 8;
        if (!atomicDdl) throw new ConfigError(`${this.describe()}: server ${v} is too old: replisql needs MariaDB 10.6+ or MySQL 8.0+ (atomic DDL)`);
        this.flavor = { mariadb, version: v };
      }
      for (const sql of this.sessionSql('write')) await query(c, sql);
      return c;
    } catch (e) {
      destroyConnection(c);
      throw e;
    }
  }

  private sessionSql(role: 'read' | 'write'): string[] {
    const common =
      `SET SESSION sql_mode = ${quoteString(this.s.sqlMode)}, time_zone = '+00:00', auto_increment_increment = 1, auto_increment_offset = 1, ` +
      `div_precision_increment = 4, lc_time_names = 'en_US', default_storage_engine = 'InnoDB', foreign_key_checks = 1, unique_checks = 1, ` +
      `group_concat_max_len = 1048576, explicit_defaults_for_timestamp = 1, autocommit = 1`;
    if (role === 'write') {
      return [`${common}, lock_wait_timeout = 60, innodb_lock_wait_timeout = 50`, 'SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ'];
    }
    const timeout = this.flavor?.mariadb !== false ? `max_statement_time = ${this.s.readTimeoutMs / 1000}` : `max_execution_time = ${this.s.readTimeoutMs}`;
    return [`${common}, ${timeout}`, 'SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY'];
  }

  private createReadPool(): Pool {
    const opts: PoolOptions = { ...this.connectionOptions(true), connectionLimit: this.s.readConnections, queueLimit: this.s.maxQueuedRequests, maxIdle: this.s.readConnections };
    const pool = mysql.createPool(opts);
    pool.on('error', () => undefined);
    return pool;
  }

  private async endPool(): Promise<void> {
    const pool = this.readPool;
    this.readPool = null;
    if (pool === null) return;
    await Promise.race([new Promise<void>((r) => pool.end(() => r())), delay(2000)]);
  }

  /** Connection failures of the idle write connection (the server died) make the engine unhealthy. */
  private watchWriter(w: Connection): void {
    w.on('error', (err: QueryError) => {
      if (this.writer === w && this.life.status === 'open') this.lose(w, `the database connection failed: ${errorCodeOf(err)}: ${errorMessageOf(err)}`, EngineCode.UNHEALTHY, false);
    });
  }

  async withReadConnection<T>(fn: (c: PoolConnection) => Promise<T>): Promise<T> {
    while (this.readGate.shut !== null) await this.readGate.shut;
    this.ready();
    const pool = this.readPool!;
    let c: PoolConnection;
    try {
      c = await new Promise<PoolConnection>((resolve, reject) => pool.getConnection((err, conn) => (err ? reject(err) : resolve(conn))));
    } catch (err) {
      if ((err as MysqlErrorLike).code === 'POOL_ENQUEUELIMIT') throw new SqlEngineError(ErrorCode.OVERLOADED, EngineCode.QUEUE_FULL, 'too many reads are waiting for a connection');
      throw this.lose(null, `cannot connect to the database: ${errorCodeOf(err)}: ${errorMessageOf(err)}`, EngineCode.UNHEALTHY, false);
    }
    let destroy = false;
    try {
      if (!this.initialized.has(c)) {
        for (const sql of this.sessionSql('read')) await query(c, sql);
        this.initialized.add(c);
      }
      return await fn(c);
    } catch (err) {
      if (err instanceof SqlEngineError) throw err;
      const kind = classifyMysqlError(err);
      const code = errorCodeOf(err);
      if (kind === 'connection') {
        destroy = true;
        throw this.lose(null, `the database connection failed: ${code}: ${errorMessageOf(err)}`, EngineCode.UNHEALTHY, false);
      }
      const errno = (err as MysqlErrorLike).errno;
      if (errno === 1969 || errno === 3024) {
        throw new SqlEngineError(ErrorCode.SQL_ERROR, EngineCode.READ_TIMEOUT, `read did not finish within ${this.s.readTimeoutMs} ms and was stopped by the server`);
      }
      const { code: engineCode, message, ...numbers } = serverErrorOf(err);
      throw new SqlEngineError(ErrorCode.SQL_ERROR, engineCode, message, { ...numbers, cause: err });
    } finally {
      if (destroy) destroyConnection(c);
      else c.release();
    }
  }

  clientReadTimeout(): number {
    return this.s.readTimeoutMs === 0 ? 0 : this.s.readTimeoutMs + 5000;
  }

  /**
   * Runs `fn` on the write connection after every earlier write request (FIFO). Rejects at once while
   * the engine is unhealthy or too many requests wait.
   */
  onWriter<T>(fn: (w: Connection) => Promise<T>): Promise<T> {
    try {
      this.ready();
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.queued >= this.s.maxQueuedRequests) {
      return Promise.reject(new SqlEngineError(ErrorCode.OVERLOADED, EngineCode.QUEUE_FULL, `${this.queued} requests are waiting for the write connection`));
    }
    this.queued++;
    const run = async (): Promise<T> => {
      try {
        this.ready();
        return await fn(this.writer!);
      } finally {
        this.queued--;
      }
    };
    const p = this.writeChain.then(run, run);
    this.writeChain = p.catch(() => undefined);
    return p;
  }

  ready(): void {
    if (this.failure !== null) throw new SqlEngineError(ErrorCode.UNHEALTHY, EngineCode.UNHEALTHY, `${this.describe()} is unhealthy: ${this.failure.reason}`);
    if (this.life.status !== 'open' || this.writer === null) throw new SqlEngineError(ErrorCode.INTERNAL, EngineCode.NOT_OPEN, `${this.describe()} engine is ${this.life.status}`);
  }

  misuse(message: string, engineCode: string = EngineCode.INTERNAL): SqlEngineError {
    return new SqlEngineError(ErrorCode.INTERNAL, this.life.status === 'open' || this.life.status === 'opening' ? engineCode : EngineCode.NOT_OPEN, `mysql engine: ${message}`);
  }

  private openError(e: unknown): unknown {
    if (e instanceof SqlEngineError || e instanceof ConfigError) return e;
    const kind = classifyMysqlError(e);
    const what = `${errorCodeOf(e)}: ${errorMessageOf(e)}`;
    if (kind === 'connection') return new SqlEngineError(ErrorCode.UNHEALTHY, EngineCode.UNHEALTHY, `cannot open ${this.describe()}: ${what}`);
    return new SqlEngineError(ErrorCode.UNHEALTHY, errorCodeOf(e), `cannot open ${this.describe()}: ${what}`);
  }

  /**
   * The connection to the server is gone (or must be given up). The engine is unhealthy until a probe
   * reconnects; if a batch was open it is lost, and only close() + open() recovers (so the caller
   * learns that its batch is gone). Returns the error to throw.
   */
  lose(conn: Connection | null, reason: string, engineCode: string, reopen: boolean): SqlEngineError {
    const err = new SqlEngineError(ErrorCode.UNHEALTHY, engineCode, `${this.describe()} is unhealthy: ${reason}`);
    if (conn !== null && conn !== this.writer) return err; // a connection we already gave up on
    const lostBatch = this.batchOpen;
    this.batchOpen = false;
    const w = this.writer;
    this.writer = null;
    if (w) destroyConnection(w);
    if (this.failure === null) this.failure = { reason, engineCode, reopen: reopen || lostBatch };
    else if (reopen || lostBatch) this.failure.reopen = true;
    if (lostBatch) this.failure = { ...this.failure, reason: `${reason}; the open batch was lost (close() and open() the engine)` };
    this.scheduleProbe();
    return err;
  }

  /** A failure the engine cannot recover from by itself: unhealthy until close() + open(). */
  markFatal(reason: string, engineCode: string): SqlEngineError {
    const w = this.writer;
    this.writer = null;
    this.batchOpen = false;
    if (w) destroyConnection(w);
    if (this.failure === null) this.failure = { reason: `${reason} (close() and open() the engine)`, engineCode, reopen: true };
    else this.failure.reopen = true;
    this.stopProbe();
    return new SqlEngineError(ErrorCode.UNHEALTHY, engineCode, `${this.describe()} is unhealthy: ${reason}`);
  }

  private scheduleProbe(): void {
    if (this.probeTimer !== null || this.life.status !== 'open' || this.failure === null || this.failure.reopen) return;
    this.probeTimer = setTimeout(() => void this.probe(), this.s.reconnectIntervalMs);
    this.probeTimer.unref();
  }

  private stopProbe(): void {
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    this.probeTimer = null;
  }

  /** Reconnects after a lost connection: a new write connection, the fencing row re-read (`recover`). */
  private async probe(): Promise<void> {
    this.probeTimer = null;
    if (this.life.status !== 'open' || this.failure === null || this.failure.reopen) return;
    let w: Connection | null = null;
    try {
      w = await this.connect(true);
      const fence = await this.recover(w);
      if (this.life.status !== 'open' || this.failure === null || this.failure.reopen) {
        destroyConnection(w);
        return;
      }
      this.writer = w;
      this.watchWriter(w);
      this.state = fence;
      this.failure = null;
    } catch {
      if (w) destroyConnection(w);
      this.scheduleProbe();
    }
  }

  /**
   * Cleans up after a write failed with something that is not a statement error, and returns the error
   * to throw. `mode`: what to undo (the whole transaction, or the current command's savepoint).
   */
  async afterWriteError(w: Connection, err: unknown, mode: 'rollback' | 'savepoint'): Promise<unknown> {
    if (err instanceof SqlEngineError) {
      if (this.failure === null && err.code !== ErrorCode.UNHEALTHY) await this.tryRollback(w, mode);
      return err;
    }
    const kind = classifyMysqlError(err);
    const what = kind === 'other' ? (err instanceof Error ? err.message : String(err)) : `${errorCodeOf(err)}: ${errorMessageOf(err)}`;
    if (kind === 'connection') return this.lose(w, `the database connection failed: ${what}`, EngineCode.UNHEALTHY, false);
    // An environment error (lock wait timeout, deadlock, disk full, ...) or a failing fault hook.
    const hadBatch = this.batchOpen;
    const undone = await this.tryRollback(w, mode);
    if (!undone) return this.lose(w, `could not roll back after ${what}`, EngineCode.UNHEALTHY, false);
    if (hadBatch && !this.batchOpen) return this.markFatal(`the batch was rolled back after ${what}`, EngineCode.UNHEALTHY);
    if (kind === 'environment') {
      const { code: engineCode, message: _message, ...numbers } = serverErrorOf(err);
      return new SqlEngineError(ErrorCode.SQL_ERROR, engineCode, `${what} (nothing was applied; retry)`, { ...numbers, cause: err });
    }
    return new SqlEngineError(ErrorCode.INTERNAL, EngineCode.INTERNAL, `write failed: ${what}`);
  }

  /** Undoes the open transaction (or the command's savepoint); false when that failed. */
  private async tryRollback(w: Connection, mode: 'rollback' | 'savepoint'): Promise<boolean> {
    try {
      if (mode === 'savepoint' && this.batchOpen) {
        await query(w, 'ROLLBACK TO SAVEPOINT replisql_cmd');
        await query(w, 'RELEASE SAVEPOINT replisql_cmd');
      } else {
        await query(w, 'ROLLBACK');
        this.batchOpen = false;
      }
      return true;
    } catch (e) {
      if (mode === 'savepoint' && classifyMysqlError(e) === 'statement') {
        // The savepoint is gone: the server rolled back the whole transaction (a deadlock does that).
        await query(w, 'ROLLBACK').catch(() => undefined);
        this.markFatal('the batch was rolled back by the server (deadlock or similar); it is lost', EngineCode.UNHEALTHY);
      }
      return false;
    }
  }
}
