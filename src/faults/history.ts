// The history model of the fault suite: one record per client operation on a register (read, write,
// compare-and-set), with its invocation and completion times and its outcome, as Jepsen, Knossos and
// Porcupine define them:
//   - `ok`: the operation took effect, once, at some instant between invocation and completion, and
//     `result` is what it returned;
//   - `fail`: it certainly did not take effect (the checker ignores it);
//   - `unknown` (timeout, UNKNOWN_OUTCOME, connection lost after sending): it may or may not have
//     taken effect; if it did, at some instant after its invocation (completion = +infinity). An
//     unknown read constrains nothing and is dropped by the checker.
// Also a recorder that hands out ids and times, and a JSON-lines (de)serializer for history files.

export type RegisterValue = number | string | null;
export type OpKind = 'read' | 'write' | 'cas';
export type Outcome = 'ok' | 'fail' | 'unknown';
export type RegisterKey = number | string;

export interface Operation {
  readonly id: number;
  /** The client (logical process) that issued it; a process has at most one operation in flight. */
  readonly process: number;
  readonly kind: OpKind;
  readonly key: RegisterKey;
  /** write: the value written; cas: the value written when it succeeds. */
  readonly value?: RegisterValue;
  /** cas: the value the register must hold for the cas to succeed. */
  readonly expected?: RegisterValue;
  /** read: the value read (null: no value); cas: whether it succeeded. Only for outcome `ok`. */
  readonly result?: RegisterValue | boolean;
  /** performance.now() when the request was sent (ms, monotonic). */
  readonly invokedAt: number;
  /** performance.now() when the answer arrived; null while pending or when the outcome is unknown. */
  readonly completedAt: number | null;
  readonly outcome: Outcome;
  /** Why it failed or is unknown (an error code and message), for people reading the history. */
  readonly error?: string;
}

/** Records operations as a workload issues them: invoke() before sending, complete() on the answer. */
export class HistoryRecorder {
  private readonly ops: Operation[] = [];
  private readonly open = new Map<number, Operation>();
  private nextId = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  invoke(process: number, kind: OpKind, key: RegisterKey, args: { readonly value?: RegisterValue; readonly expected?: RegisterValue } = {}): number {
    const id = this.nextId++;
    const op: Operation = {
      id,
      process,
      kind,
      key,
      ...(args.value !== undefined ? { value: args.value } : {}),
      ...(args.expected !== undefined ? { expected: args.expected } : {}),
      invokedAt: this.now(),
      completedAt: null,
      outcome: 'unknown',
    };
    this.open.set(id, op);
    return id;
  }

  /** Ends an invoked operation. An unknown outcome keeps completedAt null (concurrent with all later). */
  complete(id: number, outcome: Outcome, result?: RegisterValue | boolean, error?: string): Operation {
    const op = this.open.get(id);
    if (op === undefined) throw new Error(`operation ${id} was not invoked or is already complete`);
    this.open.delete(id);
    const done: Operation = {
      ...op,
      ...(outcome === 'ok' && result !== undefined ? { result } : {}),
      completedAt: outcome === 'unknown' ? null : this.now(),
      outcome,
      ...(error !== undefined ? { error } : {}),
    };
    this.ops.push(done);
    return done;
  }

  /** Completed operations plus the ones still open (as unknown), ordered by invocation. */
  history(): Operation[] {
    return [...this.ops, ...this.open.values()].sort((a, b) => a.invokedAt - b.invokedAt || a.id - b.id);
  }
}

// ---------------------------------------------------------------- JSON lines

/** One JSON object per line, in the order given. */
export function serializeHistory(ops: readonly Operation[]): string {
  return ops.map((op) => JSON.stringify(op)).join('\n') + (ops.length > 0 ? '\n' : '');
}

/** Parses a history file; throws an Error naming the line and the field that is wrong. */
export function parseHistory(text: string): Operation[] {
  const out: Operation[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new Error(`history line ${i + 1}: not JSON (${(err as Error).message})`);
    }
    const op = readOperation(value);
    if (typeof op === 'string') throw new Error(`history line ${i + 1}: ${op}`);
    out.push(op);
  });
  return out;
}

const isValue = (v: unknown): v is RegisterValue => v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

/** Validates one record; returns the operation or a sentence saying what is wrong. */
export function readOperation(value: unknown): Operation | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'an operation must be a JSON object';
  const o = value as Record<string, unknown>;
  if (!Number.isInteger(o['id'])) return '"id" must be an integer';
  if (!Number.isInteger(o['process'])) return '"process" must be an integer';
  const kind = o['kind'];
  if (kind !== 'read' && kind !== 'write' && kind !== 'cas') return `"kind" must be read, write or cas, got ${JSON.stringify(kind)}`;
  const key = o['key'];
  if (typeof key !== 'string' && !(typeof key === 'number' && Number.isFinite(key))) return '"key" must be a number or a string';
  const outcome = o['outcome'];
  if (outcome !== 'ok' && outcome !== 'fail' && outcome !== 'unknown') return `"outcome" must be ok, fail or unknown, got ${JSON.stringify(outcome)}`;
  const invokedAt = o['invokedAt'];
  if (typeof invokedAt !== 'number' || !Number.isFinite(invokedAt)) return '"invokedAt" must be a finite number';
  const completedAt = o['completedAt'];
  if (completedAt !== null && (typeof completedAt !== 'number' || !Number.isFinite(completedAt))) return '"completedAt" must be a finite number or null';
  if (outcome !== 'unknown' && completedAt === null) return `an operation with outcome ${outcome} needs "completedAt"`;
  if (typeof completedAt === 'number' && completedAt < invokedAt) return '"completedAt" is before "invokedAt"';
  if ((kind === 'write' || kind === 'cas') && !isValue(o['value'])) return `a ${kind} needs "value" (number, string or null)`;
  if (kind === 'cas' && !isValue(o['expected'])) return 'a cas needs "expected" (number, string or null)';
  const result = o['result'];
  if (outcome === 'ok' && kind === 'read' && !isValue(result)) return 'an ok read needs "result" (the value read, or null)';
  if (outcome === 'ok' && kind === 'cas' && typeof result !== 'boolean') return 'an ok cas needs a boolean "result"';
  if (o['error'] !== undefined && typeof o['error'] !== 'string') return '"error" must be a string';
  return {
    id: o['id'] as number,
    process: o['process'] as number,
    kind,
    key,
    ...(o['value'] !== undefined ? { value: o['value'] as RegisterValue } : {}),
    ...(o['expected'] !== undefined ? { expected: o['expected'] as RegisterValue } : {}),
    ...(result !== undefined ? { result: result as RegisterValue | boolean } : {}),
    invokedAt,
    completedAt: completedAt as number | null,
    outcome,
    ...(o['error'] !== undefined ? { error: o['error'] as string } : {}),
  };
}

/** `#12 p3 cas(1 -> 2) = true [10.0, 12.5] ok` — one line for explanations and reports. */
export function describeOperation(op: Operation): string {
  const v = (x: RegisterValue | boolean | undefined): string => (x === undefined ? '?' : JSON.stringify(x));
  const what =
    op.kind === 'read'
      ? `read${op.outcome === 'ok' ? ` = ${v(op.result)}` : ''}`
      : op.kind === 'write'
        ? `write ${v(op.value)}`
        : `cas(${v(op.expected)} -> ${v(op.value)})${op.outcome === 'ok' ? ` = ${v(op.result)}` : ''}`;
  const end = op.completedAt === null ? '∞' : op.completedAt.toFixed(1);
  return `#${op.id} p${op.process} key ${JSON.stringify(op.key)} ${what} [${op.invokedAt.toFixed(1)}, ${end}] ${op.outcome}`;
}
