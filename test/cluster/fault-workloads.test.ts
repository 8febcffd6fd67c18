// The fault suite's workloads (src/faults/workloads.ts) against a real 3-node SQLite cluster on
// loopback, without faults: a short run of each must check valid with non-zero counts, and the same
// histories with one acknowledged insert taken out of a node's final read, or one bank read with a
// wrong total, must check invalid. Needs `npm run build` (the harness runs the built CLI).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCluster, type Cluster } from './harness.js';
import { createWorkload, type CheckResult, type Workload, type WorkloadContext } from '../../src/faults/workloads.js';
import { setCheckResult, type SetRecord } from '../../src/faults/set-workload.js';
import { bankCheckResult, type BankRecord } from '../../src/faults/bank-workload.js';
import { checkLinearizable } from '../../src/faults/linearizability.js';
import { parseHistory, serializeHistory, type Operation } from '../../src/faults/history.js';
import { registerCheckResult } from '../../src/faults/register-workload.js';

const RUN_MS = 5000;
const fx = useCluster({ engine: 'sqlite' });

function context(cluster: Cluster, endpoints = cluster.ids.map((id) => cluster.endpoint(id))): WorkloadContext & { lines: string[] } {
  const lines: string[] = [];
  return { endpoints, concurrency: 4, seed: 42, readConsistency: 'linearizable', log: (l) => lines.push(l), lines };
}

async function runFor(w: Workload, ctx: WorkloadContext): Promise<CheckResult> {
  await w.setup(ctx);
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), RUN_MS);
  await w.run(ctx, stop.signal);
  clearTimeout(timer);
  await w.final(ctx);
  return w.check();
}

function assertHealthy(r: CheckResult, what: string, t: { diagnostic(m: string): void }): void {
  t.diagnostic(`${what}: ${JSON.stringify(r.counts)}; ${r.details[r.details.length - 1] ?? ''}`);
  assert.equal(r.valid, true, `${what}: ${r.details.join('\n')}`);
  assert.ok(r.counts.operations > 20, `${what}: only ${r.counts.operations} operations`);
  assert.ok(r.counts.acknowledged > 20, `${what}: only ${r.counts.acknowledged} acknowledged`);
  assert.equal(r.counts.violations, 0);
}

test('createWorkload names the valid workloads for an unknown one', () => {
  assert.equal(createWorkload('set').name, 'set');
  assert.throws(() => createWorkload('queue'), /unknown workload "queue"; valid workloads: set, register, bank/);
});

test('set: a fault-free run checks valid; an acknowledged insert missing from a final read is lost', async (t) => {
  const cluster = fx.take(t);
  if (cluster === null) return;
  const w = createWorkload('set');
  const r = await runFor(w, context(cluster));
  assertHealthy(r, 'set', t);

  const h = w.history() as readonly SetRecord[];
  const acked = h.find((x) => x.type === 'insert' && x.outcome === 'ok');
  assert.ok(acked !== undefined && acked.type === 'insert');
  const corrupted = h.map((x) => (x.type === 'final' && x.node === 2 ? { ...x, values: x.values!.filter((v) => v !== acked.value) } : x));
  const bad = setCheckResult(corrupted);
  assert.equal(bad.valid, false);
  assert.ok(bad.counts.violations >= 1);
  assert.match(bad.details[0]!, new RegExp(`lost: acknowledged insert ${acked.value} is missing on node\\(s\\) 2`));
});

test('register: a fault-free run is linearizable; an impossible read is caught', async (t) => {
  const cluster = fx.take(t);
  if (cluster === null) return;
  // Clients on every node, reads at `linearizable` (a read index from the coordinator, applied locally).
  const w = createWorkload('register');
  const r = await runFor(w, context(cluster));
  assertHealthy(r, 'register', t);

  const h = w.history() as readonly Operation[];
  assert.ok(h.some((o) => o.kind === 'cas' && o.outcome === 'ok' && o.result === true), 'some cas succeeded');
  assert.ok(h.some((o) => o.kind === 'read' && o.outcome === 'ok'), 'some reads');
  // Make the last acknowledged read of a key return a value written before the last write it must see.
  const reads = h.filter((o) => o.kind === 'read' && o.outcome === 'ok');
  const victim = reads[reads.length - 1]!;
  const bad = checkLinearizable(
    h.map((o) => (o.id === victim.id ? { ...o, result: 77 } : o)),
    { initial: 0 },
  );
  assert.equal(bad.valid, false);
  // The same check from a history file, with one node's final values diverging.
  const fromFile = parseHistory(serializeHistory(h));
  const finals = [1, 2, 3].map((node) => ({ node, value: { '1': node === 3 ? 99 : 0, '2': 0 } }));
  const diverged = registerCheckResult(fromFile, finals);
  assert.equal(diverged.valid, false);
  assert.ok(diverged.details.some((d) => /divergence: node 3/.test(d)), diverged.details.join('\n'));
});

test('bank: a fault-free run keeps the total; a read with a wrong total is reported', async (t) => {
  const cluster = fx.take(t);
  if (cluster === null) return;
  const w = createWorkload('bank');
  const r = await runFor(w, context(cluster));
  assertHealthy(r, 'bank', t);
  const h = w.history() as readonly BankRecord[];
  assert.ok(h.some((x) => x.type === 'transfer' && x.outcome === 'ok'), 'some transfers committed');

  const i = h.findIndex((x) => x.type === 'read' && x.outcome === 'ok');
  const read = h[i]!;
  assert.ok(read.type === 'read' && read.balances !== undefined);
  const corrupted = h.map((x, j) => (j === i && x.type === 'read' ? { ...x, balances: { ...x.balances, '1': (x.balances!['1'] ?? 0) + 1 } } : x));
  const bad = bankCheckResult(corrupted);
  assert.equal(bad.valid, false);
  assert.match(bad.details[0]!, /bad read by process .*: sum 501 instead of 500/);
});
