// Follower applies: committed log entries, each atomically with the fencing row.
//   - An entry without schema changes: its statements and the fencing row in one transaction.
//   - An entry with schema changes (DDL commits implicitly): statement by statement behind a "pending"
//     marker in the fencing row, a DDL after a committed "DDL started" marker, so that a crash between
//     a DDL and the fencing row is recognised and the entry resumed where it stopped.
//   - A burst of consecutive entries without schema changes (applyEntries): one transaction, the
//     fencing row written once.
import type { Connection } from 'mysql2';
import { ErrorCode } from '../../errors.js';
import { placeEntry, validateEntry, type ContractViolation } from '../entry-contract.js';
import { EngineCode, SqlEngineError, type AppliedState, type ApplyResult, type EntryToApply, type StatementError, type StatementResult } from '../sql-engine.js';
import type { MysqlConnections } from './connections.js';
import { TRANSACTION_ROLLBACK_ERRNOS, type Plan, type WriteStatements } from './execute.js';
import { readFence } from './fence.js';
import { DDL_ALREADY_DONE_ERRNOS } from './mysql-context.js';
import type { MysqlSettings } from './options.js';
import { emptyResult, query } from './query.js';

const badEntry: ContractViolation = (engineCode, message) => new SqlEngineError(ErrorCode.INTERNAL, engineCode, `mysql engine: ${message}`);

export class FollowerApply {
  constructor(
    private readonly s: MysqlSettings,
    private readonly conn: MysqlConnections,
    private readonly exec: WriteStatements,
  ) {}

  applyEntry(e: EntryToApply): Promise<ApplyResult> {
    try {
      validateEntry(e, badEntry);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.conn.onWriter((w) => this.applyOne(w, e));
  }

  /**
   * Consecutive entries without schema changes in one transaction (the fencing row written once);
   * each entry in a savepoint when it has several statements (InnoDB undoes a single failed
   * statement by itself). Anything else (a schema change, an unfinished entry, a gap, a deadlock
   * rollback) falls back to applying the entries one by one.
   */
  applyEntries(entries: readonly EntryToApply[]): Promise<ApplyResult[]> {
    try {
      if (!Array.isArray(entries)) throw this.conn.misuse('entries must be an array', EngineCode.INVALID_STATEMENT);
      entries.forEach((e) => validateEntry(e, badEntry));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.conn.onWriter(async (w) => {
      if (this.conn.batchOpen) throw this.conn.misuse('applyEntries while a batch is open', EngineCode.BATCH_OPEN);
      const results: ApplyResult[] = [];
      let i = 0;
      while (i < entries.length && entries[i]!.index <= this.conn.state!.appliedIndex) results.push(await this.applyOne(w, entries[i++]!));
      const todo = entries.slice(i);
      const batched = todo.length > 1 ? await this.applyBatched(w, todo) : null;
      if (batched !== null) return [...results, ...batched];
      for (const e of todo) results.push(await this.applyOne(w, e));
      return results;
    });
  }

  /** applyEntries' one-transaction path; null (with nothing changed) when the entries do not qualify. */
  private async applyBatched(w: Connection, todo: readonly EntryToApply[]): Promise<ApplyResult[] | null> {
    const cur = this.conn.state!;
    if (cur.pending !== null || cur.installPending) return null;
    const plans: Plan[] = [];
    let expected = cur.appliedIndex + 1;
    let term = cur.term;
    for (const e of todo) {
      if (e.index !== expected || e.term < term) return null;
      const plan = this.exec.plan(e.statements, 'write');
      if (plan.analyzed.some((a) => a.kind === 'ddl') || plan.refusal !== null) return null;
      plans.push(plan);
      expected++;
      term = e.term;
    }
    const results: ApplyResult[] = [];
    try {
      await query(w, 'START TRANSACTION');
      for (let k = 0; k < todo.length; k++) {
        const plan = plans[k]!;
        const savepoint = plan.analyzed.length > 1 || plan.analyzed.some((a) => a.orderSensitive !== null);
        if (savepoint) await query(w, 'SAVEPOINT replisql_entry');
        const out: StatementResult[] = [];
        let failed: StatementError | null = null;
        for (let i = 0; i < plan.analyzed.length; i++) {
          const r = await this.exec.execWrite(w, plan.analyzed[i]!, plan.contexts[i], true);
          if (r.ok) {
            out.push(r.result);
            continue;
          }
          if (r.error.errno !== undefined && TRANSACTION_ROLLBACK_ERRNOS.has(r.error.errno)) {
            // The server rolled back the whole transaction: start over entry by entry.
            await query(w, 'ROLLBACK').catch(() => undefined);
            return null;
          }
          failed = { ...r.error, statementIndex: i };
          break;
        }
        if (failed !== null && savepoint) await query(w, 'ROLLBACK TO SAVEPOINT replisql_entry');
        if (savepoint) await query(w, 'RELEASE SAVEPOINT replisql_entry');
        results.push(failed === null ? { skipped: false, ok: true, results: out } : { skipped: false, ok: false, error: failed });
      }
      const last = todo[todo.length - 1]!;
      const next: AppliedState = { appliedIndex: last.index, term: last.term, chainHash: last.chainHash };
      await this.exec.writeFence(w, next);
      await query(w, 'COMMIT', this.s.writeTimeoutMs);
      this.conn.state = { ...next, pending: null, installPending: false };
    } catch (err) {
      throw await this.conn.afterWriteError(w, err, 'rollback');
    }
    return results;
  }

  /** applyEntry on the writer connection (the caller holds it). */
  private async applyOne(w: Connection, e: EntryToApply): Promise<ApplyResult> {
    if (this.conn.batchOpen) throw this.conn.misuse('applyEntry while a batch is open', EngineCode.BATCH_OPEN);
    const cur = this.conn.state!;
    if (placeEntry(cur, e, (engineCode, message) => this.conn.misuse(message, engineCode)) === 'applied') return { skipped: true } as const;
    if (cur.pending !== null && (cur.pending.index !== e.index || cur.pending.chainHash !== e.chainHash || cur.pending.term !== e.term)) {
      throw this.conn.misuse(
        `entry ${cur.pending.index} (chain hash ${cur.pending.chainHash}) is partly applied, but entry ${e.index} with chain hash ${e.chainHash} was given`,
        EngineCode.CHAIN_MISMATCH,
      );
    }
    const plan = this.exec.plan(e.statements, 'write');
    const next: AppliedState = { appliedIndex: e.index, term: e.term, chainHash: e.chainHash };
    const ddl = plan.analyzed.some((a) => a.kind === 'ddl');
    return ddl || cur.pending !== null ? this.applyStepwise(w, e, plan, next) : this.applyAtomically(w, e, plan, next);
  }

  /** An entry without schema changes: its statements and the fencing row in one transaction. */
  private async applyAtomically(w: Connection, e: EntryToApply, plan: Plan, next: AppliedState): Promise<ApplyResult> {
    await query(w, 'START TRANSACTION');
    let failed: StatementError | null = null;
    const results: StatementResult[] = [];
    try {
      for (let i = 0; i < plan.analyzed.length; i++) {
        const out = await this.exec.execWrite(w, plan.analyzed[i]!, plan.contexts[i], true);
        if (out.ok) results.push(out.result);
        else {
          failed = { ...out.error, statementIndex: i };
          break;
        }
      }
      if (failed === null && plan.refusal !== null) failed = plan.refusal;
      if (failed !== null) {
        await query(w, 'ROLLBACK');
        await query(w, 'START TRANSACTION');
      }
      await this.exec.writeFence(w, next);
      await query(w, 'COMMIT', this.s.writeTimeoutMs);
    } catch (err) {
      throw await this.conn.afterWriteError(w, err, 'rollback');
    }
    this.conn.state = { ...next, pending: null, installPending: false };
    return failed === null ? { skipped: false, ok: true, results } : { skipped: false, ok: false, error: failed };
  }

  /**
   * An entry with schema changes: statement by statement, each DML statement in a transaction with the
   * progress marker, each DDL after a committed "DDL started" marker. Resumes where a crash left it.
   */
  private async applyStepwise(w: Connection, e: EntryToApply, plan: Plan, next: AppliedState): Promise<ApplyResult> {
    const cur = this.conn.state!;
    const start = cur.pending?.next ?? 0;
    let resumedDdl = cur.pending?.ddlStarted === true;
    const results: StatementResult[] = [];
    for (let i = 0; i < start && i < plan.analyzed.length; i++) results.push(emptyResult());
    let failed: StatementError | null = null;
    try {
      for (let i = start; i < plan.analyzed.length; i++) {
        const a = plan.analyzed[i]!;
        const marker = { index: e.index, term: e.term, chainHash: e.chainHash, next: i, ddlStarted: true };
        if (a.kind === 'ddl') {
          if (!(resumedDdl && i === start)) {
            await this.exec.writePending(w, marker);
            resumedDdl = false;
          }
          await this.s.opts.faults?.beforeDdl?.(e.index, i);
          const out = await this.exec.execWrite(w, a, plan.contexts[i], false);
          if (!out.ok) {
            const errno = out.error.errno;
            if (resumedDdl && i === start && errno !== undefined && DDL_ALREADY_DONE_ERRNOS.has(errno)) {
              // The crash came after this schema change took effect: it is done.
              results.push(emptyResult());
            } else {
              failed = { ...out.error, statementIndex: i };
              break;
            }
          } else results.push(out.result);
          resumedDdl = false;
          await this.s.opts.faults?.afterDdl?.(e.index, i);
          if (i + 1 < plan.analyzed.length) await this.exec.writePending(w, { ...marker, next: i + 1, ddlStarted: false });
        } else {
          resumedDdl = false;
          await query(w, 'START TRANSACTION');
          const out = await this.exec.execWrite(w, a, plan.contexts[i], true);
          if (!out.ok) {
            await query(w, 'ROLLBACK');
            failed = { ...out.error, statementIndex: i };
            break;
          }
          results.push(out.result);
          const last = i + 1 === plan.analyzed.length && plan.refusal === null;
          if (last) await this.exec.writeFence(w, next);
          else await this.exec.writePending(w, { ...marker, next: i + 1, ddlStarted: false });
          await query(w, 'COMMIT', this.s.writeTimeoutMs);
          if (last) {
            this.conn.state = { ...next, pending: null, installPending: false };
            return { skipped: false, ok: true, results };
          }
        }
      }
      if (failed === null && plan.refusal !== null) failed = plan.refusal;
      await this.exec.writeFence(w, next);
    } catch (err) {
      const out = await this.conn.afterWriteError(w, err, 'rollback');
      // The cached marker may be ahead of a transaction that did not commit: read what the database has.
      if (!this.conn.failed() && this.conn.writer === w) this.conn.state = await readFence(w).catch(() => this.conn.state);
      throw out;
    }
    this.conn.state = { ...next, pending: null, installPending: false };
    return failed === null ? { skipped: false, ok: true, results } : { skipped: false, ok: false, error: failed };
  }
}
