// The set workload: concurrent clients, each pinned to one node, insert unique values into fs_set;
// at the end every node's whole table is read. The set checker (src/faults/checkers.ts) then finds
// acknowledged inserts that were lost, values that should not be there, duplicates and divergence.
import type { ReplisqlClient } from '../client/client.js';
import { checkSet, type NodeRead, type SetReport } from './checkers.js';
import { classifyError, readEveryNode, runProcesses, runSetup } from './workload-support.js';
import type { CheckResult, Workload, WorkloadContext } from './workloads.js';

export interface SetInsertRecord {
  readonly type: 'insert';
  readonly process: number;
  readonly value: number;
  readonly invokedAt: number;
  readonly completedAt: number | null;
  readonly outcome: 'ok' | 'fail' | 'unknown';
  readonly error?: string;
}

export interface SetFinalRecord {
  readonly type: 'final';
  readonly node: number | string;
  readonly values: readonly number[] | null;
  readonly error?: string;
}

export type SetRecord = SetInsertRecord | SetFinalRecord;

export class SetWorkload implements Workload {
  readonly name = 'set' as const;
  private readonly inserts: SetInsertRecord[] = [];
  private finals: NodeRead<readonly number[]>[] = [];
  private nextValue = 1;

  async setup(ctx: WorkloadContext): Promise<void> {
    await runSetup(ctx, ['DROP TABLE IF EXISTS fs_set', 'CREATE TABLE fs_set (v INTEGER NOT NULL)']);
    const reads = await readEveryNode(ctx, readSet, (a, b) => a.length === b.length);
    const missing = reads.filter((r) => r.value === null);
    if (missing.length > 0) throw new Error(`set setup: fs_set not readable on node(s) ${missing.map((r) => `${r.node} (${r.error})`).join(', ')}`);
    ctx.log(`set: fs_set created on ${reads.length} nodes`);
  }

  async run(ctx: WorkloadContext, stop: AbortSignal): Promise<void> {
    await runProcesses(ctx, stop, 'set', async (client, pinned, _rng, p) => {
      const value = this.nextValue++;
      const invokedAt = performance.now();
      try {
        await client.query('INSERT INTO fs_set (v) VALUES (?)', [value]);
        this.inserts.push({ type: 'insert', process: p, value, invokedAt, completedAt: performance.now(), outcome: 'ok' });
      } catch (err) {
        const c = classifyError(err);
        this.inserts.push({ type: 'insert', process: p, value, invokedAt, completedAt: c.outcome === 'unknown' ? null : performance.now(), outcome: c.outcome, error: c.error });
        if (c.outcome === 'unknown') await pinned.drop();
      }
    });
  }

  history(): readonly SetRecord[] {
    return [
      ...[...this.inserts].sort((a, b) => a.invokedAt - b.invokedAt),
      ...this.finals.map((f): SetFinalRecord => ({ type: 'final', node: f.node, values: f.value, ...(f.error !== undefined ? { error: f.error } : {}) })),
    ];
  }

  async final(ctx: WorkloadContext): Promise<void> {
    this.finals = await readEveryNode(ctx, readSet, (a, b) => a.length === b.length && a.every((v, i) => v === b[i]));
  }

  check(): CheckResult {
    return setCheckResult(this.history());
  }
}

/** The set check of a set history (as history() returns it, or as read back from a history file). */
export function setCheckResult(records: readonly SetRecord[]): CheckResult {
  const inserts = records.filter((r): r is SetInsertRecord => r.type === 'insert');
  const finals = records.filter((r): r is SetFinalRecord => r.type === 'final');
  const of = (o: SetInsertRecord['outcome']): number[] => inserts.filter((i) => i.outcome === o).map((i) => i.value);
  const report: SetReport = checkSet({
    acknowledged: of('ok'),
    unknown: of('unknown'),
    failed: of('fail'),
    finalReads: finals.map((f) => ({ node: f.node, value: f.values, ...(f.error !== undefined ? { error: f.error } : {}) })),
  });
  return {
    valid: report.valid,
    counts: { operations: inserts.length, acknowledged: of('ok').length, unknown: of('unknown').length, failed: of('fail').length, violations: report.violations },
    details: report.details,
  };
}

async function readSet(client: ReplisqlClient): Promise<number[]> {
  const [res] = await client.query('SELECT v FROM fs_set ORDER BY v');
  return (res?.rows ?? []).map((row) => Number(row[0]));
}
