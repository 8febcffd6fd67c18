// The linearizability checker (src/faults/linearizability.ts) on hand-made register histories that
// are and are not linearizable, on randomized histories generated from a sequential register with
// random overlap (always linearizable) and on the same histories with one read made impossible
// (always caught), and on the history file format (src/faults/history.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLinearizable, type LinearizabilityResult } from '../../src/faults/linearizability.js';
import { HistoryRecorder, parseHistory, serializeHistory, type Operation, type Outcome, type RegisterValue } from '../../src/faults/history.js';
import { Prng } from '../../src/core/prng.js';

let nextId = 0;
type Span = readonly [number, number | null];
const at = (span: Span, outcome: Outcome): Pick<Operation, 'invokedAt' | 'completedAt' | 'outcome'> => ({
  invokedAt: span[0],
  completedAt: outcome === 'unknown' ? null : span[1],
  outcome,
});
const w = (p: number, value: RegisterValue, span: Span, outcome: Outcome = 'ok', key = 'x'): Operation => ({ id: nextId++, process: p, kind: 'write', key, value, ...at(span, outcome) });
const r = (p: number, result: RegisterValue, span: Span, outcome: Outcome = 'ok', key = 'x'): Operation => ({
  id: nextId++,
  process: p,
  kind: 'read',
  key,
  ...(outcome === 'ok' ? { result } : {}),
  ...at(span, outcome),
});
const cas = (p: number, expected: RegisterValue, value: RegisterValue, result: boolean, span: Span, outcome: Outcome = 'ok', key = 'x'): Operation => ({
  id: nextId++,
  process: p,
  kind: 'cas',
  key,
  expected,
  value,
  ...(outcome === 'ok' ? { result } : {}),
  ...at(span, outcome),
});

function assertValid(h: readonly Operation[], opts = {}): void {
  const res = checkLinearizable(h, opts);
  assert.deepEqual(res, { valid: true }, JSON.stringify(res));
}
function assertInvalid(h: readonly Operation[], opts = {}): Extract<LinearizabilityResult, { valid: false }> {
  const res = checkLinearizable(h, opts);
  assert.equal(res.valid, false, `expected a violation, got ${JSON.stringify(res)}`);
  return res as Extract<LinearizabilityResult, { valid: false }>;
}

// ---------------------------------------------------------------- linearizable

test('empty and sequential histories are linearizable', () => {
  assertValid([]);
  assertValid([w(1, 1, [0, 1]), r(2, 1, [2, 3]), w(1, 2, [4, 5]), r(2, 2, [6, 7])]);
  assertValid([r(1, null, [0, 1]), w(1, 3, [2, 3])]); // the register starts empty (null)
});

test('overlapping writes and reads may be ordered any way real time allows', () => {
  // w1 and w2 overlap; a read during both sees 2, a later read sees 1: w2 took effect first, then w1.
  assertValid([w(1, 1, [0, 10]), w(2, 2, [5, 15]), r(3, 2, [6, 8]), r(3, 1, [16, 20])]);
  // A read concurrent with a write may see the old or the new value.
  assertValid([w(1, 1, [0, 1]), w(2, 2, [2, 10]), r(3, 1, [3, 4]), r(4, 2, [3, 5]), r(3, 2, [11, 12])]);
  // Touching intervals (a return and a call at the same instant) count as concurrent.
  assertValid([w(1, 1, [0, 5]), r(2, null, [5, 6])]);
});

test('an unknown write may have happened, late, or not at all', () => {
  // happened
  assertValid([w(1, 1, [0, 1]), w(2, 2, [2, null], 'unknown'), r(3, 2, [10, 11])]);
  // did not happen
  assertValid([w(1, 1, [0, 1]), w(2, 2, [2, null], 'unknown'), r(3, 1, [10, 11]), r(3, 1, [20, 21])]);
  // took effect long after it timed out: first the old value is read, then its value
  assertValid([w(1, 1, [0, 1]), w(2, 2, [2, null], 'unknown'), r(3, 1, [10, 11]), r(3, 2, [20, 21])]);
  // an unknown cas that happened
  assertValid([w(1, 0, [0, 1]), cas(2, 0, 5, false, [2, null], 'unknown'), r(3, 5, [10, 11])]);
});

test('failed operations and unknown reads constrain nothing', () => {
  assertValid([w(1, 1, [0, 1]), w(2, 9, [2, 3], 'fail'), r(3, 1, [4, 5])]);
  assertValid([w(1, 1, [0, 1]), r(2, 42, [2, null], 'unknown'), r(3, 1, [4, 5])]);
  assertValid([w(1, 1, [0, 1]), cas(2, 1, 7, true, [2, 3], 'fail'), r(3, 1, [4, 5])]);
});

test('cas chains: success iff the register held the expected value', () => {
  assertValid([
    w(1, 0, [0, 1]),
    cas(1, 0, 1, true, [2, 3]),
    cas(2, 1, 2, true, [4, 5]),
    cas(3, 1, 3, false, [6, 7]),
    cas(3, 2, 4, true, [8, 9]),
    r(1, 4, [10, 11]),
  ]);
  // Two concurrent cas from the same value: one wins, the other sees the winner's value.
  assertValid([w(1, 0, [0, 1]), cas(2, 0, 1, true, [2, 6]), cas(3, 0, 2, false, [3, 7]), r(1, 1, [8, 9])]);
  // Two concurrent cas both succeed when the first's new value is the second's expected one.
  assertValid([w(1, 0, [0, 1]), cas(2, 0, 1, true, [2, 6]), cas(3, 1, 2, true, [3, 7]), r(1, 2, [8, 9])]);
});

test('values nobody reads still count: a cas fails because of them, or cannot succeed past them', () => {
  // an unknown write of 9 (never read) explains the failed cas
  assertValid([w(1, 0, [0, 1]), w(2, 9, [2, null], 'unknown'), cas(3, 0, 1, false, [5, 6])]);
  // 8 is never read, yet it is what the register holds: cas(7 -> 1) fails, and cannot succeed
  assertValid([w(1, 7, [0, 1]), w(1, 8, [2, 3]), cas(2, 7, 1, false, [4, 5])]);
  assertInvalid([w(1, 7, [0, 1]), w(1, 8, [2, 3]), cas(2, 7, 1, true, [4, 5])]);
  // many unknown writes of distinct, never-read values do not make the search explode
  const h: Operation[] = [w(1, 0, [0, 1])];
  for (let i = 0; i < 60; i++) h.push(w(10 + i, 100 + i, [2 + i, null], 'unknown'));
  for (let i = 0; i < 60; i++) h.push(r(1, 0, [100 + 2 * i, 101 + 2 * i]));
  h.push(cas(1, 0, 5, false, [300, 301]));
  const started = performance.now();
  assertValid(h);
  assert.ok(performance.now() - started < 1000);
});

test('initial values, keys checked independently', () => {
  assertValid([r(1, 0, [0, 1])], { initial: 0 });
  assertInvalid([r(1, 0, [0, 1])]);
  assertValid([r(1, 10, [0, 1], 'ok', 'a'), r(1, 20, [0, 1], 'ok', 'b')], { initial: (k: string | number) => (k === 'a' ? 10 : 20) });
  // Per key, each history is fine; together they would not be one register.
  assertValid([w(1, 1, [0, 1], 'ok', 'a'), w(2, 2, [0, 1], 'ok', 'b'), r(3, 1, [2, 3], 'ok', 'a'), r(3, 2, [2, 3], 'ok', 'b')]);
});

// ---------------------------------------------------------------- not linearizable

test('a stale read after a completed write is caught, with the window and an explanation', () => {
  const stale = r(3, 1, [4, 5]);
  const res = assertInvalid([w(1, 1, [0, 1]), w(2, 2, [2, 3]), stale]);
  assert.equal(res.key, 'x');
  assert.ok(res.ops.some((o) => o.id === stale.id), 'the stale read is in the window');
  assert.match(res.explanation, new RegExp(`#${stale.id} `));
  assert.match(res.explanation, /could hold only 2/);
});

test('a read of a value never written is caught', () => {
  const res = assertInvalid([w(1, 1, [0, 1]), r(2, 7, [2, 3])]);
  assert.deepEqual(res.ops.map((o) => o.kind), ['read']);
  assert.match(res.explanation, /no write or cas of this key that may have happened could have written/);
  // a value only a failed write wrote is never-written too
  assertInvalid([w(1, 1, [0, 1]), w(1, 7, [2, 3], 'fail'), r(2, 7, [4, 5])]);
  assertInvalid([r(1, 7, [0, 1])]);
});

test('two cas succeeding from the same expected value are caught', () => {
  assertInvalid([w(1, 0, [0, 1]), cas(2, 0, 1, true, [2, 5]), cas(3, 0, 2, true, [3, 6])]);
  // and a cas that reports failure although the register held its expected value
  assertInvalid([w(1, 0, [0, 1]), cas(2, 0, 1, false, [2, 3])]);
});

test('a read going back in time is caught', () => {
  // w2 is slow; once a read saw 2 no later read may see 1 again.
  assertInvalid([w(1, 1, [0, 1]), w(2, 2, [2, 10]), r(3, 2, [3, 4]), r(3, 1, [5, 6])]);
  // across processes too
  assertInvalid([w(1, 1, [0, 1]), w(2, 2, [2, 10]), r(3, 2, [3, 4]), r(4, 1, [5, 6])]);
});

test('two overlapping reads that disagree with no write near them are caught (a lagging replica)', () => {
  // Seen on a real cluster reading followers locally: one read still returns the old value.
  const h = [w(1, 0, [0, 1]), w(1, 4, [2, 3]), r(2, 0, [10, 20]), r(3, 4, [11, 15])];
  const res = assertInvalid(h);
  assert.deepEqual(res.ops.map((o) => o.kind), ['read', 'read']);
  assert.doesNotMatch(res.explanation, /any value\./);
});

test('unknown and failed writes cannot explain reads they could not cause', () => {
  // an unknown write cannot take effect before it was invoked
  assertInvalid([r(1, 5, [0, 1]), w(2, 5, [2, null], 'unknown')]);
  // a failed write did not happen
  assertInvalid([w(1, 1, [0, 1]), w(2, 5, [2, 3], 'fail'), r(3, 5, [4, 5])]);
});

test('the failing window is small in a long history', () => {
  const h: Operation[] = [];
  let t = 0;
  for (let i = 0; i < 500; i++) {
    h.push(w(1, i, [t, t + 2]), r(2, i - 1 < 0 ? null : i - 1, [t, t + 1]), r(3, i, [t + 3, t + 4]));
    t += 5;
  }
  const bad = r(2, 3, [t + 1, t + 2]); // 499 was written last
  h.push(bad);
  for (let i = 0; i < 100; i++) h.push(r(3, 499, [t + 3 + i, t + 3.5 + i]));
  const res = assertInvalid(h);
  assert.ok(res.ops.length <= 3, `window of ${res.ops.length} ops: ${res.explanation}`);
  assert.ok(res.ops.some((o) => o.id === bad.id));
});

test('a search larger than the step budget is reported as unknown, not valid', () => {
  // Many concurrent writes of distinct values and reads that force exploring many orders.
  const h: Operation[] = [];
  for (let p = 0; p < 12; p++) h.push(w(p, p, [0, 100]));
  for (let p = 0; p < 12; p++) h.push(r(100 + p, 11 - p, [1, 99]));
  h.push(r(200, 0, [101, 102]));
  const res = checkLinearizable(h, { maxSteps: 1000 });
  assert.equal(res.valid, 'unknown', JSON.stringify(res));
  assert.match((res as { reason: string }).reason, /budget/);
});

// ---------------------------------------------------------------- randomized

/**
 * A history from a sequential register: each process runs operations one after another with random
 * durations and gaps; every operation that takes effect does so at a random instant inside its
 * interval, and the results are computed in that order. Some writes/cas time out (unknown: half of
 * them took effect), some fail (did not take effect), some reads time out.
 */
function generate(rng: Prng, processes: number, opsPerProcess: number, keys: number): Operation[] {
  interface Draft {
    op: Operation;
    point: number;
    applies: boolean;
  }
  const drafts: Draft[] = [];
  let id = 0;
  for (let p = 0; p < processes; p++) {
    let t = rng.next() * 5;
    for (let i = 0; i < opsPerProcess; i++) {
      const dur = 0.5 + rng.next() * 10;
      const kindRoll = rng.next();
      const kind = kindRoll < 0.45 ? 'read' : kindRoll < 0.75 ? 'write' : 'cas';
      const fate = rng.next();
      const outcome: Outcome = fate < 0.08 ? 'unknown' : fate < 0.14 ? 'fail' : 'ok';
      const key = keys === 1 ? 'x' : `k${rng.intUpTo(keys - 1)}`;
      const base = { id: id++, process: p, key, invokedAt: t, completedAt: outcome === 'unknown' ? null : t + dur, outcome };
      const op: Operation =
        kind === 'read'
          ? { ...base, kind }
          : kind === 'write'
            ? { ...base, kind, value: rng.intUpTo(4) }
            : { ...base, kind, expected: rng.intUpTo(4), value: rng.intUpTo(4) };
      const applies = outcome === 'ok' || (outcome === 'unknown' && rng.chance(0.5));
      // An unknown operation that took effect may do so long after its client gave up.
      const span = outcome === 'unknown' ? dur * (1 + rng.next() * 5) : dur;
      drafts.push({ op, point: t + rng.next() * span, applies });
      t += dur + rng.next() * 3;
      if (outcome === 'unknown') t += 1; // the process gives up and goes on
    }
  }
  const state = new Map<string | number, RegisterValue>();
  const done: Operation[] = [];
  for (const d of [...drafts].sort((a, b) => a.point - b.point)) {
    const cur = state.get(d.op.key) ?? 0;
    let result: RegisterValue | boolean | undefined;
    if (d.applies) {
      if (d.op.kind === 'read') result = cur;
      else if (d.op.kind === 'write') state.set(d.op.key, d.op.value!);
      else {
        result = cur === d.op.expected;
        if (result) state.set(d.op.key, d.op.value!);
      }
    }
    done.push(d.op.outcome === 'ok' && result !== undefined ? { ...d.op, result } : d.op);
  }
  return done.sort((a, b) => a.invokedAt - b.invokedAt);
}

test('randomized: histories of a sequential register with random overlap are linearizable; one impossible read is caught', () => {
  const rng = new Prng(20261204);
  let caught = 0;
  for (let round = 0; round < 300; round++) {
    const h = generate(rng, 2 + rng.intUpTo(4), 5 + rng.intUpTo(30), 1 + rng.intUpTo(2));
    const res = checkLinearizable(h, { initial: 0 });
    assert.deepEqual(res, { valid: true }, `round ${round}: ${JSON.stringify(res)}\n${serializeHistory(h)}`);
    const reads = h.filter((o) => o.kind === 'read' && o.outcome === 'ok');
    if (reads.length === 0) continue;
    const victim = reads[rng.intUpTo(reads.length - 1)]!;
    const mutated = h.map((o) => (o.id === victim.id ? { ...o, result: 1000 + round } : o));
    const bad = checkLinearizable(mutated, { initial: 0 });
    assert.equal(bad.valid, false, `round ${round}: the impossible read #${victim.id} was not caught`);
    const v = bad as Extract<LinearizabilityResult, { valid: false }>;
    assert.equal(v.key, victim.key);
    assert.ok(v.ops.some((o) => o.id === victim.id), `round ${round}: the window holds the mutated read`);
    caught++;
  }
  assert.ok(caught > 250, `only ${caught} mutated histories had a read`);
});

test('randomized: a stale read (a value overwritten before the read began) is caught', () => {
  const rng = new Prng(7);
  let tried = 0;
  for (let round = 0; round < 200; round++) {
    const h = generate(rng, 3, 20, 1).filter((o) => o.outcome !== 'unknown' && o.kind !== 'cas');
    // Find an ok read R and two ok writes A < B (B completed before R began) with distinct values
    // such that no other write could end after A's return... simplest: B's value differs from A's,
    // and every write other than A is either before A or concurrent-free: use the last write that
    // completed strictly before R began and that no other write overlaps.
    const writes = h.filter((o) => o.kind === 'write' && o.outcome === 'ok');
    for (const read of h.filter((o) => o.kind === 'read' && o.outcome === 'ok')) {
      const before = writes.filter((x) => x.completedAt! < read.invokedAt);
      const last = before[before.length - 1];
      if (last === undefined || before.length < 2) continue;
      const isolated = writes.every((x) => x === last || x.completedAt! < last.invokedAt || x.invokedAt > read.completedAt!);
      const older = before.find((x) => x.value !== last.value && x.completedAt! < last.invokedAt);
      if (!isolated || older === undefined) continue;
      const mutated = h.map((o) => (o.id === read.id ? { ...o, result: older.value! } : o));
      assert.equal(checkLinearizable(mutated, { initial: 0 }).valid, false, `round ${round}: stale read #${read.id} not caught`);
      tried++;
      break;
    }
  }
  assert.ok(tried > 20, `only ${tried} histories had a stale-read candidate`);
});

test('a few thousand operations per key are checked well under a second', () => {
  const rng = new Prng(99);
  const h = generate(rng, 5, 800, 1); // 4000 operations on one key, 5 concurrent processes
  const started = performance.now();
  const res = checkLinearizable(h, { initial: 0 });
  const ms = performance.now() - started;
  assert.deepEqual(res, { valid: true });
  assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
  const okReads = h.filter((o) => o.kind === 'read' && o.outcome === 'ok');
  const victim = okReads[okReads.length >> 1]!;
  const started2 = performance.now();
  const bad = checkLinearizable(h.map((o) => (o.id === victim.id ? { ...o, result: -5 } : o)), { initial: 0 });
  const ms2 = performance.now() - started2;
  assert.equal(bad.valid, false);
  assert.ok(ms2 < 3000, `finding and shrinking the violation took ${ms2.toFixed(0)} ms`);
});

// ---------------------------------------------------------------- history files

test('histories survive the JSON-lines format; bad lines are named', () => {
  const rec = new HistoryRecorder((() => {
    let t = 0;
    return () => (t += 1);
  })());
  const a = rec.invoke(1, 'write', 3, { value: 7 });
  const b = rec.invoke(2, 'cas', 3, { expected: 7, value: 8 });
  rec.complete(a, 'ok');
  rec.complete(b, 'unknown', undefined, 'UNKNOWN_OUTCOME: timed out');
  const c = rec.invoke(1, 'read', 3);
  rec.complete(c, 'ok', 7);
  rec.invoke(3, 'write', 3, { value: 9 }); // still open at the end: unknown
  const h = rec.history();
  assert.equal(h.length, 4);
  assert.deepEqual(h.map((o) => o.outcome), ['ok', 'unknown', 'ok', 'unknown']);
  assert.equal(h[1]!.completedAt, null);
  assert.deepEqual(parseHistory(serializeHistory(h)), h);
  assert.throws(() => parseHistory('{"id":1}\n'), /line 1: "process"/);
  assert.throws(() => parseHistory(serializeHistory(h) + '{"id":9,"process":1,"kind":"cas","key":1,"value":1,"expected":0,"invokedAt":1,"completedAt":2,"outcome":"ok"}\n'), /line 5: an ok cas needs a boolean "result"/);
  assert.throws(() => parseHistory('nope\n'), /line 1: not JSON/);
  assert.throws(() => rec.complete(a, 'ok'), /not invoked or is already complete/);
});
