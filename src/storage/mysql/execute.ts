// Write statements on the write connection, shared by follower applies and the coordinator's batch:
// plan() analyses an entry's or command's statements (refusals found before the server sees them),
// execWrite() runs one after the SET that pins its replay context and tells a deterministic statement
// error (data) from a failure (thrown); writeFence()/writePending() move the fencing row.
import type { Connection } from 'mysql2';
import { ErrorCode } from '../../errors.js';
import { EngineCode, type AppliedState, type Statement, type StatementContext, type StatementError, type StatementResult } from '../sql-engine.js';
import type { MysqlConnections } from './connections.js';
import { fenceUpdateSql, pendingUpdateSql, type PendingEntry } from './fence.js';
import {
  analyzeStatement,
  classifyMysqlError,
  contextSetSql,
  idForContext,
  StatementRefusal,
  unpinnableInsert,
  validateContext,
  type AnalyzedStatement,
  serverErrorOf,
} from './mysql-context.js';
import type { MysqlSettings } from './options.js';
import { columnTypesOf, query, rowsOf, runQuery, SERVER_STATUS_IN_TRANS, type QueryOutcome } from './query.js';

/** Errors after which MySQL has rolled back the whole transaction, not just the statement. */
export const TRANSACTION_ROLLBACK_ERRNOS: ReadonlySet<number> = new Set([1213, 1205]);

export interface Plan {
  readonly analyzed: AnalyzedStatement[];
  readonly contexts: (StatementContext | undefined)[];
  /** The first statement refused before reaching the server (the entry stops there). */
  readonly refusal: StatementError | null;
}

export type WriteOutcome =
  | { ok: true; result: StatementResult; insertId: number | string | null }
  | { ok: false; error: Omit<StatementError, 'statementIndex'> };

export class WriteStatements {
  constructor(
    private readonly s: MysqlSettings,
    private readonly conn: MysqlConnections,
  ) {}

  /** Analyses every statement of an entry or command; stops at the first refusal. */
  plan(statements: readonly Statement[], mode: 'write'): Plan {
    if (!Array.isArray(statements)) throw this.conn.misuse('statements must be an array', EngineCode.INVALID_STATEMENT);
    const analyzed: AnalyzedStatement[] = [];
    const contexts: (StatementContext | undefined)[] = [];
    for (let i = 0; i < statements.length; i++) {
      try {
        const st = statements[i]!;
        analyzed.push(analyzeStatement(st, mode, this.s.lex));
        contexts.push(validateContext((st as Statement | null)?.context));
      } catch (e) {
        if (e instanceof StatementRefusal) {
          analyzed.length = i;
          contexts.length = i;
          return { analyzed, contexts, refusal: { code: e.code, message: e.message, statementIndex: i } };
        }
        throw e;
      }
    }
    const bad = unpinnableInsert(analyzed);
    if (bad >= 0) {
      const target = analyzed[bad]!.insertTarget;
      analyzed.length = bad;
      contexts.length = bad;
      return {
        analyzed,
        contexts,
        refusal: {
          code: ErrorCode.UNSAFE_STATEMENT,
          message: `in a request with a schema change, rows may only be inserted into tables created by that request (${target === '' ? 'this INSERT' : `\`${target}\``} is not): its AUTO_INCREMENT ids could not be pinned; send the INSERT as a request of its own`,
          statementIndex: bad,
        },
      };
    }
    return { analyzed, contexts, refusal: null };
  }

  /**
   * Runs one write statement after the SET that pins its context. A server error that is deterministic
   * comes back as data; anything else throws.
   */
  async execWrite(
    w: Connection,
    a: AnalyzedStatement,
    ctx: StatementContext | undefined,
    inTransaction: boolean,
    record = false,
  ): Promise<WriteOutcome> {
    const preLastId = a.insertReturning ? (ctx?.lastInsertId ?? 0) : undefined;
    await query(w, contextSetSql(ctx, preLastId));
    let out: QueryOutcome;
    try {
      out = await runQuery(w, a.text, { timeoutMs: a.kind === 'ddl' ? 0 : this.s.writeTimeoutMs, maxRows: this.s.maxResultRows });
    } catch (err) {
      if (classifyMysqlError(err) !== 'statement') throw err;
      return { ok: false, error: serverErrorOf(err) };
    }
    if (out.kind === 'ok') {
      if (a.orderSensitive !== null && out.affectedRows > 1) {
        // Undone by the caller (savepoint or transaction rollback), like any statement error.
        return {
          ok: false,
          error: {
            code: ErrorCode.UNSAFE_STATEMENT,
            message: `${a.orderSensitive} cannot be replicated: replicas may visit the rows in a different order; add ORDER BY on a unique key`,
          },
        };
      }
      if (inTransaction && (out.serverStatus & SERVER_STATUS_IN_TRANS) === 0) {
        throw this.conn.markFatal(`statement ${JSON.stringify(a.text.slice(0, 80))} ended the engine's transaction; atomicity with the fencing row is lost`, EngineCode.TRANSACTION_ESCAPED);
      }
      let insertId = a.kind === 'dml' ? idForContext(out.insertId) : null;
      if (insertId !== null && record) {
        // The OK packet also reports an explicitly given id, or the id of a row ON DUPLICATE KEY UPDATE
        // changed; only a generated one moves LAST_INSERT_ID(). Pinning a value nothing generated would
        // leave it for the next AUTO_INCREMENT the statement meets on the replica.
        const lid = idForContext((await rowsOf(w, 'SELECT LAST_INSERT_ID()'))[0]?.[0]);
        if (lid === null || String(lid) !== String(insertId)) return { ok: true, insertId: null, result: { columns: [], rows: [], affectedRows: out.affectedRows, lastInsertId: insertId } };
      }
      return { ok: true, insertId, result: { columns: [], rows: [], affectedRows: out.affectedRows, lastInsertId: insertId } };
    }
    if (out.overflow) {
      return { ok: false, error: { code: EngineCode.RESULT_TOO_LARGE, message: `the statement returned more than ${this.s.maxResultRows} rows` } };
    }
    let insertId: number | string | null = null;
    if (a.insertReturning) {
      const id = idForContext((await rowsOf(w, 'SELECT LAST_INSERT_ID()'))[0]?.[0]);
      if (id !== null && String(id) !== String(preLastId)) insertId = id;
    }
    const affectedRows = a.kind === 'dml' ? out.rows.length : 0;
    return { ok: true, insertId, result: { columns: out.columns, columnTypes: columnTypesOf(out.fields), rows: out.rows, affectedRows, lastInsertId: insertId } };
  }

  async writeFence(w: Connection, s: AppliedState): Promise<void> {
    const out = await runQuery(w, fenceUpdateSql(s), { timeoutMs: this.s.writeTimeoutMs });
    if (out.kind !== 'ok' || out.affectedRows !== 1) throw this.conn.markFatal('the fencing row is missing', EngineCode.INTERNAL);
  }

  async writePending(w: Connection, p: PendingEntry): Promise<void> {
    await query(w, pendingUpdateSql(p), this.s.writeTimeoutMs);
    this.conn.state = { ...this.conn.state!, pending: p };
  }
}
