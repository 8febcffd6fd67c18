// The coordinator's speculative batch: one open transaction on the write connection, a SAVEPOINT per
// command when it needs one, the fencing row written by commitBatch. Each write statement runs with a
// replay context recorded here (SET TIMESTAMP, rand seeds, LAST_INSERT_ID, INSERT_ID) and returned in
// the statements to log. A schema change is never run speculatively (MySQL would commit the batch).
import { EngineCode, type AppliedState, type BatchExecResult, type Statement, type StatementContext, type StatementResult } from '../sql-engine.js';
import type { MysqlConnections } from './connections.js';
import { TRANSACTION_ROLLBACK_ERRNOS, type WriteStatements } from './execute.js';
import { publicState } from './fence.js';
import { idForContext, MysqlEngineCode, randomSeed, type ContextClock } from './mysql-context.js';
import type { MysqlSettings } from './options.js';
import { query, rowsOf } from './query.js';

export class CoordinatorBatch {
  constructor(
    private readonly s: MysqlSettings,
    private readonly conn: MysqlConnections,
    private readonly exec: WriteStatements,
    private readonly clock: ContextClock,
  ) {}

  beginBatch(): Promise<void> {
    return this.conn.onWriter(async (w) => {
      if (this.conn.batchOpen) throw this.conn.misuse('a batch is already open', EngineCode.BATCH_OPEN);
      const p = this.conn.state!.pending;
      if (p !== null) throw this.conn.misuse(`entry ${p.index} is partly applied (a schema change was interrupted); apply it before starting a batch`, EngineCode.INTERNAL);
      try {
        await query(w, 'START TRANSACTION');
      } catch (err) {
        throw await this.conn.afterWriteError(w, err, 'rollback');
      }
      this.conn.batchOpen = true;
    });
  }

  execInBatch(statements: readonly Statement[]): Promise<BatchExecResult> {
    return this.conn.onWriter(async (w) => {
      if (!this.conn.batchOpen) throw this.conn.misuse('execInBatch without an open batch', EngineCode.NO_BATCH);
      const plan = this.exec.plan(statements, 'write');
      if (plan.refusal !== null) return { ok: false, error: plan.refusal, batchAborted: false };
      const ddlAt = plan.analyzed.findIndex((a) => a.kind === 'ddl');
      if (ddlAt >= 0) {
        // Not executed: MySQL would commit the batch with it. The caller logs `statements` (with their
        // timestamps and seeds) and applies the entry once it is committed (docs/mysql.md).
        const pinned = statements.map((st): Statement => ({ ...bare(st), context: { timestamp: this.clock.next(), randSeed1: randomSeed(), randSeed2: randomSeed() } }));
        return {
          ok: false,
          batchAborted: false,
          statements: pinned,
          error: {
            code: MysqlEngineCode.DDL_NOT_SPECULATIVE,
            message: 'a schema change commits implicitly in MySQL, so it cannot run in the speculative batch: log it unexecuted and apply it when committed',
            statementIndex: ddlAt,
          },
        };
      }
      // InnoDB undoes a failed statement by itself (statement atomicity), so a command of one
      // statement needs no savepoint (two round trips less per write); several statements, or one
      // that may have to be undone after it succeeded (order-sensitive), do.
      const savepoint = plan.analyzed.length > 1 || plan.analyzed.some((a) => a.orderSensitive !== null);
      try {
        if (savepoint) await query(w, 'SAVEPOINT replisql_cmd');
        const results: StatementResult[] = [];
        const pinned: Statement[] = [];
        for (let i = 0; i < plan.analyzed.length; i++) {
          const a = plan.analyzed[i]!;
          const ctx: { -readonly [K in keyof StatementContext]: StatementContext[K] } = {
            timestamp: this.clock.next(),
            randSeed1: randomSeed(),
            randSeed2: randomSeed(),
          };
          if (a.usesLastInsertId) {
            const v = idForContext((await rowsOf(w, 'SELECT LAST_INSERT_ID()'))[0]?.[0]);
            ctx.lastInsertId = v ?? 0;
          }
          const out = await this.exec.execWrite(w, a, ctx, true, true);
          if (!out.ok) {
            if (out.error.errno !== undefined && TRANSACTION_ROLLBACK_ERRNOS.has(out.error.errno)) {
              // The server rolled back the whole transaction (deadlock, lock wait timeout with
              // innodb_rollback_on_timeout): the batch is gone.
              await query(w, 'ROLLBACK').catch(() => undefined);
              this.conn.batchOpen = false;
              return { ok: false, error: { ...out.error, statementIndex: i }, batchAborted: true };
            }
            if (savepoint) {
              await query(w, 'ROLLBACK TO SAVEPOINT replisql_cmd');
              await query(w, 'RELEASE SAVEPOINT replisql_cmd');
            }
            return { ok: false, error: { ...out.error, statementIndex: i }, batchAborted: false };
          }
          if (out.insertId !== null) ctx.insertId = out.insertId;
          results.push(out.result);
          pinned.push({ ...bare(statements[i]!), context: ctx });
        }
        if (savepoint) await query(w, 'RELEASE SAVEPOINT replisql_cmd');
        return { ok: true, results, statements: pinned };
      } catch (err) {
        throw await this.conn.afterWriteError(w, err, 'savepoint');
      }
    });
  }

  commitBatch(fence: AppliedState): Promise<void> {
    return this.conn.onWriter(async (w) => {
      if (!this.conn.batchOpen) throw this.conn.misuse('commitBatch without an open batch', EngineCode.NO_BATCH);
      const cur = this.conn.state!;
      const valid =
        fence !== null &&
        typeof fence === 'object' &&
        Number.isSafeInteger(fence.appliedIndex) &&
        Number.isSafeInteger(fence.term) &&
        typeof fence.chainHash === 'string' &&
        fence.chainHash.length <= 256;
      if (!valid || fence.appliedIndex <= cur.appliedIndex || fence.term < cur.term) {
        try {
          await query(w, 'ROLLBACK');
        } catch (err) {
          throw await this.conn.afterWriteError(w, err, 'rollback');
        }
        this.conn.batchOpen = false;
        throw this.conn.misuse(`fence ${JSON.stringify(fence)} is not ahead of the applied state ${JSON.stringify(publicState(cur))}; the batch was rolled back`, EngineCode.STALE_FENCE);
      }
      const next: AppliedState = { appliedIndex: fence.appliedIndex, term: fence.term, chainHash: fence.chainHash };
      try {
        await this.exec.writeFence(w, next);
        await query(w, 'COMMIT', this.s.writeTimeoutMs);
      } catch (err) {
        throw await this.conn.afterWriteError(w, err, 'rollback');
      }
      this.conn.batchOpen = false;
      this.conn.state = { ...next, pending: null, installPending: false };
    });
  }

  rollbackBatch(): Promise<void> {
    return this.conn.onWriter(async (w) => {
      if (!this.conn.batchOpen) return;
      try {
        await query(w, 'ROLLBACK');
      } catch (err) {
        throw await this.conn.afterWriteError(w, err, 'rollback');
      }
      this.conn.batchOpen = false;
    });
  }
}

/** A statement without its replay context (execInBatch records a fresh one). */
function bare(st: Statement): Statement {
  return st.params !== undefined && st.params.length > 0 ? { sql: st.sql, params: st.params } : { sql: st.sql };
}
