// TEMPORARY STAND-IN, to be replaced at merge by the real src/faults/workloads.ts (another
// engineer's: set, register and bank workloads with their checkers, docs/design-faults.md). It
// implements only the interface and a minimal `set` workload so that the fault runner can run end
// to end: unique inserts, then every acknowledged value must be in the final read of every node.
import { ReplisqlClient } from '../client/client.js';
import { ReplisqlError } from '../errors.js';

export interface WorkloadContext {
  readonly endpoints: readonly string[];
  readonly concurrency: number;
  readonly seed: number;
  readonly readConsistency: 'local' | 'session' | 'bounded' | 'linearizable';
  readonly log: (line: string) => void;
}
export interface CheckResult {
  readonly valid: boolean | 'unknown';
  readonly counts: { operations: number; acknowledged: number; unknown: number; failed: number; violations: number };
  readonly details: readonly string[];
}
export interface Workload {
  readonly name: 'set' | 'register' | 'bank';
  setup(ctx: WorkloadContext): Promise<void>;
  run(ctx: WorkloadContext, stop: AbortSignal): Promise<void>;
  history(): readonly unknown[];
  final(ctx: WorkloadContext): Promise<void>;
  check(): CheckResult;
}

interface SetOp {
  readonly value: number;
  readonly endpoint: string;
  readonly start: number;
  end: number;
  outcome: 'ok' | 'fail' | 'unknown';
  error?: string;
}

/** A definite failure (the write was refused before it could be applied) or an unknown outcome. */
function classify(err: unknown): 'fail' | 'unknown' {
  if (err instanceof ReplisqlError && (err.code === 'SQL_ERROR' || err.code === 'BAD_REQUEST')) return 'fail';
  return 'unknown';
}

class SetWorkload implements Workload {
  readonly name = 'set' as const;
  private readonly ops: SetOp[] = [];
  private finals: Array<{ endpoint: string; values: number[] | null; error?: string }> = [];

  async setup(ctx: WorkloadContext): Promise<void> {
    const c = await ReplisqlClient.connect(ctx.endpoints, { timeoutMs: 30_000 });
    try {
      await c.query('CREATE TABLE IF NOT EXISTS fault_set (v INTEGER PRIMARY KEY)');
    } finally {
      await c.close();
    }
  }

  async run(ctx: WorkloadContext, stop: AbortSignal): Promise<void> {
    let next = 1;
    const worker = async (w: number): Promise<void> => {
      // Each worker starts on a different node and fails over through the others.
      const eps = [...ctx.endpoints.slice(w % ctx.endpoints.length), ...ctx.endpoints.slice(0, w % ctx.endpoints.length)];
      let client: ReplisqlClient | null = null;
      while (!stop.aborted) {
        if (client === null) {
          try {
            client = await ReplisqlClient.connect(eps, { timeoutMs: 3000, connectTimeoutMs: 1000, livenessTimeoutMs: 2000 });
          } catch {
            await new Promise((r) => setTimeout(r, 200));
            continue;
          }
        }
        const op: SetOp = { value: next++, endpoint: client.endpoint ?? '?', start: Date.now(), end: 0, outcome: 'unknown' };
        this.ops.push(op);
        try {
          await client.query('INSERT INTO fault_set (v) VALUES (?)', [op.value]);
          op.outcome = 'ok';
        } catch (err) {
          op.outcome = classify(err);
          op.error = err instanceof Error ? err.message : String(err);
          if (op.outcome === 'unknown') {
            await client.close().catch(() => {});
            client = null;
          }
        }
        op.end = Date.now();
      }
      await client?.close().catch(() => {});
    };
    await Promise.all(Array.from({ length: ctx.concurrency }, (_, w) => worker(w)));
  }

  history(): readonly unknown[] {
    return [...this.ops, ...this.finals.map((f) => ({ final: f }))];
  }

  async final(ctx: WorkloadContext): Promise<void> {
    this.finals = [];
    for (const ep of ctx.endpoints) {
      try {
        const c = await ReplisqlClient.connect([ep], { timeoutMs: 10_000 });
        try {
          const [r] = await c.query('SELECT v FROM fault_set ORDER BY v');
          this.finals.push({ endpoint: ep, values: (r?.rows ?? []).map((row) => Number(row[0])) });
        } finally {
          await c.close();
        }
      } catch (err) {
        this.finals.push({ endpoint: ep, values: null, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  check(): CheckResult {
    const details: string[] = [];
    const attempted = new Set(this.ops.map((o) => o.value));
    const acked = this.ops.filter((o) => o.outcome === 'ok');
    let violations = 0;
    let readable = 0;
    for (const f of this.finals) {
      if (f.values === null) {
        details.push(`final read on ${f.endpoint} failed: ${f.error ?? '?'}`);
        continue;
      }
      readable++;
      const seen = new Set(f.values);
      const lost = acked.filter((o) => !seen.has(o.value));
      const phantom = f.values.filter((v) => !attempted.has(v));
      violations += lost.length + phantom.length;
      if (lost.length > 0) details.push(`${f.endpoint}: ${lost.length} acknowledged values lost, e.g. ${lost.slice(0, 5).map((o) => o.value).join(', ')}`);
      if (phantom.length > 0) details.push(`${f.endpoint}: ${phantom.length} values never written, e.g. ${phantom.slice(0, 5).join(', ')}`);
    }
    const counts = {
      operations: this.ops.length,
      acknowledged: acked.length,
      unknown: this.ops.filter((o) => o.outcome === 'unknown').length,
      failed: this.ops.filter((o) => o.outcome === 'fail').length,
      violations,
    };
    const valid = violations > 0 ? false : readable === this.finals.length && readable > 0 ? true : 'unknown';
    return { valid, counts, details };
  }
}

export function createWorkload(name: string): Workload {
  if (name === 'set') return new SetWorkload();
  throw new Error(`workload '${name}' is not in the stand-in src/faults/workloads.ts (only 'set'); expected set, register or bank`);
}
