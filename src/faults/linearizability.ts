// Linearizability checker for register histories (src/faults/history.ts): the Wing & Gong search
// with Lowe's memoization, per key (P-compositionality), over a read / write / compare-and-set
// register model. Written from the papers (Wing & Gong 1993; Lowe, "Testing for linearizability",
// 2017), no code copied.
//
// The search walks a doubly linked list of call and return events in real-time order. At a call it
// tries to linearize that operation now: if the model accepts it from the current state and the
// pair (set of linearized operations, new state) has not been explored before, the operation's call
// and return are lifted out of the list and the search restarts from the head. Reaching a return
// means that operation was not linearized before it completed: backtrack (undo the last choice).
// Operations of unknown outcome return at +infinity: their returns sit at the end of the list, so
// reaching one means every definite operation is linearized and the rest may simply not have
// happened. The memo bounds the work by the number of distinct (linearized set, state) pairs; a step
// budget turns a search that explodes into `valid: 'unknown'`.
//
// On a violation the failing key's history is cut down to a small window [t0, t1] that still fails
// (binary searches on both edges; operations straddling an edge count as unknown, the initial value
// of a window that starts late is "any"), which is a sound relaxation: if the whole history were
// linearizable every such window would be too.
import { describeOperation, type Operation, type RegisterKey, type RegisterValue } from './history.js';

export type LinearizabilityResult =
  | { readonly valid: true }
  | { readonly valid: false; readonly key: RegisterKey; readonly ops: readonly Operation[]; readonly explanation: string }
  | { readonly valid: 'unknown'; readonly reason: string };

export interface LinearizabilityOptions {
  /** The value every register holds before the first operation (default null), or per key. */
  readonly initial?: RegisterValue | ((key: RegisterKey) => RegisterValue);
  /** Search steps allowed per key before giving up with `valid: 'unknown'` (default 2,000,000). */
  readonly maxSteps?: number;
}

export const DEFAULT_MAX_STEPS = 2_000_000;

/** Checks every key independently; the first violating key (in key order) is reported. */
export function checkLinearizable(history: readonly Operation[], opts: LinearizabilityOptions = {}): LinearizabilityResult {
  const maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS;
  const byKey = new Map<RegisterKey, Operation[]>();
  for (const op of history) {
    const list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, [op]);
    else list.push(op);
  }
  const keys = [...byKey.keys()].sort((a, b) => (String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0));
  const undecided: string[] = [];
  for (const key of keys) {
    const initial = typeof opts.initial === 'function' ? opts.initial(key) : (opts.initial ?? null);
    const r = checkKey(key, byKey.get(key)!, initial, maxSteps);
    if (r.valid === false) return r;
    if (r.valid === 'unknown') undecided.push(r.reason);
  }
  if (undecided.length > 0) return { valid: 'unknown', reason: undecided.join('; ') };
  return { valid: true };
}

// ---------------------------------------------------------------- model

const ANY: unique symbol = Symbol('any value');
const REFUSED: unique symbol = Symbol('refused');
/** Every value that no read and no cas could ever tell apart: nothing observes which one it is. */
const UNOBSERVED: unique symbol = Symbol('an unobserved value');
type Value = RegisterValue | typeof UNOBSERVED;
type State = Value | typeof ANY;

interface SearchOp {
  readonly src: Operation;
  /** false: outcome unknown (returns at +infinity, may be left out). */
  readonly definite: boolean;
  readonly call: number;
  readonly ret: number;
  /** write, cas: the value written, UNOBSERVED when no read or cas compares with it. */
  readonly value: Value;
  readonly expected: RegisterValue;
}

/** The register: the state after `o` takes effect in state `s`, or REFUSED when its result is impossible. */
function step(s: State, o: SearchOp): State | typeof REFUSED {
  const op = o.src;
  switch (op.kind) {
    case 'read': {
      const r = op.result as RegisterValue;
      if (s === ANY) return r;
      return s === r ? s : REFUSED;
    }
    case 'write':
      return o.value;
    case 'cas': {
      const expected = o.expected;
      const value = o.value;
      if (!o.definite) return s === ANY ? ANY : s === expected ? value : s;
      if (op.result === true) return s === ANY || s === expected ? value : REFUSED;
      return s === ANY ? ANY : s !== expected ? s : REFUSED;
    }
  }
}

function showState(s: State): string {
  return s === ANY ? 'any value' : s === UNOBSERVED ? 'a value no read or cas observes' : JSON.stringify(s);
}

// ---------------------------------------------------------------- per key

type Prepared = SearchOp;

/**
 * Drops what constrains nothing (failed operations, reads of unknown outcome) and maps every
 * written value that no read returns and no cas expects to one UNOBSERVED value: the model only
 * compares values with those, so this changes no verdict, and unknown writes of such values become
 * interchangeable (see the twin rule in search()).
 */
function prepare(ops: readonly Operation[], initial: RegisterValue): Prepared[] {
  const live = ops.filter((op) => op.outcome !== 'fail' && !(op.outcome === 'unknown' && op.kind === 'read'));
  const observed = new Set<RegisterValue>([initial]);
  for (const op of live) {
    if (op.kind === 'read') observed.add(op.result as RegisterValue);
    if (op.kind === 'cas') observed.add(op.expected ?? null);
  }
  const out: Prepared[] = [];
  for (const op of live) {
    const written = op.value ?? null;
    const value: Value = op.kind === 'read' || observed.has(written) ? written : UNOBSERVED;
    const common: Omit<Prepared, 'definite' | 'ret'> = { src: op, call: op.invokedAt, value, expected: op.expected ?? null };
    if (op.outcome === 'unknown') {
      out.push({ ...common, definite: false, ret: Infinity });
      continue;
    }
    if (op.completedAt === null) throw new Error(`operation ${op.id} is ok but has no completedAt`);
    out.push({ ...common, definite: true, ret: op.completedAt });
  }
  return out;
}

/**
 * The operations relevant to the window [t0, t1]: those entirely inside keep their outcome; those
 * straddling an edge become unknown (reads among them are dropped); those entirely outside go.
 */
function windowOf(ops: readonly Prepared[], t0: number, t1: number): Prepared[] {
  const out: Prepared[] = [];
  for (const o of ops) {
    if (o.ret < t0 || o.call > t1) continue;
    if (o.definite && o.call >= t0 && o.ret <= t1) out.push(o);
    else if (o.src.kind !== 'read') out.push(o.definite ? { ...o, definite: false, ret: Infinity } : o);
  }
  return out;
}

function checkKey(key: RegisterKey, ops: readonly Operation[], initial: RegisterValue, maxSteps: number): LinearizabilityResult {
  const prepared = prepare(ops, initial);
  const impossible = readOfUnwrittenValue(prepared, initial);
  if (impossible !== null) {
    return {
      valid: false,
      key,
      ops: [impossible],
      explanation:
        `key ${JSON.stringify(key)}: ${describeOperation(impossible)} read ${JSON.stringify(impossible.result)}, ` +
        `a value that is not the initial value (${JSON.stringify(initial)}) and that no write or cas of this key that may have happened could have written.`,
    };
  }
  const full = search(prepared, initial, maxSteps);
  if (full.kind === 'ok') return { valid: true };
  if (full.kind === 'budget') {
    return { valid: 'unknown', reason: `key ${JSON.stringify(key)}: search budget of ${maxSteps} steps exhausted on ${prepared.length} operations` };
  }
  const fails = (t0: number, t1: number, init: State): boolean => search(windowOf(prepared, t0, t1), init, maxSteps).kind === 'fail';

  // Smallest t1 such that everything up to t1 already fails (monotone: a later t1 adds constraints).
  // A window search over the budget counts as "not shown to fail".
  const rets = [...new Set(prepared.filter((o) => o.definite).map((o) => o.ret))].sort((a, b) => a - b);
  let lo = 0;
  let hi = rets.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (fails(-Infinity, rets[mid]!, initial)) hi = mid;
    else lo = mid + 1;
  }
  const t1 = rets[hi] ?? Infinity;
  // Largest t0 such that [t0, t1] fails from any initial value; none: the initial value matters.
  const calls = [...new Set(prepared.filter((o) => o.call <= t1).map((o) => o.call))].sort((a, b) => a - b);
  let t0 = -Infinity;
  let init: State = initial;
  if (calls.length > 0 && fails(calls[0]!, t1, ANY)) {
    let a = 0;
    let b = calls.length - 1;
    while (a < b) {
      const mid = (a + b + 1) >> 1;
      if (fails(calls[mid]!, t1, ANY)) a = mid;
      else b = mid - 1;
    }
    t0 = calls[a]!;
    init = ANY;
  }
  const window = windowOf(prepared, t0, t1);
  const first = search(window, init, maxSteps);
  if (first.kind !== 'fail') throw new Error('linearizability: the failing window no longer fails (a bug in the checker)');
  const watched = search(window, init, maxSteps, first.blocking);
  return explain(key, window, t0, t1, init, first.blocking, watched.kind === 'fail' ? watched.watchedStates : new Set());
}

/** An ok read of a value that is neither the initial one nor written by any write/cas that may have happened. */
function readOfUnwrittenValue(ops: readonly Prepared[], initial: RegisterValue): Operation | null {
  const written = new Set<RegisterValue>([initial]);
  for (const o of ops) if (o.src.kind !== 'read') written.add(o.src.value ?? null);
  for (const o of ops) if (o.src.kind === 'read' && !written.has(o.src.result as RegisterValue)) return o.src;
  return null;
}

function explain(key: RegisterKey, window: readonly Prepared[], t0: number, t1: number, init: State, blocking: number, states: ReadonlySet<State>): LinearizabilityResult {
  const ops = window.map((o) => o.src).sort((a, b) => a.invokedAt - b.invokedAt || a.id - b.id);
  const stuck = window[blocking]?.src;
  const straddling = window.filter((o) => !o.definite && o.src.outcome === 'ok').length;
  const edge = (t: number): string => (Number.isFinite(t) ? t.toFixed(1) : t < 0 ? 'start' : 'end');
  const lines = [
    `key ${JSON.stringify(key)}: no order of these ${ops.length} operations is consistent with real time and a register ` +
      `(window ${edge(t0)} .. ${edge(t1)} ms, initial ${showState(init)}` +
      (straddling > 0 ? `, ${straddling} ok operation(s) straddling the window edges counted as unknown` : '') +
      ').',
  ];
  if (stuck !== undefined) {
    // ANY: the window's start value, not yet pinned; UNOBSERVED: one of the written values nobody observes.
    const unobserved = [...new Set(window.filter((o) => o.value === UNOBSERVED).map((o) => JSON.stringify(o.src.value ?? null)))];
    const held = [...states]
      .filter((x) => x !== ANY)
      .map((x) => (x === UNOBSERVED && unobserved.length > 0 ? `${unobserved.length === 1 ? unobserved[0] : `one of ${unobserved.join(', ')}`} (never read)` : showState(x)));
    lines.push(
      `The longest consistent order found cannot go past ${describeOperation(stuck)}` +
        (held.length > 0 ? `: by its completion the register could hold only ${held.join(', ')}.` : '.'),
    );
  }
  return { valid: false, key, ops, explanation: lines.join(' ') };
}

// ---------------------------------------------------------------- the search

interface Event {
  readonly op: number;
  readonly isCall: boolean;
  readonly time: number;
  prev: Event | null;
  next: Event | null;
  match: Event | null;
}

type SearchOutcome =
  | { readonly kind: 'ok' }
  | { readonly kind: 'budget' }
  | { readonly kind: 'fail'; readonly blocking: number; readonly watchedStates: Set<State> };

function hashState(s: State): number {
  if (s === ANY) return 0x2545f491;
  if (s === UNOBSERVED) return 0x3c6ef372;
  if (s === null) return 0x6a09e667;
  const text = typeof s === 'number' ? `n${s}` : `s${s}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Deterministic 32-bit values per operation (Zobrist hashing of the linearized set). */
function zobrist(n: number): Uint32Array {
  const z = new Uint32Array(n);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    z[i] = x >>> 0;
  }
  return z;
}

/**
 * Wing & Gong with Lowe's memo. `watch`: an operation index whose return the caller wants the
 * possible states at (collected each time the search is stuck there).
 */
function search(ops: readonly SearchOp[], initial: State, maxSteps: number, watch = -1): SearchOutcome {
  const n = ops.length;
  if (n === 0) return { kind: 'ok' };
  const events: Event[] = [];
  for (let i = 0; i < n; i++) {
    const call: Event = { op: i, isCall: true, time: ops[i]!.call, prev: null, next: null, match: null };
    const ret: Event = { op: i, isCall: false, time: ops[i]!.ret, prev: null, next: null, match: null };
    call.match = ret;
    events.push(call, ret);
  }
  // Real-time order; at equal times calls first (touching operations count as concurrent).
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));
  const head: Event = { op: -1, isCall: false, time: -Infinity, prev: null, next: null, match: null };
  let prev = head;
  for (const e of events) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }

  // Unknown operations with the same effect (same kind, value, expected) are interchangeable once
  // both are invoked: only the earliest-invoked one not yet linearized is tried (an exchange
  // argument shows no linearization is lost). Without this, k pending unknown writes of the same
  // value would make the search explore 2^k subsets for nothing.
  const twinBefore = new Int32Array(n).fill(-1);
  const lastOfSignature = new Map<string, number>();
  for (const i of [...ops.keys()].sort((a, b) => ops[a]!.call - ops[b]!.call || a - b)) {
    const o = ops[i]!;
    if (o.definite) continue;
    const sig = `${o.src.kind} ${o.value === UNOBSERVED ? '*' : JSON.stringify(o.value)} ${JSON.stringify(o.expected)}`;
    const before = lastOfSignature.get(sig);
    if (before !== undefined) twinBefore[i] = before;
    lastOfSignature.set(sig, i);
  }
  const linearized = (i: number): boolean => (bits[i >>> 5]! & (1 << (i & 31))) !== 0;

  const z = zobrist(n);
  const bits = new Uint32Array((n + 31) >>> 5);
  const cache = new Map<number, { bits: Uint32Array; state: State }[]>();
  const remember = (h: number, state: State): boolean => {
    const bucket = cache.get(h);
    if (bucket === undefined) {
      cache.set(h, [{ bits: bits.slice(), state }]);
      return true;
    }
    outer: for (const c of bucket) {
      if (c.state !== state) continue;
      for (let i = 0; i < bits.length; i++) if (c.bits[i] !== bits[i]) continue outer;
      return false;
    }
    bucket.push({ bits: bits.slice(), state });
    return true;
  };
  const lift = (call: Event): void => {
    call.prev!.next = call.next;
    call.next!.prev = call.prev;
    const ret = call.match!;
    ret.prev!.next = ret.next;
    if (ret.next !== null) ret.next.prev = ret.prev;
  };
  const unlift = (call: Event): void => {
    const ret = call.match!;
    ret.prev!.next = ret;
    if (ret.next !== null) ret.next.prev = ret;
    call.prev!.next = call;
    call.next!.prev = call;
  };

  const stack: { call: Event; state: State; hash: number }[] = [];
  const watchedStates = new Set<State>();
  let state = initial;
  let hash = 0;
  let maxDepth = -1;
  let blocking = -1;
  let entry = head.next;
  let steps = 0;
  for (;;) {
    if (++steps > maxSteps) return { kind: 'budget' };
    if (entry === null) return { kind: 'ok' };
    if (entry.isCall) {
      const i = entry.op;
      const twin = twinBefore[i]!;
      const next = twin !== -1 && !linearized(twin) ? REFUSED : step(state, ops[i]!);
      if (next !== REFUSED) {
        bits[i >>> 5]! |= 1 << (i & 31);
        const h = (hash ^ z[i]!) >>> 0;
        if (remember((h ^ hashState(next)) >>> 0, next)) {
          stack.push({ call: entry, state, hash });
          state = next;
          hash = h;
          lift(entry);
          entry = head.next;
          continue;
        }
        bits[i >>> 5]! &= ~(1 << (i & 31));
      }
      entry = entry.next;
      continue;
    }
    if (entry.time === Infinity) return { kind: 'ok' }; // only operations of unknown outcome are left
    if (stack.length > maxDepth) {
      maxDepth = stack.length;
      blocking = entry.op;
    }
    if (entry.op === watch) watchedStates.add(state);
    const top = stack.pop();
    if (top === undefined) return { kind: 'fail', blocking, watchedStates };
    const i = top.call.op;
    bits[i >>> 5]! &= ~(1 << (i & 31));
    state = top.state;
    hash = top.hash;
    unlift(top.call);
    entry = top.call.next;
  }
}
