// The bank workload: accounts with a fixed total in fs_bank. Clients, each pinned to one node, move
// money between two accounts in interactive transactions (BEGIN; SELECT; UPDATE; UPDATE; COMMIT,
// statement by statement on one connection, never overdrawing) and read all balances in one
// statement at the run's read level. The bank checker (src/faults/checkers.ts) proves every read saw
// the total and no negative balance, and that all nodes end equal.
import type { Prng } from '../core/prng.js';
import type { ReplisqlClient } from '../client/client.js';
import { checkBank, type Balances, type NodeRead } from './checkers.js';
import { classifyError, PinnedClient, readEveryNode, runProcesses, runSetup } from './workload-support.js';
import type { CheckResult, Workload, WorkloadContext } from './workloads.js';

export const BANK_ACCOUNTS = 5;
export const BANK_INITIAL_BALANCE = 100;
export const BANK_TOTAL = BANK_ACCOUNTS * BANK_INITIAL_BALANCE;
const ACCOUNT_IDS = Array.from({ length: BANK_ACCOUNTS }, (_, i) => String(i + 1));

export interface BankTransferRecord {
  readonly type: 'transfer';
  readonly process: number;
  readonly from: number;
  readonly to: number;
  readonly amount: number;
  readonly invokedAt: number;
  readonly completedAt: number | null;
  /** fail also covers a transfer refused for lack of funds (rolled back, nothing written). */
  readonly outcome: 'ok' | 'fail' | 'unknown';
  readonly error?: string;
}

export interface BankReadRecord {
  readonly type: 'read';
  readonly process: number;
  readonly node: string;
  readonly invokedAt: number;
  readonly completedAt: number | null;
  readonly outcome: 'ok' | 'fail' | 'unknown';
  readonly balances?: Balances;
  readonly error?: string;
}

export interface BankFinalRecord {
  readonly type: 'final';
  readonly node: number | string;
  readonly balances: Balances | null;
  readonly error?: string;
}

export type BankRecord = BankTransferRecord | BankReadRecord | BankFinalRecord;

export class BankWorkload implements Workload {
  readonly name = 'bank' as const;
  private readonly records: (BankTransferRecord | BankReadRecord)[] = [];
  private finals: NodeRead<Balances>[] = [];

  async setup(ctx: WorkloadContext): Promise<void> {
    const rows = ACCOUNT_IDS.map((id) => `(${id}, ${BANK_INITIAL_BALANCE})`).join(', ');
    await runSetup(ctx, ['DROP TABLE IF EXISTS fs_bank', 'CREATE TABLE fs_bank (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)', `INSERT INTO fs_bank (id, balance) VALUES ${rows}`]);
    const reads = await readEveryNode(ctx, (c) => readBalances(c), sameBalances);
    const missing = reads.filter((r) => r.value === null || Object.keys(r.value).length !== BANK_ACCOUNTS);
    if (missing.length > 0) throw new Error(`bank setup: fs_bank not replicated to node(s) ${missing.map((r) => r.node).join(', ')}`);
    ctx.log(`bank: ${BANK_ACCOUNTS} accounts, total ${BANK_TOTAL}, on ${reads.length} nodes`);
  }

  async run(ctx: WorkloadContext, stop: AbortSignal): Promise<void> {
    await runProcesses(ctx, stop, 'bank', async (client, pinned, rng, p) => {
      if (rng.chance(0.5)) await this.read(ctx, client, pinned, p);
      else await this.transfer(client, pinned, p, rng);
    });
  }

  private async read(ctx: WorkloadContext, client: ReplisqlClient, pinned: PinnedClient, p: number): Promise<void> {
    const invokedAt = performance.now();
    try {
      const balances = await readBalances(client, ctx.readConsistency);
      this.records.push({ type: 'read', process: p, node: pinned.endpoint, invokedAt, completedAt: performance.now(), outcome: 'ok', balances });
    } catch (err) {
      const c = classifyError(err);
      this.records.push({ type: 'read', process: p, node: pinned.endpoint, invokedAt, completedAt: c.outcome === 'unknown' ? null : performance.now(), outcome: c.outcome, error: c.error });
      if (c.outcome === 'unknown') await pinned.drop();
    }
  }

  private async transfer(client: ReplisqlClient, pinned: PinnedClient, p: number, rng: Prng): Promise<void> {
    const from = 1 + rng.intUpTo(BANK_ACCOUNTS - 1);
    const to = 1 + ((from + rng.intUpTo(BANK_ACCOUNTS - 2)) % BANK_ACCOUNTS);
    const amount = 1 + rng.intUpTo(20);
    const invokedAt = performance.now();
    const done = (outcome: BankTransferRecord['outcome'], error?: string): void => {
      this.records.push({ type: 'transfer', process: p, from, to, amount, invokedAt, completedAt: outcome === 'unknown' ? null : performance.now(), outcome, ...(error !== undefined ? { error } : {}) });
    };
    let committing = false;
    try {
      await client.query('BEGIN');
      const [res] = await client.query('SELECT balance FROM fs_bank WHERE id = ?', [from]);
      const balance = Number(res?.rows[0]?.[0]);
      if (!(balance >= amount)) {
        await client.query('ROLLBACK');
        done('fail', `insufficient funds: account ${from} holds ${balance}, transfer of ${amount} refused`);
        return;
      }
      await client.query('UPDATE fs_bank SET balance = balance - ? WHERE id = ?', [amount, from]);
      await client.query('UPDATE fs_bank SET balance = balance + ? WHERE id = ?', [amount, to]);
      committing = true;
      await client.query('COMMIT');
      done('ok');
    } catch (err) {
      const c = classifyError(err);
      // Before COMMIT nothing can have been committed; COMMIT itself is classified like any write.
      done(committing ? c.outcome : 'fail', c.error);
      // The connection may still hold the transaction open: closing it rolls the transaction back.
      await pinned.drop();
    }
  }

  history(): readonly BankRecord[] {
    return [
      ...[...this.records].sort((a, b) => a.invokedAt - b.invokedAt),
      ...this.finals.map((f): BankFinalRecord => ({ type: 'final', node: f.node, balances: f.value, ...(f.error !== undefined ? { error: f.error } : {}) })),
    ];
  }

  async final(ctx: WorkloadContext): Promise<void> {
    this.finals = await readEveryNode(ctx, (c) => readBalances(c), sameBalances);
  }

  check(): CheckResult {
    return bankCheckResult(this.history());
  }
}

/** The bank check of a bank history (as history() returns it, or as read back from a history file). */
export function bankCheckResult(records: readonly BankRecord[]): CheckResult {
  const ops = records.filter((r): r is BankTransferRecord | BankReadRecord => r.type !== 'final');
  const finals = records.filter((r): r is BankFinalRecord => r.type === 'final');
  const reads = ops.filter((r): r is BankReadRecord & { balances: Balances } => r.type === 'read' && r.outcome === 'ok' && r.balances !== undefined);
  const report = checkBank({
    accounts: ACCOUNT_IDS,
    total: BANK_TOTAL,
    allowNegative: false,
    reads: reads.map((r) => ({ by: `process ${r.process} via ${r.node} at ${r.invokedAt.toFixed(1)} ms`, balances: r.balances })),
    finalReads: finals.map((f) => ({ node: f.node, value: f.balances, ...(f.error !== undefined ? { error: f.error } : {}) })),
  });
  const transfers = ops.filter((r) => r.type === 'transfer');
  const count = (o: 'ok' | 'fail' | 'unknown'): number => ops.filter((r) => r.outcome === o).length;
  return {
    valid: report.valid,
    counts: { operations: ops.length, acknowledged: count('ok'), unknown: count('unknown'), failed: count('fail'), violations: report.violations },
    details: [...report.details, `${transfers.length} transfers (${transfers.filter((t) => t.outcome === 'ok').length} committed), ${reads.length} reads of all balances`],
  };
}

async function readBalances(client: ReplisqlClient, consistency?: WorkloadContext['readConsistency']): Promise<Balances> {
  const [res] = await client.query('SELECT id, balance FROM fs_bank ORDER BY id', [], consistency !== undefined ? { consistency } : {});
  const out: Record<string, number> = {};
  for (const row of res?.rows ?? []) out[String(row[0])] = Number(row[1]);
  return out;
}

function sameBalances(a: Balances, b: Balances): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
