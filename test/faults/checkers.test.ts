// The set and bank checkers (src/faults/checkers.ts) on hand-made outcomes: clean runs pass, and each
// kind of anomaly (lost, unexpected, duplicate, divergent, bad sum, negative balance) is reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkBank, checkSet, type BankInput, type SetInput } from '../../src/faults/checkers.js';

const clean: SetInput = {
  acknowledged: [1, 2, 3, 4],
  unknown: [5, 6],
  failed: [7],
  finalReads: [
    { node: 1, value: [1, 2, 3, 4, 5] },
    { node: 2, value: [5, 4, 3, 2, 1] },
    { node: 3, value: [1, 2, 3, 4, 5] },
  ],
};

test('set: a clean outcome is valid; unknown inserts may be present or absent', () => {
  const r = checkSet(clean);
  assert.equal(r.valid, true, r.details.join('\n'));
  assert.equal(r.recovered, 1);
  assert.equal(r.violations, 0);
  assert.equal(r.nodesAgree, true);
});

test('set: an acknowledged insert missing on one node is lost, and the nodes disagree', () => {
  const r = checkSet({ ...clean, finalReads: [clean.finalReads[0]!, { node: 2, value: [1, 2, 4, 5] }, clean.finalReads[2]!] });
  assert.equal(r.valid, false);
  assert.deepEqual(r.lost, [{ value: 3, missingOn: [2] }]);
  assert.equal(r.nodesAgree, false);
  assert.match(r.details[0]!, /lost: acknowledged insert 3 is missing on node\(s\) 2/);
  assert.ok(r.details.some((d) => /divergence: node 1 has 3/.test(d)));
});

test('set: values never attempted or definitely failed are unexpected; duplicates are reported', () => {
  const everywhere = (extra: number[]) => clean.finalReads.map((f) => ({ node: f.node, value: [...f.value!, ...extra] }));
  const r = checkSet({ ...clean, finalReads: everywhere([7, 99]) });
  assert.equal(r.valid, false);
  assert.deepEqual(r.unexpected.map((u) => [u.value, u.why]), [[7, 'failed'], [99, 'never attempted']]);
  assert.equal(r.nodesAgree, true);
  const d = checkSet({ ...clean, finalReads: everywhere([2]) });
  assert.equal(d.valid, false);
  assert.deepEqual(d.duplicates.map((x) => [x.node, x.value, x.count]), [[1, 2, 2], [2, 2, 2], [3, 2, 2]]);
});

test('set: an unreadable node makes a clean outcome unknown, not valid', () => {
  const r = checkSet({ ...clean, finalReads: [...clean.finalReads.slice(0, 2), { node: 3, value: null, error: 'NO_QUORUM' }] });
  assert.equal(r.valid, 'unknown');
  assert.deepEqual(r.unreadNodes, [3]);
  assert.ok(r.details.some((d) => /unread: node 3 could not be read \(NO_QUORUM\)/.test(d)));
});

const bank: BankInput = {
  accounts: ['1', '2', '3'],
  total: 300,
  allowNegative: false,
  reads: [
    { by: 'p1', balances: { '1': 100, '2': 100, '3': 100 } },
    { by: 'p2', balances: { '1': 50, '2': 150, '3': 100 } },
  ],
  finalReads: [1, 2, 3].map((node) => ({ node, value: { '1': 0, '2': 200, '3': 100 } })),
};

test('bank: reads that keep the total and no overdraft are valid', () => {
  const r = checkBank(bank);
  assert.equal(r.valid, true, r.details.join('\n'));
});

test('bank: a wrong total, a negative balance, a missing account and divergent finals are reported', () => {
  const r = checkBank({
    ...bank,
    reads: [...bank.reads, { by: 'p3', balances: { '1': 60, '2': 150, '3': 100 } }, { by: 'p4', balances: { '1': -10, '2': 210, '3': 100 } }, { by: 'p5', balances: { '1': 200, '2': 100 } }],
  });
  assert.equal(r.valid, false);
  assert.deepEqual(r.badReads.map((b) => b.by), ['p3', 'p4', 'p5']);
  assert.match(r.details[0]!, /bad read by p3: sum 310 instead of 300/);
  assert.match(r.details[1]!, /negative balance\(s\) 1=-10/);
  assert.match(r.details[2]!, /accounts \["1","2"\] instead of \["1","2","3"\]/);
  // overdrafts allowed: the negative read is fine
  assert.deepEqual(checkBank({ ...bank, allowNegative: true, reads: [{ by: 'p4', balances: { '1': -10, '2': 210, '3': 100 } }] }).valid, true);

  const d = checkBank({ ...bank, finalReads: [...bank.finalReads.slice(0, 2), { node: 3, value: { '1': 100, '2': 100, '3': 100 } }] });
  assert.equal(d.valid, false);
  assert.equal(d.nodesAgree, false);
  assert.ok(d.details.some((x) => /divergence: node 3/.test(x)));
  assert.equal(checkBank({ ...bank, finalReads: [{ node: 1, value: null }] }).valid, 'unknown');
});
