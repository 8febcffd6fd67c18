// Pure checkers of the fault suite's set and bank workloads (the register workload's checker is
// src/faults/linearizability.ts). They take what the workload recorded and the final reads from
// every node, and say what went wrong in plain lines, first problems first.
//
// set: every acknowledged insert must be on every node (else lost); nothing may be present that was
//   never attempted or that definitely failed (unexpected); no value twice; all nodes the same set.
//   Unknown inserts may be present or not (those present are counted as recovered).
// bank: every read of all balances must sum to the fixed total, list exactly the accounts, and (when
//   overdrafts are forbidden) hold no negative balance; the final reads of all nodes must be equal.

export type SetValue = number | string;

export interface NodeRead<T> {
  /** Which node was read (its id or endpoint). */
  readonly node: string | number;
  /** What it returned; null when the node could not be read. */
  readonly value: T | null;
  /** Why it could not be read, when value is null. */
  readonly error?: string;
}

export interface SetInput {
  readonly acknowledged: readonly SetValue[];
  readonly unknown: readonly SetValue[];
  readonly failed: readonly SetValue[];
  /** Every node's final read of the whole set (one entry per row, duplicates kept). */
  readonly finalReads: readonly NodeRead<readonly SetValue[]>[];
}

export interface SetReport {
  /** false on any violation; 'unknown' when there is none but some node could not be read. */
  readonly valid: boolean | 'unknown';
  readonly lost: readonly { readonly value: SetValue; readonly missingOn: readonly (string | number)[] }[];
  readonly unexpected: readonly { readonly value: SetValue; readonly on: readonly (string | number)[]; readonly why: 'never attempted' | 'failed' }[];
  readonly duplicates: readonly { readonly node: string | number; readonly value: SetValue; readonly count: number }[];
  readonly nodesAgree: boolean;
  readonly unreadNodes: readonly (string | number)[];
  /** Unknown inserts found on at least one node. */
  readonly recovered: number;
  readonly violations: number;
  readonly details: readonly string[];
}

const MAX_LISTED = 10;
const list = (xs: readonly unknown[]): string =>
  xs.slice(0, MAX_LISTED).map((x) => JSON.stringify(x)).join(', ') + (xs.length > MAX_LISTED ? `, ... (${xs.length} in all)` : '');

export function checkSet(input: SetInput): SetReport {
  const read = input.finalReads.filter((r) => r.value !== null) as readonly (NodeRead<readonly SetValue[]> & { value: readonly SetValue[] })[];
  const unreadNodes = input.finalReads.filter((r) => r.value === null).map((r) => r.node);
  const contents = read.map((r) => ({ node: r.node, set: new Set(r.value) }));
  const acknowledged = new Set(input.acknowledged);
  const unknown = new Set(input.unknown);
  const failed = new Set(input.failed);

  const lost: { value: SetValue; missingOn: (string | number)[] }[] = [];
  for (const v of acknowledged) {
    const missingOn = contents.filter((c) => !c.set.has(v)).map((c) => c.node);
    if (missingOn.length > 0) lost.push({ value: v, missingOn });
  }
  const unexpected: { value: SetValue; on: (string | number)[]; why: 'never attempted' | 'failed' }[] = [];
  const present = new Map<SetValue, (string | number)[]>();
  for (const c of contents) for (const v of c.set) present.set(v, [...(present.get(v) ?? []), c.node]);
  for (const [v, on] of present) {
    if (acknowledged.has(v) || unknown.has(v)) continue;
    unexpected.push({ value: v, on, why: failed.has(v) ? 'failed' : 'never attempted' });
  }
  const duplicates: { node: string | number; value: SetValue; count: number }[] = [];
  for (const r of read) {
    const counts = new Map<SetValue, number>();
    for (const v of r.value) counts.set(v, (counts.get(v) ?? 0) + 1);
    for (const [value, count] of counts) if (count > 1) duplicates.push({ node: r.node, value, count });
  }
  const same = (a: Set<SetValue>, b: Set<SetValue>): boolean => a.size === b.size && [...a].every((v) => b.has(v));
  const nodesAgree = contents.every((c) => same(c.set, contents[0]!.set));
  const recovered = [...unknown].filter((v) => present.has(v)).length;

  const details: string[] = [];
  for (const l of lost) details.push(`lost: acknowledged insert ${JSON.stringify(l.value)} is missing on node(s) ${l.missingOn.join(', ')}`);
  for (const u of unexpected) details.push(`unexpected: ${JSON.stringify(u.value)} is present on node(s) ${u.on.join(', ')} but ${u.why === 'failed' ? 'its insert definitely failed' : 'was never inserted'}`);
  for (const d of duplicates) details.push(`duplicate: ${JSON.stringify(d.value)} appears ${d.count} times on node ${d.node}`);
  if (!nodesAgree) {
    for (const c of contents) {
      const others = contents.filter((o) => o !== c);
      const onlyHere = [...c.set].filter((v) => others.some((o) => !o.set.has(v)));
      if (onlyHere.length > 0) details.push(`divergence: node ${c.node} has ${list(onlyHere)} that some other node lacks`);
    }
  }
  for (const r of input.finalReads) if (r.value === null) details.push(`unread: node ${r.node} could not be read${r.error !== undefined ? ` (${r.error})` : ''}`);
  const violations = lost.length + unexpected.length + duplicates.length + (nodesAgree ? 0 : 1);
  details.push(
    `${acknowledged.size} acknowledged, ${unknown.size} unknown (${recovered} of them present), ${failed.size} failed inserts; ` +
      `${read.length} of ${input.finalReads.length} nodes read, sizes ${contents.map((c) => `${c.node}:${c.set.size}`).join(' ')}`,
  );
  const valid = violations > 0 ? false : unreadNodes.length > 0 || read.length === 0 ? 'unknown' : true;
  return { valid, lost, unexpected, duplicates, nodesAgree, unreadNodes, recovered, violations, details };
}

// ---------------------------------------------------------------- bank

/** All balances as one read returned them: account id -> balance. */
export type Balances = Readonly<Record<string, number>>;

export interface BankRead {
  /** Which client / node made the read, for the report. */
  readonly by: string;
  readonly balances: Balances;
}

export interface BankInput {
  /** The account ids (as strings, the keys of Balances). */
  readonly accounts: readonly string[];
  readonly total: number;
  readonly allowNegative: boolean;
  /** Every successful read of all balances during the run. */
  readonly reads: readonly BankRead[];
  readonly finalReads: readonly NodeRead<Balances>[];
}

export interface BankReport {
  readonly valid: boolean | 'unknown';
  /** Reads (run and final) that broke an invariant. */
  readonly badReads: readonly { readonly by: string; readonly balances: Balances; readonly problems: readonly string[] }[];
  readonly nodesAgree: boolean;
  readonly unreadNodes: readonly (string | number)[];
  readonly violations: number;
  readonly details: readonly string[];
}

function balanceProblems(input: BankInput, b: Balances): string[] {
  const problems: string[] = [];
  const keys = Object.keys(b).sort();
  const expected = [...input.accounts].sort();
  if (keys.length !== expected.length || keys.some((k, i) => k !== expected[i])) {
    problems.push(`accounts ${JSON.stringify(keys)} instead of ${JSON.stringify(expected)}`);
  }
  const sum = Object.values(b).reduce((a, x) => a + x, 0);
  if (sum !== input.total) problems.push(`sum ${sum} instead of ${input.total}`);
  if (!input.allowNegative) {
    const negative = Object.entries(b).filter(([, v]) => v < 0);
    if (negative.length > 0) problems.push(`negative balance(s) ${negative.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  }
  return problems;
}

export function checkBank(input: BankInput): BankReport {
  const badReads: { by: string; balances: Balances; problems: string[] }[] = [];
  for (const r of input.reads) {
    const problems = balanceProblems(input, r.balances);
    if (problems.length > 0) badReads.push({ by: r.by, balances: r.balances, problems });
  }
  const finals = input.finalReads.filter((r) => r.value !== null) as readonly (NodeRead<Balances> & { value: Balances })[];
  for (const f of finals) {
    const problems = balanceProblems(input, f.value);
    if (problems.length > 0) badReads.push({ by: `final read of node ${f.node}`, balances: f.value, problems });
  }
  const unreadNodes = input.finalReads.filter((r) => r.value === null).map((r) => r.node);
  const canon = (b: Balances): string => JSON.stringify(Object.keys(b).sort().map((k) => [k, b[k]]));
  const nodesAgree = finals.every((f) => canon(f.value) === canon(finals[0]!.value));

  const details: string[] = [];
  for (const b of badReads.slice(0, MAX_LISTED)) details.push(`bad read by ${b.by}: ${b.problems.join('; ')} in ${JSON.stringify(b.balances)}`);
  if (badReads.length > MAX_LISTED) details.push(`... ${badReads.length - MAX_LISTED} more bad reads`);
  if (!nodesAgree) for (const f of finals) details.push(`divergence: node ${f.node} finally holds ${JSON.stringify(f.value)}`);
  for (const r of input.finalReads) if (r.value === null) details.push(`unread: node ${r.node} could not be read${r.error !== undefined ? ` (${r.error})` : ''}`);
  const violations = badReads.length + (nodesAgree ? 0 : 1);
  details.push(`${input.reads.length} reads during the run, ${finals.length} of ${input.finalReads.length} nodes read at the end; total ${input.total}`);
  const valid = violations > 0 ? false : unreadNodes.length > 0 || finals.length === 0 ? 'unknown' : true;
  return { valid, badReads, nodesAgree, unreadNodes, violations, details };
}
