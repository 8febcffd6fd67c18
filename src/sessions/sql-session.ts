// One client session on a node (a MySQL connection, or a JSON client using transactions).
//
//   - reads outside a transaction run on this node's database, after this node has applied the
//     session's own last write (read-your-writes);
//   - writes outside a transaction (autocommit) go through the ordinary write path, one statement
//     per log entry;
//   - BEGIN ... COMMIT: every statement of the transaction, reads included, runs on the coordinator
//     in a database transaction of its own (src/shell/write-executor.ts); COMMIT travels the write
//     path and logs the transaction's writes as one entry. If the coordinator changes meanwhile the
//     transaction is rolled back and the client gets TRANSACTION_ABORTED (MySQL error 1213, which
//     drivers retry); a COMMIT whose fate is unknown is reported as UNKNOWN_OUTCOME, never as done.
//   - SET, USE and `SELECT @@var` are answered here (see session-statements.ts).
// docs/transactions.md explains the choices.
import { randomBytes } from 'node:crypto';
import { ErrorCode, errorInfo, sqlErrorInfo, statementErrorInfo, toErrorInfo, type ErrorInfo } from '../errors.js';
import type { AckLevel, NodeId, Outcome } from '../core/types.js';
import type { MysqlSessionPort, SessionOutcome, SessionStatus } from './session-port.js';
import { classifyScript, SqlLexError, type ClassifiedStatement, type Dialect } from '../sql/index.js';
import { type ColumnType, type SqlValue, type Statement, type StatementDescription, type StatementResult } from '../storage/sql-engine.js';
import { encodeClientCommand, encodeTxnCommitCommand, type WriteResult } from '../apply/command.js';
import { MAX_STALENESS_VARIABLE, parseSessionStatement, parseSystemSelect, parseTransactionStatement, READ_CONSISTENCY_VARIABLE, WRITE_ACK_VARIABLE } from './session-statements.js';
import type { ReadBarrier, ReadLevel } from './read-levels.js';
import type { TxnStatementOutcome } from '../apply/write-executor.js';

/** What a session needs from its node (declared here, by its user). */
export interface SessionHost {
  readonly dialect: Dialect;
  /** The server version clients see (`SELECT VERSION()` on SQLite). */
  readonly serverVersion: string;
  readonly maxAllowedPacketBytes: number;
  isHealthy(): boolean;
  /** Read-only statements on this node's database. */
  read(statements: readonly Statement[]): Promise<StatementResult[]>;
  /** Prepares a statement on this node's database without running it (engine.describeStatement). */
  describe(sql: string): Promise<StatementDescription>;
  /**
   * A command on the write path (autocommit write or transaction commit); resolves with its outcome.
   * `requestId` is its idempotency key (one is made up when absent).
   */
  submitWrite(command: string, requestId?: string, ack?: AckLevel): Promise<Outcome>;
  /** The coordinator this node knows of, if any. */
  coordinator(): NodeId | null;
  /** Runs one statement of transaction `key` on coordinator `at`; `first` opens the transaction there. */
  txnExec(at: NodeId, key: string, first: boolean, sql: string, params: readonly SqlValue[]): Promise<TxnStatementOutcome>;
  /** Rolls back transaction `key` on coordinator `at` (best effort; an idle transaction is rolled back anyway). */
  txnRollback(at: NodeId, key: string): void;
  /** Resolves once this node's database has applied log index `index`. */
  waitApplied(index: number): Promise<void>;
  /** The node's read barrier (read consistency levels) and the configured default level. */
  readonly reads: ReadBarrier;
  readonly defaultReadLevel: ReadLevel;
  /** The node's configured write ack level (writeAck). */
  readonly defaultAck: AckLevel;
}

export interface SqlSessionOptions {
  readonly host: SessionHost;
  /** The database name clients use (MySQL's DATABASE()). */
  readonly database: string;
  readonly user: string;
  readonly connectionId: number;
}

interface OpenTransaction {
  readonly key: string;
  /** The coordinator the transaction runs on. */
  readonly at: NodeId;
  /** Whether the coordinator has opened it (the first statement did). */
  opened: boolean;
  /** Whether a write succeeded in it (a transaction without writes commits as a rollback). */
  wrote: boolean;
}

type StepResult = { readonly ok: true; readonly result: StatementResult } | { readonly ok: false; readonly error: ErrorInfo };

const OK_RESULT: StatementResult = { columns: [], rows: [], affectedRows: 0, lastInsertId: null };

export class SqlSession implements MysqlSessionPort {
  readonly database: string;
  private readonly host: SessionHost;
  private autocommit = true;
  /** Inside BEGIN ... COMMIT (or autocommit off with a statement run since the last commit). */
  private inTransaction = false;
  private txn: OpenTransaction | null = null;
  /** Log index of this session's last acknowledged write: local reads wait for it. */
  private lastWriteIndex = 0;
  private closed = false;
  /** Idempotency key of the statement running now, derived from the client's request id (JSON protocol). */
  private statementRequestId: string | undefined;
  /** The session's read level (SET SESSION replisql_read_consistency / _max_staleness_ms). */
  private readLevel: ReadLevel;
  /** A level for the request running now (the JSON protocol's per-request fields), over the session's. */
  private requestReadLevel: ReadLevel | null = null;
  /** The session's write ack level (SET SESSION replisql_write_ack); null: the node's default. */
  private writeAck: AckLevel | null = null;
  /** An ack level for the request running now (the JSON protocol's `ack`), over the session's. */
  private requestAck: AckLevel | null = null;

  constructor(private readonly opts: SqlSessionOptions) {
    this.host = opts.host;
    this.database = opts.database;
    this.readLevel = opts.host.defaultReadLevel;
  }

  /** The level reads of this session use now. */
  get currentReadLevel(): ReadLevel {
    return this.requestReadLevel ?? this.readLevel;
  }

  status(): SessionStatus {
    return { inTransaction: this.inTransaction, autocommit: this.autocommit };
  }

  useDatabase(name: string): ErrorInfo | null {
    if (name === this.database) return null;
    return unknownDatabase(name, this.database);
  }

  /**
   * `requestId` (JSON protocol): the client's idempotency key; the first statement's write uses it,
   * the n-th `<requestId>#<n>`, so a request re-sent after a lost connection is applied once.
   */
  async query(sql: string, opts: { readonly multiStatements: boolean; readonly requestId?: string; readonly readLevel?: ReadLevel; readonly ack?: AckLevel }): Promise<SessionOutcome> {
    this.requestReadLevel = opts.readLevel ?? null;
    this.requestAck = opts.ack ?? null;
    try {
      return await this.queryScript(sql, opts);
    } finally {
      this.requestReadLevel = null;
      this.requestAck = null;
    }
  }

  private currentAck(): AckLevel | undefined {
    return this.requestAck ?? this.writeAck ?? undefined;
  }

  private async queryScript(sql: string, opts: { readonly multiStatements: boolean; readonly requestId?: string }): Promise<SessionOutcome> {
    const script = this.classify(sql);
    if ('error' in script) return { results: [], error: script.error };
    if (script.statements.length > 1 && !opts.multiStatements) {
      return {
        results: [],
        error: parseError('the query holds several statements but multi-statements are off for this connection (CLIENT_MULTI_STATEMENTS)'),
      };
    }
    const results: StatementResult[] = [];
    for (const [n, st] of script.statements.entries()) {
      // The first statement uses the id itself, as the plain JSON path does for a whole request: a
      // one-statement write re-sent to a node where it takes that path is still recognised.
      this.statementRequestId = opts.requestId === undefined ? undefined : n === 0 ? opts.requestId : `${opts.requestId}#${n}`;
      const r = await this.run(st, []);
      if (!r.ok) return { results, error: r.error };
      results.push(r.result);
    }
    return { results, error: null };
  }

  async execute(sql: string, params: readonly SqlValue[], requestId?: string): Promise<SessionOutcome> {
    const script = this.classify(sql);
    if ('error' in script) return { results: [], error: script.error };
    if (script.statements.length !== 1) {
      return { results: [], error: parseError('a prepared statement must be exactly one SQL statement') };
    }
    this.statementRequestId = requestId;
    const r = await this.run(script.statements[0]!, params);
    return r.ok ? { results: [r.result], error: null } : { results: [], error: r.error };
  }

  async describe(sql: string): Promise<StatementDescription | ErrorInfo | null> {
    const script = this.classify(sql);
    if ('error' in script) return script.error;
    if (script.statements.length !== 1) return parseError('a prepared statement must be exactly one SQL statement');
    const st = script.statements[0]!;
    const kind = st.class.kind;
    if (kind === 'session') {
      const cmd = parseSessionStatement(st.sql, this.host.dialect);
      if (cmd.type === 'syntax-error') return parseError(cmd.message);
    }
    if (kind === 'transaction' || kind === 'session' || kind === 'empty') return { columns: [] };
    const system = parseSystemSelect(st.sql);
    if (system !== null) return { columns: system.map((i) => ({ name: i.label, type: null })) };
    // Inside a transaction the statement runs on the coordinator and may use what the transaction
    // created: let the protocol layer probe it through execute(), which runs there.
    if (this.inTransaction || !this.autocommit) return null;
    if (kind !== 'read' && this.host.dialect === 'mysql') {
      // The node's MySQL read connections are READ ONLY, and the server refuses to prepare a write
      // there; a write returns no rows (MariaDB's ... RETURNING aside, which reports its columns at execute).
      return { columns: [] };
    }
    try {
      // Read-your-writes for prepares too: the table may have been created by this session's last write.
      if (this.lastWriteIndex > 0) await this.host.waitApplied(this.lastWriteIndex);
      return await this.host.describe(st.sql);
    } catch (err) {
      return toErrorInfo(err);
    }
  }

  async reset(): Promise<void> {
    this.rollbackOpen();
    this.autocommit = true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.rollbackOpen();
  }

  // ------------------------------------------------------------------ one statement

  private classify(sql: string): { statements: readonly ClassifiedStatement[] } | { error: ErrorInfo } {
    try {
      const script = classifyScript(sql, { dialect: this.host.dialect });
      const statements = script.statements.filter((s) => s.class.kind !== 'empty');
      if (statements.length === 0) return { error: sqlErrorInfo({ engineCode: 'ER_EMPTY_QUERY' }, 'Query was empty') };
      return { statements };
    } catch (err) {
      if (err instanceof SqlLexError) return { error: parseError(err.message) };
      throw err;
    }
  }

  private async run(st: ClassifiedStatement, params: readonly SqlValue[]): Promise<StepResult> {
    switch (st.class.kind) {
      case 'transaction':
        return this.runTransactionControl(st.sql);
      case 'session':
        return this.runSessionStatement(st.sql);
      case 'read':
        return this.runRead(st, params);
      case 'write':
        return this.runWrite(st, params, false);
      case 'ddl':
        return this.runWrite(st, params, true);
      case 'empty':
        return { ok: true, result: OK_RESULT };
    }
  }

  private async runTransactionControl(sql: string): Promise<StepResult> {
    const cmd = parseTransactionStatement(sql, this.host.dialect);
    switch (cmd.type) {
      case 'begin': {
        // MySQL: BEGIN inside a transaction commits it first.
        if (this.inTransaction) {
          const c = await this.commit();
          if (!c.ok) return c;
        }
        this.inTransaction = true;
        return { ok: true, result: OK_RESULT };
      }
      case 'commit':
        return this.commit();
      case 'rollback':
        this.rollbackOpen();
        return { ok: true, result: OK_RESULT };
      case 'accept':
        return { ok: true, result: OK_RESULT };
      case 'refuse':
        return { ok: false, error: unsupported(cmd.message) };
    }
  }

  private async runSessionStatement(sql: string): Promise<StepResult> {
    const cmd = parseSessionStatement(sql, this.host.dialect);
    switch (cmd.type) {
      case 'use': {
        const err = this.useDatabase(cmd.database);
        return err === null ? { ok: true, result: OK_RESULT } : { ok: false, error: err };
      }
      case 'set':
        if (cmd.autocommit === true && !this.autocommit && this.inTransaction) {
          // MySQL: switching autocommit on commits the open transaction.
          const c = await this.commit();
          if (!c.ok) return c;
        }
        if (cmd.autocommit !== null) this.autocommit = cmd.autocommit;
        if (cmd.writeAck !== null) this.writeAck = cmd.writeAck;
        if (cmd.readConsistency !== null || cmd.maxStalenessMs !== null) {
          this.readLevel = { consistency: cmd.readConsistency ?? this.readLevel.consistency, maxStalenessMs: cmd.maxStalenessMs ?? this.readLevel.maxStalenessMs };
        }
        return { ok: true, result: OK_RESULT };
      case 'refuse':
        return { ok: false, error: unsupported(cmd.message) };
      case 'syntax-error':
        return { ok: false, error: parseError(cmd.message) };
    }
  }

  private async runRead(st: ClassifiedStatement, params: readonly SqlValue[]): Promise<StepResult> {
    const system = this.systemSelect(st.sql);
    if (system !== null) return system;
    if (this.inTransaction || !this.autocommit) return this.runInTransaction(st, params, false);
    if (!this.host.isHealthy()) return { ok: false, error: errorInfo(ErrorCode.UNHEALTHY, "this node's database is unavailable; try another node") };
    try {
      await this.host.reads.before(this.currentReadLevel, this.lastWriteIndex);
      const [result] = await this.host.read([params.length > 0 ? { sql: st.sql, params } : { sql: st.sql }]);
      return { ok: true, result: result ?? OK_RESULT };
    } catch (err) {
      return { ok: false, error: toErrorInfo(err) };
    }
  }

  private async runWrite(st: ClassifiedStatement, params: readonly SqlValue[], ddl: boolean): Promise<StepResult> {
    if (ddl && this.host.dialect === 'mysql') {
      // MySQL commits the open transaction before a schema change, which itself autocommits.
      if (this.inTransaction) {
        const c = await this.commit();
        if (!c.ok) return c;
      }
      return this.autocommitWrite(st.sql, params);
    }
    if (this.inTransaction || !this.autocommit) return this.runInTransaction(st, params, true);
    return this.autocommitWrite(st.sql, params);
  }

  private async autocommitWrite(sql: string, params: readonly SqlValue[]): Promise<StepResult> {
    const outcome = await this.host.submitWrite(encodeClientCommand(params.length > 0 ? { sql, params } : { sql }), this.statementRequestId, this.currentAck());
    if (!outcome.ok) return { ok: false, error: outcome.error };
    this.lastWriteIndex = Math.max(this.lastWriteIndex, outcome.index);
    const r = outcome.result as WriteResult | null;
    if (r === null || typeof r !== 'object') return { ok: true, result: OK_RESULT };
    if (!r.ok) return { ok: false, error: statementErrorInfo(r.error) };
    return { ok: true, result: r.results[0] ?? OK_RESULT };
  }

  private async runInTransaction(st: ClassifiedStatement, params: readonly SqlValue[], writes: boolean): Promise<StepResult> {
    this.inTransaction = true;
    if (this.txn === null) {
      const at = this.host.coordinator();
      if (at === null) {
        return { ok: false, error: errorInfo(ErrorCode.NO_COORDINATOR, 'no coordinator is known right now, so the transaction cannot run; retry shortly') };
      }
      this.txn = { key: `${this.opts.connectionId}-${randomBytes(8).toString('hex')}`, at, opened: false, wrote: false };
    }
    const t = this.txn;
    if (this.host.coordinator() !== t.at) {
      this.abandon(t);
      return { ok: false, error: errorInfo(ErrorCode.TRANSACTION_ABORTED, `the coordinator changed during the transaction (was node ${t.at}); it was rolled back`) };
    }
    let r: TxnStatementOutcome;
    try {
      r = await this.host.txnExec(t.at, t.key, !t.opened, st.sql, params);
    } catch (err) {
      this.abandon(t);
      return { ok: false, error: errorInfo(ErrorCode.TRANSACTION_ABORTED, `the transaction was rolled back: ${(err as Error).message}`) };
    }
    if (r.ok) {
      t.opened = true;
      if (writes) t.wrote = true;
      return { ok: true, result: r.result };
    }
    if (r.aborted) {
      this.abandon(t);
      return { ok: false, error: asTransactionAbort(r.error) };
    }
    t.opened = true;
    return { ok: false, error: r.error };
  }

  private async commit(): Promise<StepResult> {
    const t = this.txn;
    this.txn = null;
    this.inTransaction = false;
    if (t === null) return { ok: true, result: OK_RESULT };
    if (!t.wrote) {
      // Nothing to log: a read-only transaction ends like a rollback.
      if (t.opened) this.host.txnRollback(t.at, t.key);
      return { ok: true, result: OK_RESULT };
    }
    const outcome = await this.host.submitWrite(encodeTxnCommitCommand(t.key), this.statementRequestId, this.currentAck());
    if (!outcome.ok) {
      const code = outcome.error.code;
      // A definite refusal leaves the transaction open on the coordinator until it idles out: end it now.
      if (code === ErrorCode.NO_QUORUM || code === ErrorCode.NO_COORDINATOR || code === ErrorCode.OVERLOADED) this.host.txnRollback(t.at, t.key);
      const error: ErrorInfo =
        code === ErrorCode.UNKNOWN_OUTCOME || code === ErrorCode.TRANSACTION_ABORTED
          ? outcome.error
          : { ...outcome.error, message: `COMMIT failed and the transaction was rolled back: ${outcome.error.message}` };
      return { ok: false, error };
    }
    this.lastWriteIndex = Math.max(this.lastWriteIndex, outcome.index);
    return { ok: true, result: OK_RESULT };
  }

  /** Rolls back whatever transaction is open (ROLLBACK, connection closed or reset). */
  private rollbackOpen(): void {
    const t = this.txn;
    this.txn = null;
    this.inTransaction = false;
    if (t !== null && t.opened) this.host.txnRollback(t.at, t.key);
  }

  /** The transaction is gone (aborted on the coordinator or unreachable): leave it, rolling back best effort. */
  private abandon(t: OpenTransaction): void {
    if (this.txn === t) this.txn = null;
    this.inTransaction = false;
    this.host.txnRollback(t.at, t.key);
  }

  // ------------------------------------------------------------------ SELECT @@var

  /**
   * Answers `SELECT @@var, DATABASE() ...` itself: always on SQLite (which has no system variables),
   * and on MySQL for the values that belong to this session rather than to the database connection
   * the node happens to use (@@autocommit, @@in_transaction).
   */
  private systemSelect(sql: string): StepResult | null {
    const items = parseSystemSelect(sql);
    if (items === null) return null;
    const sessionOwned = new Set(['autocommit', 'in_transaction', READ_CONSISTENCY_VARIABLE, MAX_STALENESS_VARIABLE, WRITE_ACK_VARIABLE]);
    if (this.host.dialect === 'mysql' && !items.every((i) => sessionOwned.has(i.name))) return null;
    const row: unknown[] = [];
    const types: ColumnType[] = [];
    for (const item of items) {
      const v = this.systemValue(item.name);
      if (v === undefined) {
        return { ok: false, error: sqlErrorInfo({ engineCode: 'ER_UNKNOWN_SYSTEM_VARIABLE' }, `Unknown system variable '${item.name}'`) };
      }
      row.push(v);
      types.push(typeof v === 'number' ? 'int' : 'text');
    }
    return { ok: true, result: { columns: items.map((i) => i.label), columnTypes: types, rows: [row], affectedRows: 0, lastInsertId: null } };
  }

  private systemValue(name: string): string | number | undefined {
    switch (name) {
      case 'autocommit':
        return this.autocommit ? 1 : 0;
      case 'in_transaction':
        return this.inTransaction ? 1 : 0;
      case READ_CONSISTENCY_VARIABLE:
        return this.currentReadLevel.consistency;
      case MAX_STALENESS_VARIABLE:
        return this.currentReadLevel.maxStalenessMs;
      case WRITE_ACK_VARIABLE:
        return this.currentAck() ?? this.host.defaultAck;
      case 'version':
      case 'version()':
        return this.host.serverVersion;
      case 'version_comment':
        return `replisql (${this.host.dialect === 'sqlite' ? 'SQLite' : 'MySQL'} storage)`;
      case 'database()':
      case 'schema()':
        return this.database;
      case 'connection_id()':
        return this.opts.connectionId;
      case 'user()':
      case 'current_user()':
      case 'session_user()':
      case 'system_user()':
        return `${this.opts.user}@%`;
      case 'max_allowed_packet':
        return this.host.maxAllowedPacketBytes;
      case 'transaction_isolation':
      case 'tx_isolation':
        return 'SERIALIZABLE';
      case 'transaction_read_only':
      case 'tx_read_only':
      case 'read_only':
      case 'lower_case_table_names':
        return 0;
      case 'auto_increment_increment':
        return 1;
      case 'character_set_client':
      case 'character_set_connection':
      case 'character_set_results':
      case 'character_set_database':
      case 'character_set_server':
        return 'utf8mb4';
      case 'collation_connection':
      case 'collation_database':
      case 'collation_server':
        return 'utf8mb4_general_ci';
      case 'sql_mode':
        return '';
      case 'time_zone':
      case 'system_time_zone':
        return 'UTC';
      case 'wait_timeout':
      case 'interactive_timeout':
        return 28800;
      case 'net_write_timeout':
        return 60;
      case 'sql_select_limit':
        return '18446744073709551615';
      default:
        return undefined;
    }
  }
}

function unsupported(message: string): ErrorInfo {
  return errorInfo(ErrorCode.UNSAFE_STATEMENT, message);
}

/** MySQL's "You have an error in your SQL syntax" for what the session itself cannot parse. */
function parseError(message: string): ErrorInfo {
  return sqlErrorInfo({ engineCode: 'ER_PARSE_ERROR' }, message);
}

/** A failure inside a transaction that ended it: reported as TRANSACTION_ABORTED unless it says more already. */
function asTransactionAbort(e: ErrorInfo): ErrorInfo {
  if (e.code === ErrorCode.TRANSACTION_ABORTED || e.code === ErrorCode.UNHEALTHY || e.code === ErrorCode.OVERLOADED) return e;
  return errorInfo(ErrorCode.TRANSACTION_ABORTED, `the transaction was rolled back: ${e.message}`);
}

/** MySQL's "Unknown database" for a database other than the one this node serves. */
export function unknownDatabase(name: string, served: string): ErrorInfo {
  return sqlErrorInfo({ engineCode: 'ER_BAD_DB_ERROR' }, `Unknown database '${name}' (this node serves '${served}')`);
}
