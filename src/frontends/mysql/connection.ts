// One client connection: the connection phase (greeting, handshake response, authentication) and
// then the command phase, strictly one command at a time. What arrives while a command runs is
// queued (bounded: the socket is paused when the queue is full). A malformed packet gets an ERR that
// names what was wrong; nothing a client sends can throw out of this class.
import type { Socket } from 'node:net';
import type { Logger, LogRateLimiter } from '../../util/logger-port.js';
import { SqlLexError } from '../../sql/index.js';
import { verifyPassword, type MysqlUser } from './auth.js';
import { Capability, Command, ErrorNumber, SERVER_CAPABILITIES, SetOption } from './constants.js';
import { errPacketOf } from './errors.js';
import {
  AuthPlugin,
  DEFAULT_HANDSHAKE_CHARSET,
  DEFAULT_HANDSHAKE_STATUS,
  decodeHandshakeResponse41,
  encodeAuthMoreData,
  encodeAuthSwitchRequest,
  encodeHandshakeV10,
} from './handshake.js';
import { PacketSplitter, ResponseWriter } from './packet.js';
import {
  countPlaceholders,
  decodeExecuteHeader,
  decodeExecuteParams,
  encodePrepareResponse,
  MAX_PARAMS_PER_STATEMENT,
  StatementRegistry,
} from './prepared.js';
import { planColumns, type ColumnPlan } from './columns.js';
import { describeSql } from './describe.js';
import {
  columnDefinitionOf,
  encodeColumnDefinition,
  encodeEof,
  encodeErr,
  encodeOk,
  encodeStatementResult,
  statusFlagsOf,
  type ErrPacket,
  type RowFormat,
} from './results.js';
import type { MysqlSessionPort, SessionOutcome } from '../../sessions/session-port.js';
import type { ErrorInfo } from '../../errors.js';
import { PayloadReader, PayloadWriter, ProtocolError } from './wire.js';

export interface SessionInfo {
  readonly user: string;
  readonly database: string | null;
  readonly remote: string;
  readonly connectionId: number;
}

export type CreateSession = (info: SessionInfo) => MysqlSessionPort | ErrorInfo;

export interface ConnectionConfig {
  readonly connectionId: number;
  readonly users: readonly MysqlUser[];
  readonly createSession: CreateSession;
  readonly logger: Logger;
  readonly logLimiter: LogRateLimiter;
  readonly serverVersion: string;
  readonly maxPacketBytes: number;
  readonly connectTimeoutMs: number;
  readonly waitTimeoutMs: number;
  readonly maxPreparedStatements: number;
  /** The plugin named in the greeting (what a client uses for its first auth response). */
  readonly defaultAuthPlugin: AuthPlugin;
  readonly scramble: Buffer;
}

/** A handshake response is small; anything larger is not a MySQL client. */
const MAX_HANDSHAKE_PACKET_BYTES = 64 * 1024;
/** Commands queued while one runs; beyond this the socket is paused. */
const MAX_QUEUED_MESSAGES = 64;
/** Flush a large result to the socket every this many bytes. */
const FLUSH_BYTES = 256 * 1024;

type Phase =
  | { readonly type: 'greeting' }
  | { readonly type: 'authSwitch'; readonly user: string; readonly database: string | null; readonly capabilities: number }
  | { readonly type: 'command'; readonly session: MysqlSessionPort }
  | { readonly type: 'closed' };

interface Message {
  readonly payload: Buffer;
  readonly lastSeq: number;
}

export class MysqlConnection {
  private phase: Phase = { type: 'greeting' };
  private capabilities = 0;
  private multiStatements = false;
  private readonly splitter: PacketSplitter;
  private readonly queue: Message[] = [];
  private busy = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly statements: StatementRegistry;
  private readonly remote: string;

  constructor(
    private readonly socket: Socket,
    private readonly cfg: ConnectionConfig,
    private readonly onClosed: () => void,
  ) {
    this.remote = socket.remoteAddress ?? 'unknown';
    this.splitter = new PacketSplitter(MAX_HANDSHAKE_PACKET_BYTES);
    this.statements = new StatementRegistry(cfg.maxPreparedStatements, cfg.maxPacketBytes);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
  }

  get id(): number {
    return this.cfg.connectionId;
  }

  /** Sends the greeting and starts the connect timeout. */
  start(): void {
    this.arm(this.cfg.connectTimeoutMs, 'handshake-timeout', `no handshake within ${this.cfg.connectTimeoutMs} ms`);
    const greeting = encodeHandshakeV10({
      serverVersion: this.cfg.serverVersion,
      connectionId: this.cfg.connectionId,
      scramble: this.cfg.scramble,
      capabilities: SERVER_CAPABILITIES,
      charset: DEFAULT_HANDSHAKE_CHARSET,
      statusFlags: DEFAULT_HANDSHAKE_STATUS,
      authPlugin: this.cfg.defaultAuthPlugin,
    });
    this.send(new ResponseWriter(0).add(greeting));
  }

  /** Sends an ERR instead of the greeting (e.g. too many connections) and closes. */
  refuse(err: ErrPacket): void {
    this.send(new ResponseWriter(0).add(encodeErr(err)));
    this.socket.end();
    this.close();
  }

  /** Closes the connection and its session. Idempotent. */
  close(): void {
    if (this.phase.type === 'closed') return;
    const prev = this.phase;
    this.phase = { type: 'closed' };
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
    this.statements.clear();
    if (prev.type === 'command') {
      try {
        prev.session.close();
      } catch (e) {
        this.cfg.logger.error({ connectionId: this.id, err: String(e) }, 'mysql session close failed');
      }
    }
    if (!this.socket.destroyed) this.socket.destroy();
    this.onClosed();
  }

  private arm(ms: number, key: string, why: string): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.logRefusal(key, why);
      this.close();
    }, ms);
    this.timer.unref();
  }

  private logRefusal(key: string, why: string, extra: object = {}): void {
    const suppressed = this.cfg.logLimiter.take(key);
    if (suppressed === null) return;
    this.cfg.logger.warn({ connectionId: this.id, remote: this.remote, suppressed, ...extra }, `mysql connection: ${why}`);
  }

  private onData(chunk: Buffer): void {
    if (this.phase.type === 'closed') return;
    for (const ev of this.splitter.push(chunk)) {
      if (ev.type === 'tooLarge') {
        const inHandshake = this.phase.type !== 'command';
        const message = inHandshake
          ? `malformed handshake: a packet of ${ev.announcedBytes} bytes (limit ${ev.maxPacketBytes}); is this a MySQL client?`
          : `Got a packet bigger than 'max_allowed_packet' bytes (${ev.announcedBytes} > ${ev.maxPacketBytes})`;
        this.logRefusal('packet-too-large', message);
        this.fail(new ProtocolError(message, inHandshake ? ErrorNumber.HANDSHAKE_ERROR : ErrorNumber.NET_PACKET_TOO_LARGE, '08S01', false), 1);
        return;
      }
      this.queue.push({ payload: ev.payload, lastSeq: ev.lastSeq });
    }
    if (this.queue.length >= MAX_QUEUED_MESSAGES) this.socket.pause();
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length > 0 && this.phase.type !== 'closed') {
        const msg = this.queue.shift()!;
        if (this.queue.length < MAX_QUEUED_MESSAGES / 2 && this.socket.isPaused()) this.socket.resume();
        await this.handle(msg);
      }
    } finally {
      this.busy = false;
    }
  }

  private async handle(msg: Message): Promise<void> {
    const seq = msg.lastSeq + 1;
    try {
      switch (this.phase.type) {
        case 'greeting':
          await this.onHandshakeResponse(msg.payload, seq);
          return;
        case 'authSwitch':
          await this.onAuthSwitchResponse(this.phase, msg.payload, seq);
          return;
        case 'command':
          if (this.timer !== null) clearTimeout(this.timer);
          await this.onCommand(this.phase.session, msg.payload, seq);
          if (this.phase.type === 'command') {
            this.arm(this.cfg.waitTimeoutMs, 'idle-timeout', `idle for ${this.cfg.waitTimeoutMs} ms (wait_timeout), closed`);
          }
          return;
        case 'closed':
          return;
      }
    } catch (e) {
      if (e instanceof ProtocolError) {
        if (!e.recoverable) this.logRefusal('malformed', e.message);
        this.fail(e, seq);
      } else if (e instanceof SqlLexError) {
        this.fail(new ProtocolError(e.message, ErrorNumber.PARSE_ERROR, '42000'), seq);
      } else {
        this.cfg.logger.error({ connectionId: this.id, err: e instanceof Error ? e.stack : String(e) }, 'mysql connection: internal error');
        this.fail(new ProtocolError(`internal error: ${e instanceof Error ? e.message : String(e)}`, ErrorNumber.UNKNOWN_ERROR, 'HY000'), seq);
      }
    }
  }

  /** Sends an ERR for `e`; closes when the stream cannot be trusted or the client is not in yet. */
  private fail(e: ProtocolError, seq: number): void {
    if (this.phase.type === 'closed') return;
    this.send(new ResponseWriter(seq).add(encodeErr({ errno: e.errno, sqlState: e.sqlState, message: e.message })));
    if (!e.recoverable || this.phase.type !== 'command') {
      this.socket.end();
      this.close();
    }
  }

  private send(w: ResponseWriter): void {
    if (this.phase.type === 'closed' && !this.socket.writable) return;
    const frames = w.drain();
    if (frames.length === 0 || this.socket.destroyed) return;
    this.socket.cork();
    for (const f of frames) this.socket.write(f);
    this.socket.uncork();
  }

  // ---- connection phase ----

  private async onHandshakeResponse(payload: Buffer, seq: number): Promise<void> {
    const resp = decodeHandshakeResponse41(payload);
    this.capabilities = (resp.capabilities & SERVER_CAPABILITIES) >>> 0;
    this.multiStatements = (this.capabilities & Capability.MULTI_STATEMENTS) !== 0;
    const plugin = resp.authPlugin;
    const canSwitch = (resp.capabilities & Capability.PLUGIN_AUTH) !== 0;
    if (plugin === AuthPlugin.NATIVE || plugin === AuthPlugin.CACHING_SHA2 || !canSwitch) {
      const used = plugin === AuthPlugin.CACHING_SHA2 ? AuthPlugin.CACHING_SHA2 : AuthPlugin.NATIVE;
      await this.finishAuth(resp.user, resp.database, used, resp.authResponse, seq);
      return;
    }
    this.phase = { type: 'authSwitch', user: resp.user, database: resp.database, capabilities: resp.capabilities };
    this.send(new ResponseWriter(seq).add(encodeAuthSwitchRequest(AuthPlugin.NATIVE, this.cfg.scramble)));
  }

  private async onAuthSwitchResponse(phase: Extract<Phase, { type: 'authSwitch' }>, payload: Buffer, seq: number): Promise<void> {
    await this.finishAuth(phase.user, phase.database, AuthPlugin.NATIVE, payload, seq);
  }

  private async finishAuth(user: string, database: string | null, plugin: AuthPlugin, response: Buffer, seq: number): Promise<void> {
    const w = new ResponseWriter(seq);
    if (!verifyPassword(this.cfg.users, user, plugin, this.cfg.scramble, response)) {
      const usingPassword = response.length > 0 && !(response.length === 1 && response[0] === 0);
      const message = `Access denied for user '${user}'@'${this.remote}' (using password: ${usingPassword ? 'YES' : 'NO'})`;
      this.logRefusal('access-denied', message, { user });
      this.send(w.add(encodeErr({ errno: ErrorNumber.ACCESS_DENIED, sqlState: '28000', message })));
      this.socket.end();
      this.close();
      return;
    }
    if (plugin === AuthPlugin.CACHING_SHA2) w.add(encodeAuthMoreData(Buffer.from([0x03])));
    const created = this.cfg.createSession({ user, database, remote: this.remote, connectionId: this.id });
    if (!isSession(created)) {
      this.logRefusal('session-refused', created.message, { user, code: created.code });
      this.send(w.add(encodeErr(errPacketOf(created))));
      this.socket.end();
      this.close();
      return;
    }
    if (this.phase.type === 'closed') {
      created.close();
      return;
    }
    this.phase = { type: 'command', session: created };
    this.splitter.setMaxPacketBytes(this.cfg.maxPacketBytes);
    this.send(w.add(this.ok(created, 0, 0)));
    this.arm(this.cfg.waitTimeoutMs, 'idle-timeout', `idle for ${this.cfg.waitTimeoutMs} ms (wait_timeout), closed`);
  }

  // ---- command phase ----

  private ok(session: MysqlSessionPort, affectedRows: number, lastInsertId: number | string): Buffer {
    return encodeOk({ affectedRows, lastInsertId, statusFlags: statusFlagsOf(session.status(), false), warnings: 0 });
  }

  private get deprecateEof(): boolean {
    return (this.capabilities & Capability.DEPRECATE_EOF) !== 0;
  }

  /** EOF, or under CLIENT_DEPRECATE_EOF the OK packet with an 0xFE header that replaces it. */
  private eofOrOk(session: MysqlSessionPort): Buffer {
    const statusFlags = statusFlagsOf(session.status(), false);
    return this.deprecateEof ? encodeOk({ affectedRows: 0, lastInsertId: 0, statusFlags, warnings: 0 }, 0xfe) : encodeEof(statusFlags);
  }

  private async onCommand(session: MysqlSessionPort, payload: Buffer, seq: number): Promise<void> {
    const r = new PayloadReader(payload);
    const command = r.u8('command byte');
    const w = new ResponseWriter(seq);
    switch (command) {
      case Command.QUIT:
        this.socket.end();
        this.close();
        return;
      case Command.PING:
        this.send(w.add(this.ok(session, 0, 0)));
        return;
      case Command.INIT_DB: {
        const err = session.useDatabase(r.rest().toString('utf8'));
        this.send(w.add(err === null ? this.ok(session, 0, 0) : encodeErr(errPacketOf(err))));
        return;
      }
      case Command.QUERY: {
        const sql = r.rest().toString('utf8');
        if (sql.trim() === '') throw new ProtocolError('Query was empty', 1065, '42000');
        const outcome = await session.query(sql, { multiStatements: this.multiStatements });
        this.sendOutcome(session, outcome, 'text', w);
        return;
      }
      case Command.FIELD_LIST:
        await this.fieldList(session, r, w);
        return;
      case Command.STATISTICS:
        this.send(w.add(Buffer.from(`Uptime: ${Math.floor(process.uptime())}  Threads: 1  Questions: 0  Slow queries: 0  Opens: 0  Open tables: 0  Queries per second avg: 0.000`)));
        return;
      case Command.STMT_PREPARE: {
        const sql = r.rest().toString('utf8');
        const paramCount = countPlaceholders(sql);
        if (paramCount > MAX_PARAMS_PER_STATEMENT) {
          throw new ProtocolError(`Prepared statement contains too many placeholders (${paramCount} > ${MAX_PARAMS_PER_STATEMENT})`, 1390, 'HY000');
        }
        this.statements.checkRoom();
        const columns = await this.describe(session, sql, paramCount);
        if (!Array.isArray(columns)) {
          this.send(w.add(encodeErr(errPacketOf(columns))));
          return;
        }
        const stmt = this.statements.add(sql, paramCount);
        for (const p of encodePrepareResponse(stmt, columns, session.database, this.deprecateEof)) w.add(p);
        this.send(w);
        return;
      }
      case Command.STMT_EXECUTE: {
        const header = decodeExecuteHeader(r);
        const stmt = this.statements.get(header.statementId, 'mysqld_stmt_execute');
        if (stmt.longDataError !== null) {
          const msg = stmt.longDataError;
          this.statements.resetLongData(stmt);
          throw new ProtocolError(msg, ErrorNumber.WRONG_ARGUMENTS, 'HY000');
        }
        const params = decodeExecuteParams(r, stmt);
        this.statements.resetLongData(stmt);
        const outcome = await session.execute(stmt.sql, params);
        this.sendOutcome(session, outcome, 'binary', w);
        return;
      }
      case Command.STMT_SEND_LONG_DATA: {
        const stmt = this.statements.find(r.u32('statement id'));
        const param = r.u16('parameter id');
        if (stmt !== null) this.statements.appendLongData(stmt, param, r.rest());
        return;
      }
      case Command.STMT_CLOSE:
        this.statements.close(r.u32('statement id'));
        return;
      case Command.STMT_RESET: {
        const stmt = this.statements.get(r.u32('statement id'), 'mysqld_stmt_reset');
        this.statements.resetLongData(stmt);
        this.send(w.add(this.ok(session, 0, 0)));
        return;
      }
      case Command.STMT_FETCH:
        throw new ProtocolError('cursors are not supported: COM_STMT_FETCH has no open cursor to read from', ErrorNumber.NOT_SUPPORTED_YET, '42000');
      case Command.SET_OPTION: {
        const option = r.u16('COM_SET_OPTION option');
        if (option !== SetOption.MULTI_STATEMENTS_ON && option !== SetOption.MULTI_STATEMENTS_OFF) {
          throw new ProtocolError(`COM_SET_OPTION: unknown option ${option}`, ErrorNumber.UNKNOWN_COM_ERROR, '08S01');
        }
        this.multiStatements = option === SetOption.MULTI_STATEMENTS_ON;
        this.send(w.add(this.eofOrOk(session)));
        return;
      }
      case Command.RESET_CONNECTION:
        await session.reset();
        this.statements.clear();
        this.multiStatements = (this.capabilities & Capability.MULTI_STATEMENTS) !== 0;
        this.send(w.add(this.ok(session, 0, 0)));
        return;
      case Command.CHANGE_USER:
        await this.changeUser(session, r, seq);
        return;
      default:
        throw new ProtocolError(`Unknown command 0x${command.toString(16).padStart(2, '0')}`, ErrorNumber.UNKNOWN_COM_ERROR, '08S01');
    }
  }

  /**
   * The result columns of a statement being prepared, or why it cannot be prepared: from the
   * session's describe() when it has one, else from a LIMIT 0 probe (describe.ts).
   */
  private async describe(session: MysqlSessionPort, sql: string, paramCount: number): Promise<ColumnPlan[] | ErrorInfo> {
    const d = session.describe === undefined ? null : await session.describe(sql);
    if (d !== null) {
      if ('code' in d) return d;
      return planColumns({
        columns: d.columns.map((c) => c.name),
        columnTypes: d.columns.map((c) => c.type ?? 'text'),
        rows: [],
        affectedRows: 0,
        lastInsertId: null,
      });
    }
    const probe = describeSql(sql);
    if (probe === null) return [];
    const outcome = await session.execute(probe, new Array<number>(paramCount).fill(0));
    if (outcome.error !== null) return outcome.error;
    const result = outcome.results[0];
    return result === undefined ? [] : planColumns(result);
  }

  /** Results in order, each but the last with MORE_RESULTS_EXISTS; an error ends the sequence. */
  private sendOutcome(session: MysqlSessionPort, outcome: SessionOutcome, format: RowFormat, w: ResponseWriter): void {
    const status = session.status();
    const n = outcome.results.length;
    for (let i = 0; i < n; i++) {
      const more = i < n - 1 || outcome.error !== null;
      encodeStatementResult(
        outcome.results[i]!,
        { format, deprecateEof: this.deprecateEof, statusFlags: statusFlagsOf(status, more), schema: session.database },
        (p) => {
          w.add(p);
          if (w.pendingBytes >= FLUSH_BYTES) this.send(w);
        },
      );
    }
    if (outcome.error !== null) w.add(encodeErr(errPacketOf(outcome.error)));
    else if (n === 0) w.add(this.ok(session, 0, 0));
    this.send(w);
  }

  private async fieldList(session: MysqlSessionPort, r: PayloadReader, w: ResponseWriter): Promise<void> {
    const table = r.nulOrEofString('table name');
    if (table === '') throw new ProtocolError('COM_FIELD_LIST: empty table name', ErrorNumber.WRONG_ARGUMENTS, 'HY000');
    const quoted = '`' + table.replaceAll('`', '``') + '`';
    const outcome = await session.query(`SELECT * FROM ${quoted} LIMIT 0`, { multiStatements: false });
    const result = outcome.results[0];
    if (outcome.error !== null || result === undefined) {
      this.send(w.add(encodeErr(outcome.error !== null ? errPacketOf(outcome.error) : { errno: 1146, sqlState: '42S02', message: `no such table: ${table}` })));
      return;
    }
    for (const plan of planColumns(result)) {
      // COM_FIELD_LIST definitions end with the column's default value (NULL here: unknown).
      const def = encodeColumnDefinition(columnDefinitionOf(plan, session.database, table));
      w.add(new PayloadWriter(def.length + 1).bytes(def).lenencNull().finish());
    }
    this.send(w.add(this.eofOrOk(session)));
  }

  private async changeUser(old: MysqlSessionPort, r: PayloadReader, seq: number): Promise<void> {
    const user = r.nulString('user name');
    const response = this.capabilities & Capability.SECURE_CONNECTION ? r.bytes(r.u8('auth response length'), 'auth response') : r.nulBytes('auth response');
    const database = r.atEnd() ? '' : r.nulOrEofString('database');
    if (r.remaining() >= 2) r.u16('character set');
    const plugin = this.capabilities & Capability.PLUGIN_AUTH && !r.atEnd() ? r.nulOrEofString('auth plugin name') : AuthPlugin.NATIVE;
    if (plugin !== AuthPlugin.NATIVE && plugin !== AuthPlugin.CACHING_SHA2) {
      throw new ProtocolError(`COM_CHANGE_USER with auth plugin '${plugin}' is not supported; use mysql_native_password`, ErrorNumber.NOT_SUPPORTED_YET, '42000', false);
    }
    // The old session ends whatever the outcome (MySQL closes the connection on a failed change).
    this.statements.clear();
    await old.reset();
    old.close();
    this.phase = { type: 'greeting' };
    await this.finishAuth(user, database === '' ? null : database, plugin, response, seq);
  }
}

function isSession(x: MysqlSessionPort | ErrorInfo): x is MysqlSessionPort {
  return typeof (x as MysqlSessionPort).query === 'function';
}
