// The JSON client protocol of a node (docs/client-protocol.md): QUERY, STATUS, PING.
// Reads run on this node's database; anything that writes goes to the core, which forwards it
// to the coordinator. Every request is validated and bounded; a bad one gets an ERROR frame and
// the connection (and the node) keep going.
import { ErrorCode, errorInfo, statementErrorInfo, toErrorInfo, type ErrorInfo } from '../../errors.js';
import { ACK_LEVELS, type AckLevel, type Outcome } from '../../core/types.js';
import { classifyScript } from '../../sql/index.js';
import type { SqlEngine, SqlValue, Statement, StatementResult } from '../../storage/sql-engine.js';
import { encodeClientCommand, type WriteResult } from '../../apply/command.js';
import type { FramedConnection } from '../../net/listener.js';
import { LogRateLimiter, type Logger } from '../../util/logger-port.js';
import type { SqlSession } from '../../sessions/sql-session.js';
import { readLevelOf, type ReadBarrier, type ReadLevel } from '../../sessions/read-levels.js';

export interface ClientServerOptions {
  readonly engine: SqlEngine;
  readonly logger: Logger;
  /** Submits a write; `ack` is the request's own ack level (the node's default when absent). */
  readonly submitWrite: (requestId: string, command: string, ack: AckLevel | undefined) => void;
  readonly status: () => Record<string, unknown>;
  readonly isHealthy: () => boolean;
  readonly maxSqlBytes: number;
  readonly maxParams?: number;
  readonly maxWaitingWrites?: number;
  /** SQL dialect used to classify statements (reads vs writes). */
  readonly dialect?: 'sqlite' | 'mysql';
  /**
   * A session for a connection that uses transactions (BEGIN ... COMMIT), SET or USE; such
   * requests run through it, one at a time per connection (src/shell/sql-session.ts).
   */
  readonly createSession?: () => SqlSession;
  /** Read consistency levels (docs/consistency.md); without them every read is `local`. */
  readonly reads?: { readonly barrier: ReadBarrier; readonly defaultLevel: ReadLevel };
}

/** A connection's session and the tail of its request chain (its requests run in order). */
interface ConnectionSession {
  readonly session: SqlSession;
  tail: Promise<void>;
}

/** Reads without a barrier (a server built without read levels). */
const LOCAL: ReadLevel = { consistency: 'local', maxStalenessMs: 0 };

const MAX_ID_LENGTH = 200;
/** At most one "refused a request" log line per client connection per this interval. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

export class ClientServer {
  /** requestId -> the connections waiting for its outcome. */
  private readonly waiting = new Map<string, Set<FramedConnection>>();
  private readonly conns = new Set<FramedConnection>();
  private readonly sessions = new Map<FramedConnection, ConnectionSession>();
  private readonly refusalLog = new LogRateLimiter(REFUSAL_LOG_INTERVAL_MS);

  constructor(private readonly opts: ClientServerOptions) {}

  accept(firstFrame: unknown, conn: FramedConnection): void {
    this.conns.add(conn);
    conn.onClose(() => {
      this.conns.delete(conn);
      this.sessions.get(conn)?.session.close();
      this.sessions.delete(conn);
      for (const [id, set] of this.waiting) {
        set.delete(conn);
        if (set.size === 0) this.waiting.delete(id);
      }
    });
    conn.onFrame((frame) => this.onFrame(conn, frame));
    this.onFrame(conn, firstFrame);
  }

  close(): void {
    for (const c of this.conns) c.destroy('node stopping');
    this.conns.clear();
    for (const s of this.sessions.values()) s.session.close();
    this.sessions.clear();
    this.waiting.clear();
  }

  /** The core answered a write. */
  complete(requestId: string, outcome: Outcome): void {
    const conns = this.waiting.get(requestId);
    if (!conns) return;
    this.waiting.delete(requestId);
    const frame = outcomeToFrame(requestId, outcome);
    for (const c of conns) c.send(frame);
  }

  private onFrame(conn: FramedConnection, frame: unknown): void {
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
      this.refuse(conn, null, 'a request must be a JSON object with a "type"');
      return;
    }
    const f = frame as Record<string, unknown>;
    const id = f['id'];
    if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) {
      this.refuse(conn, null, `"id" must be a non-empty string of at most ${MAX_ID_LENGTH} characters`);
      return;
    }
    switch (f['type']) {
      case 'PING':
        conn.send({ type: 'PONG', id });
        return;
      case 'STATUS':
        conn.send({ type: 'STATUS', id, status: this.opts.status() });
        return;
      case 'QUERY':
        this.onQuery(conn, id, f);
        return;
      default:
        this.refuse(conn, id, `unknown request type ${preview(f['type'])}; expected QUERY, STATUS or PING`);
    }
  }

  private onQuery(conn: FramedConnection, id: string, f: Record<string, unknown>): void {
    const sql = f['sql'];
    if (typeof sql !== 'string' || sql.trim().length === 0) {
      this.refuse(conn, id, '"sql" must be a non-empty string');
      return;
    }
    if (Buffer.byteLength(sql) > this.opts.maxSqlBytes) {
      this.refuse(conn, id, `"sql" is longer than ${this.opts.maxSqlBytes} bytes`);
      return;
    }
    const params = validateParams(f['params'], this.opts.maxParams ?? 10_000);
    if (typeof params === 'string') {
      this.refuse(conn, id, params);
      return;
    }
    const ack = f['ack'];
    if (ack !== undefined && !(ACK_LEVELS as readonly unknown[]).includes(ack)) {
      this.refuse(conn, id, `unknown ack level ${preview(ack)} in "ack": expected one of ${ACK_LEVELS.join(', ')}`);
      return;
    }
    const named = f['consistency'] !== undefined || f['maxStalenessMs'] !== undefined;
    const level = readLevelOf({ consistency: f['consistency'], maxStalenessMs: f['maxStalenessMs'] }, this.opts.reads?.defaultLevel ?? LOCAL);
    if (typeof level === 'string') {
      this.refuse(conn, id, level);
      return;
    }
    let script;
    try {
      script = classifyScript(sql, { dialect: this.opts.dialect ?? 'sqlite' });
    } catch (err) {
      conn.send(errorFrame(id, toErrorInfo(err, ErrorCode.BAD_REQUEST)));
      return;
    }
    if (script.statements.length === 0) {
      conn.send(errorFrame(id, errorInfo(ErrorCode.BAD_REQUEST, 'no SQL statement in "sql" (only comments or semicolons)')));
      return;
    }
    if (params.length > 0 && script.statements.length > 1) {
      conn.send(errorFrame(id, errorInfo(ErrorCode.BAD_REQUEST, '"params" can only be used with a single statement')));
      return;
    }
    // Once a connection has a session, all its requests run in it, in order: its reads then see its
    // own writes (the session waits until this node has applied them).
    const needsSession = this.sessions.has(conn) || script.statements.some((s) => s.class.kind === 'session' || s.class.kind === 'transaction');
    if (needsSession) {
      this.runInSession(conn, id, sql, params, named ? level : undefined, ack as AckLevel | undefined);
      return;
    }
    this.onPlainQuery(conn, id, sql, params, script, level, ack as AckLevel | undefined);
  }

  /**
   * A request with transaction control, SET or USE, or sent inside a transaction: runs in the
   * connection's session, after the connection's earlier session requests.
   */
  private runInSession(conn: FramedConnection, id: string, sql: string, params: SqlValue[], readLevel: ReadLevel | undefined, ack: AckLevel | undefined): void {
    const create = this.opts.createSession;
    if (create === undefined) {
      conn.send(errorFrame(id, errorInfo(ErrorCode.UNSAFE_STATEMENT, 'transactions and session statements are not available on this server')));
      return;
    }
    let cs = this.sessions.get(conn);
    if (cs === undefined) {
      cs = { session: create(), tail: Promise.resolve() };
      this.sessions.set(conn, cs);
    }
    const session = cs.session;
    const task = async (): Promise<void> => {
      const outcome = params.length > 0 ? await session.execute(sql, params, id) : await session.query(sql, { multiStatements: true, requestId: id, ...(readLevel === undefined ? {} : { readLevel }), ...(ack === undefined ? {} : { ack }) });
      const inTransaction = session.status().inTransaction;
      if (outcome.error !== null) conn.send({ ...errorFrame(id, outcome.error), transaction: inTransaction });
      else conn.send({ ...resultFrame(id, outcome.results, false), transaction: inTransaction });
    };
    cs.tail = cs.tail.then(task).catch((err: unknown) => {
      conn.send(errorFrame(id, toErrorInfo(err, ErrorCode.INTERNAL)));
    });
  }

  private onPlainQuery(conn: FramedConnection, id: string, sql: string, params: SqlValue[], script: ReturnType<typeof classifyScript>, level: ReadLevel, ack: AckLevel | undefined): void {
    if (!this.opts.isHealthy()) {
      conn.send(errorFrame(id, errorInfo(ErrorCode.UNHEALTHY, 'this node\'s database is unavailable; try another node')));
      return;
    }
    if (!script.isWrite) {
      const statements: Statement[] = script.statements.map((s) => (params.length > 0 ? { sql: s.sql, params } : { sql: s.sql }));
      const barrier = this.opts.reads?.barrier;
      (barrier === undefined ? this.opts.engine.read(statements) : barrier.before(level, 0).then(() => this.opts.engine.read(statements))).then(
        (results) => conn.send(resultFrame(id, results, false)),
        (err: unknown) => conn.send(errorFrame(id, toErrorInfo(err))),
      );
      return;
    }
    if (this.waiting.size >= (this.opts.maxWaitingWrites ?? 10_000) && !this.waiting.has(id)) {
      conn.send(errorFrame(id, errorInfo(ErrorCode.OVERLOADED, 'too many writes are waiting on this node; retry later')));
      return;
    }
    let set = this.waiting.get(id);
    if (!set) {
      set = new Set();
      this.waiting.set(id, set);
    }
    set.add(conn);
    this.opts.submitWrite(id, encodeClientCommand(params.length > 0 ? { sql, params } : { sql }), ack);
  }

  /** A malformed request: answered with BAD_REQUEST and logged (rate-limited per connection). */
  private refuse(conn: FramedConnection, id: string | null, message: string): void {
    const suppressed = this.refusalLog.take(conn.remote);
    if (suppressed !== null) {
      this.opts.logger.warn(
        { event: 'request-refused', remote: conn.remote, id, reason: message, ...(suppressed > 0 ? { suppressed } : {}) },
        `refused a request from client ${conn.remote}: ${message}`,
      );
    }
    conn.send(errorFrame(id, errorInfo(ErrorCode.BAD_REQUEST, message)));
  }
}

/** A short, bounded rendering of an untrusted value for messages. */
function preview(v: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = typeof v;
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function validateParams(v: unknown, max: number): SqlValue[] | string {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return '"params" must be an array';
  if (v.length > max) return `"params" has more than ${max} values`;
  for (const [i, p] of v.entries()) {
    const ok =
      p === null ||
      typeof p === 'string' ||
      typeof p === 'boolean' ||
      (typeof p === 'number' && Number.isFinite(p)) ||
      (typeof p === 'object' && p !== null && typeof (p as { $blob?: unknown }).$blob === 'string' && Object.keys(p).length === 1);
    if (!ok) return `params[${i}] must be null, a finite number, a string, a boolean or {"$blob": base64}`;
  }
  return v as SqlValue[];
}

function resultFrame(id: string, results: readonly StatementResult[], duplicate: boolean): object {
  return {
    type: 'RESULT',
    id,
    results: results.map((r) => ({ columns: r.columns, rows: r.rows, affectedRows: r.affectedRows, lastInsertId: r.lastInsertId })),
    duplicate,
  };
}

function errorFrame(id: string | null, error: ErrorInfo): object {
  return { type: 'ERROR', id, error };
}

export function outcomeToFrame(id: string, outcome: Outcome): object {
  if (!outcome.ok) return errorFrame(id, outcome.error);
  const r = outcome.result as WriteResult | null;
  if (r === null || typeof r !== 'object') return resultFrame(id, [], outcome.duplicate);
  if (!r.ok) return errorFrame(id, statementErrorInfo(r.error));
  return resultFrame(id, r.results, outcome.duplicate);
}



