// The register workload: a few integer registers (rows of fs_reg), read / written / compare-and-set
// by concurrent clients each pinned to one node, reads sent at the run's read level. The history is
// checked for linearizability per key (src/faults/linearizability.ts); the final values of every
// node must agree.
import type { Prng } from '../core/prng.js';
import type { ReplisqlClient } from '../client/client.js';
import { checkLinearizable, type LinearizabilityResult } from './linearizability.js';
import { describeOperation, HistoryRecorder, type Operation } from './history.js';
import type { NodeRead } from './checkers.js';
import { classifyError, PinnedClient, readEveryNode, runProcesses, runSetup } from './workload-support.js';
import type { CheckResult, Workload, WorkloadContext } from './workloads.js';

export const REGISTER_KEYS = 5;
/** Values are drawn from a small range (as Jepsen does) so that cas succeeds often. */
const VALUES = 5;

/** Final values of every register on one node: key -> value. */
export type Finals = Readonly<Record<string, number>>;

export class RegisterWorkload implements Workload {
  readonly name = 'register' as const;
  private readonly recorder = new HistoryRecorder();
  private finals: NodeRead<Finals>[] = [];
  private result: LinearizabilityResult | null = null;
  private level = '';

  async setup(ctx: WorkloadContext): Promise<void> {
    const rows = Array.from({ length: REGISTER_KEYS }, (_, i) => `(${i + 1}, 0)`).join(', ');
    await runSetup(ctx, ['DROP TABLE IF EXISTS fs_reg', 'CREATE TABLE fs_reg (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)', `INSERT INTO fs_reg (k, v) VALUES ${rows}`]);
    const reads = await readEveryNode(ctx, readAll, (a, b) => JSON.stringify(a) === JSON.stringify(b));
    const missing = reads.filter((r) => r.value === null || Object.keys(r.value).length !== REGISTER_KEYS);
    if (missing.length > 0) throw new Error(`register setup: fs_reg not replicated to node(s) ${missing.map((r) => r.node).join(', ')}`);
    ctx.log(`register: ${REGISTER_KEYS} registers at 0 on ${reads.length} nodes`);
  }

  async run(ctx: WorkloadContext, stop: AbortSignal): Promise<void> {
    this.level = ctx.readConsistency;
    await runProcesses(ctx, stop, 'register', (client, pinned, rng, p) => this.operate(ctx, client, pinned, p, rng));
  }

  private async operate(ctx: WorkloadContext, client: ReplisqlClient, pinned: PinnedClient, p: number, rng: Prng): Promise<void> {
    const key = 1 + rng.intUpTo(REGISTER_KEYS - 1);
    const roll = rng.next();
    if (roll < 0.5) {
      const id = this.recorder.invoke(p, 'read', key);
      try {
        const [res] = await client.query('SELECT v FROM fs_reg WHERE k = ?', [key], { consistency: ctx.readConsistency });
        const v = res?.rows[0]?.[0];
        this.recorder.complete(id, 'ok', typeof v === 'number' ? v : v === undefined || v === null ? null : Number(v));
      } catch (err) {
        this.failed(id, err, pinned);
      }
      return;
    }
    const value = rng.intUpTo(VALUES - 1);
    if (roll < 0.75) {
      const id = this.recorder.invoke(p, 'write', key, { value });
      try {
        await client.query('UPDATE fs_reg SET v = ? WHERE k = ?', [value, key]);
        this.recorder.complete(id, 'ok');
      } catch (err) {
        this.failed(id, err, pinned);
      }
      return;
    }
    // A cas never writes its expected value: MySQL counts only changed rows in affectedRows.
    const expected = (value + 1 + rng.intUpTo(VALUES - 2)) % VALUES;
    const id = this.recorder.invoke(p, 'cas', key, { expected, value });
    try {
      const [res] = await client.query('UPDATE fs_reg SET v = ? WHERE k = ? AND v = ?', [value, key, expected]);
      this.recorder.complete(id, 'ok', res?.affectedRows === 1);
    } catch (err) {
      this.failed(id, err, pinned);
    }
  }

  private failed(id: number, err: unknown, pinned: PinnedClient): void {
    const c = classifyError(err);
    this.recorder.complete(id, c.outcome, undefined, c.error);
    if (c.outcome === 'unknown') void pinned.drop(); // a fresh connection after a timeout or a lost one
  }

  history(): readonly Operation[] {
    return this.recorder.history();
  }

  async final(ctx: WorkloadContext): Promise<void> {
    this.finals = await readEveryNode(ctx, readAll, (a, b) => JSON.stringify(a) === JSON.stringify(b));
  }

  check(): CheckResult {
    this.result ??= checkLinearizable(this.recorder.history(), { initial: 0 });
    return registerCheckResult(this.recorder.history(), this.finals, this.level, this.result);
  }
}

/**
 * The register check of a history (as history() returns it, or read back with parseHistory) and
 * the final values read from every node (empty when not read: the result is then at best unknown).
 */
export function registerCheckResult(
  h: readonly Operation[],
  finals: readonly NodeRead<Finals>[],
  level = '',
  result: LinearizabilityResult = checkLinearizable(h, { initial: 0 }),
): CheckResult {
  const r = result;
  const details: string[] = [];
  let violations = 0;
  if (r.valid === false) {
    violations++;
    details.push(`not linearizable: ${r.explanation}`, ...r.ops.map((o) => `  ${describeOperation(o)}`));
  } else if (r.valid === 'unknown') {
    details.push(`linearizability undecided: ${r.reason}`);
  }
  const read = finals.filter((f) => f.value !== null);
  const agree = read.every((f) => JSON.stringify(f.value) === JSON.stringify(read[0]!.value));
  if (!agree) {
    violations++;
    for (const f of read) details.push(`divergence: node ${f.node} finally holds ${JSON.stringify(f.value)}`);
  }
  for (const f of finals) if (f.value === null) details.push(`unread: node ${f.node} could not be read at the end (${f.error ?? 'no answer'})`);
  const counts = {
    operations: h.length,
    acknowledged: h.filter((o) => o.outcome === 'ok').length,
    unknown: h.filter((o) => o.outcome === 'unknown').length,
    failed: h.filter((o) => o.outcome === 'fail').length,
    violations,
  };
  details.push(
    `${counts.operations} operations on ${REGISTER_KEYS} registers (${h.filter((o) => o.kind === 'read').length} reads at level ${level || '-'}); ` +
      `linearizable: ${String(r.valid)}; final values ${read.length > 0 ? JSON.stringify(read[0]!.value) : 'unread'}`,
  );
  const finalsUnread = finals.length === 0 || finals.some((f) => f.value === null);
  const valid = violations > 0 ? false : r.valid === 'unknown' || finalsUnread ? 'unknown' : true;
  return { valid, counts, details };
}

async function readAll(client: ReplisqlClient): Promise<Finals> {
  const [res] = await client.query('SELECT k, v FROM fs_reg ORDER BY k');
  const out: Record<string, number> = {};
  for (const row of res?.rows ?? []) out[String(row[0])] = Number(row[1]);
  return out;
}
