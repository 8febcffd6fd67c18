// Makes SQLite write statements deterministic before they are logged, as rqlite does:
// the coordinator evaluates the non-deterministic parts once and writes literals into the
// statement text; what cannot be pinned is refused with an error that names the function.
// Only code is rewritten: strings, quoted identifiers and comments are never touched,
// and everything outside the rewritten spans is preserved byte-for-byte.
import { ErrorCode, ReplisqlError, UnsafeStatementError } from '../errors.js';
import { argumentCount, indexParens, isAfterDot, isCallAt, type ParenIndex } from './calls.js';
import { classifyTokens, pragmaName } from './classify.js';
import { statementRanges, type StatementRange } from './split.js';
import { tokenize, type Token } from './tokenizer.js';

export interface PinContext {
  /** The coordinator's wall clock for this statement, ms since the Unix epoch (UTC). */
  readonly nowMs: number;
  /** A signed 64-bit integer. */
  readonly random: () => bigint;
  /** `n` random bytes. */
  readonly randomBytes: (n: number) => Uint8Array;
}

/** Largest randomblob(N) that is pinned into the statement text. */
export const MAX_PINNED_RANDOMBLOB_BYTES = 1024 * 1024;

/** Date/time functions and the argument positions that hold a time value. */
const DATE_FUNCTIONS: ReadonlyMap<string, readonly number[]> = new Map<string, readonly number[]>([
  ['date', [0]],
  ['time', [0]],
  ['datetime', [0]],
  ['julianday', [0]],
  ['unixepoch', [0]],
  ['strftime', [1]],
  ['timediff', [0, 1]],
]);
/** These take 'now' when the time value is omitted: date() == date('now'), strftime(f) == strftime(f, 'now'). */
const IMPLICIT_NOW_ARITY: ReadonlyMap<string, number> = new Map([
  ['date', 0],
  ['time', 0],
  ['datetime', 0],
  ['julianday', 0],
  ['unixepoch', 0],
  ['strftime', 1],
]);

const CONNECTION_STATE = 'it reports state of the connection it runs on, which differs between replicas';
const REFUSED_FUNCTIONS: ReadonlyMap<string, string> = new Map([
  ['changes', CONNECTION_STATE],
  ['total_changes', CONNECTION_STATE],
  ['last_insert_rowid', `${CONNECTION_STATE}; use an explicit key or a RETURNING clause`],
  ['sqlite_version', 'replicas may run different SQLite builds'],
  ['sqlite_source_id', 'replicas may run different SQLite builds'],
  ['sqlite_compileoption_get', 'replicas may run different SQLite builds'],
  ['sqlite_compileoption_used', 'replicas may run different SQLite builds'],
  ['load_extension', "it loads native code from each replica's own file system"],
]);

const CURRENT_KEYWORDS: ReadonlySet<string> = new Set(['current_timestamp', 'current_date', 'current_time']);

/** When a non-deterministic expression stored in a schema object is evaluated. */
const SCHEMA_USE: ReadonlyMap<string, string> = new Map([
  ['CREATE TABLE', 'when a row takes the column default'],
  ['ALTER TABLE', 'when a row takes the column default'],
  ['CREATE TRIGGER', 'whenever the trigger fires'],
  ['CREATE VIEW', 'whenever the view is read, also by writes that select from it'],
  ['CREATE INDEX', 'for every indexed row'],
]);

interface Edit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

/** Literals for one pinned instant, computed once per call so every use agrees. */
class PinnedClock {
  private iso: string | null = null;
  constructor(private readonly nowMs: number) {}
  private get isoString(): string {
    if (this.iso === null) {
      const ms = this.nowMs;
      // SQLite's date functions cover years 0000-9999.
      if (!Number.isSafeInteger(ms) || ms < -62167219200000 || ms > 253402300799999) {
        throw new ReplisqlError(ErrorCode.INTERNAL, `PinContext.nowMs out of range: ${String(ms)}`);
      }
      this.iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
    }
    return this.iso;
  }
  literalFor(keyword: string): string {
    const iso = this.isoString;
    switch (keyword) {
      case 'current_date':
        return `'${iso.slice(0, 10)}'`;
      case 'current_time':
        return `'${iso.slice(11, 19)}'`;
      case 'current_timestamp':
        return `'${iso.slice(0, 10)} ${iso.slice(11, 19)}'`;
      default:
        return `'${iso.slice(0, 10)} ${iso.slice(11, 23)}'`; // 'now', millisecond precision
    }
  }
}

/**
 * Rewrites the non-deterministic parts of SQLite statements to literals, or throws
 * `UnsafeStatementError` naming what cannot be made deterministic. Meant for statements
 * that will be replicated (writes and DDL); `sql` may hold several statements.
 */
export function pinSqliteNondeterminism(sql: string, ctx: PinContext): string {
  const tokens = tokenize(sql, { dialect: 'sqlite' });
  const clock = new PinnedClock(ctx.nowMs);
  const edits: Edit[] = [];
  for (const range of statementRanges(sql, tokens, 'sqlite')) pinStatement(tokens, range, ctx, clock, edits);
  return applyEdits(sql, edits);
}

function refuse(what: string, why: string): never {
  throw new UnsafeStatementError(`${what} cannot be replicated: ${why}`);
}

function pinStatement(tokens: readonly Token[], range: StatementRange, ctx: PinContext, clock: PinnedClock, edits: Edit[]): void {
  const from = range.firstToken;
  const to = range.endToken;
  const cls = classifyTokens(tokens, from, to);
  if (cls.verb === 'ATTACH' || cls.verb === 'DETACH') {
    refuse(cls.verb, "it opens or closes a database file by a path on each replica's own disk and changes the connection's state");
  }
  if (cls.verb === 'PRAGMA' && cls.kind !== 'read') {
    refuse(
      `PRAGMA ${pragmaName(tokens, from, to)}`,
      'a PRAGMA that is not a known read-only one may change connection or file settings outside the replicated log',
    );
  }
  // In schema definitions nothing is rewritten: a literal would change the schema's meaning
  // (a DEFAULT, trigger body or view would be frozen to one instant). Such uses are refused,
  // because each replica would evaluate them on its own later.
  const schemaObject = schemaObjectOf(tokens, from, to, cls.verb);
  const pin = (what: string, edit: Edit): void => {
    if (schemaObject !== null) {
      refuse(
        `${what} in ${schemaObject}`,
        `each replica would evaluate it on its own ${SCHEMA_USE.get(schemaObject) ?? 'whenever the object is used'}, and pinning it would freeze one value into the schema`,
      );
    }
    edits.push(edit);
  };

  const parens = indexParens(tokens, from, to);
  // One frame per open parenthesis (plus the statement level), so every check below is O(1).
  const frames: Frame[] = [{ orderBy: false, dateFunction: null, nearestDateFunction: null }];
  for (let i = from; i < to; i++) {
    const k = i - from;
    const t = tokens[i]!;
    const frame = frames[frames.length - 1]!;
    switch (t.kind) {
      case 'lparen': {
        const dateFunction = k > 0 ? dateFunctionAt(tokens, from, to, k - 1) : null;
        frames.push({ orderBy: frame.orderBy, dateFunction, nearestDateFunction: dateFunction ?? frame.nearestDateFunction });
        continue;
      }
      case 'rparen':
        if (frames.length > 1) frames.pop();
        continue;
      case 'string':
        if (t.text.length === 5 || t.text.length === 11) pinTimeString(tokens, from, to, k, parens, frame, clock, pin);
        continue;
      case 'word':
        break;
      default:
        continue;
    }
    const lower = t.text.toLowerCase();
    if (lower === 'order' && tokens[i + 1]?.text.toLowerCase() === 'by' && i + 1 < to) {
      frame.orderBy = true;
      continue;
    }
    if (lower === 'limit') {
      frame.orderBy = false;
      continue;
    }
    if (CURRENT_KEYWORDS.has(lower)) {
      if (isAfterDot(tokens, i, from)) continue;
      pin(lower.toUpperCase(), { start: t.start, end: t.end, text: clock.literalFor(lower) });
      continue;
    }
    if (!isCallAt(tokens, i, from, to)) continue;
    const open = k + 1;
    const close = parens.match[open]!;
    if (close < 0) continue; // unbalanced: SQLite will reject the statement
    const closeTok = tokens[from + close]!;
    const refusal = REFUSED_FUNCTIONS.get(lower);
    if (refusal !== undefined) refuse(`${lower}()`, refusal);
    if (lower === 'random') {
      if (close !== open + 1) continue; // random(x) is an error in SQLite
      if (frame.orderBy) {
        refuse('random() in ORDER BY', 'the rows it picks would differ between replicas, and a pinned value would not order anything');
      }
      pin('random()', { start: t.start, end: closeTok.end, text: integerLiteral(ctx.random()) });
      continue;
    }
    if (lower === 'randomblob') {
      const size = literalSize(tokens, from, open, close);
      if (size === null) {
        refuse('randomblob()', 'its size must be an integer literal to be pinned; here it is an expression');
      }
      if (size > MAX_PINNED_RANDOMBLOB_BYTES) {
        refuse(`randomblob(${size})`, `pinned random blobs are limited to ${MAX_PINNED_RANDOMBLOB_BYTES} bytes`);
      }
      pin('randomblob()', { start: t.start, end: closeTok.end, text: blobLiteral(ctx.randomBytes, Math.max(1, size)) });
      continue;
    }
    const implicitArity = IMPLICIT_NOW_ARITY.get(lower);
    if (implicitArity !== undefined && argumentCount(parens, open, close) === implicitArity) {
      const literal = clock.literalFor('now');
      if (implicitArity === 0) {
        pin(`${lower}()`, { start: tokens[from + open]!.start, end: closeTok.end, text: `(${literal})` });
      } else {
        pin(`${lower}() without a time value`, { start: closeTok.start, end: closeTok.start, text: `, ${literal}` });
      }
    }
  }
}

/** Parsing context of one parenthesis level. */
interface Frame {
  /** Inside an ORDER BY list (inherited by nested parentheses). */
  orderBy: boolean;
  /** The date/time function these parentheses call, if any. */
  readonly dateFunction: string | null;
  /** The innermost date/time function call around this level, if any. */
  readonly nearestDateFunction: string | null;
}

/** 'now', 'localtime' or 'utc' as a string: pinned, refused or left alone depending on where it is. */
function pinTimeString(
  tokens: readonly Token[],
  from: number,
  to: number,
  k: number,
  parens: ParenIndex,
  frame: Frame,
  clock: PinnedClock,
  pin: (what: string, edit: Edit) => void,
): void {
  const t = tokens[from + k]!;
  const value = t.text.toLowerCase();
  if (value !== "'now'" && value !== "'localtime'" && value !== "'utc'") return;
  const fn = frame.dateFunction;
  const prev = tokens[from + k - 1];
  const next = tokens[from + k + 1];
  const direct =
    fn !== null &&
    (prev?.kind === 'lparen' || prev?.kind === 'comma') &&
    k + 1 < to - from &&
    (next?.kind === 'rparen' || next?.kind === 'comma');
  if (fn !== null && direct) {
    const arg = parens.argIndex[k]!;
    const isTimeValue = DATE_FUNCTIONS.get(fn)!.includes(arg);
    const isFormat = fn === 'strftime' && arg === 0;
    if (value === "'now'") {
      if (isTimeValue) pin(`'now' in ${fn}()`, { start: t.start, end: t.end, text: clock.literalFor('now') });
      return;
    }
    if (!isFormat) refuse(`the ${value} modifier in ${fn}()`, "its result depends on each replica's time zone");
    return;
  }
  // Not a plain argument: refuse if it can still reach a date function's time value or modifiers.
  const outer = frame.nearestDateFunction;
  if (outer !== null) {
    refuse(`${value} inside an expression passed to ${outer}()`, `only a literal ${value} argument can be pinned or checked; pass it directly`);
  }
}

/** The lower-case name when tokens[from + k] calls one of the date/time functions. */
function dateFunctionAt(tokens: readonly Token[], from: number, to: number, k: number): string | null {
  const t = tokens[from + k]!;
  if (t.kind !== 'word') return null;
  const lower = t.text.toLowerCase();
  return DATE_FUNCTIONS.has(lower) && isCallAt(tokens, from + k, from, to) ? lower : null;
}

/** "CREATE TABLE", "CREATE TRIGGER", ... when the statement defines schema (CREATE TABLE ... AS SELECT does not). */
function schemaObjectOf(tokens: readonly Token[], from: number, to: number, verb: string): string | null {
  if (verb === 'ALTER') return 'ALTER TABLE';
  if (verb !== 'CREATE') return null;
  let i = from + 1;
  while (i < to && /^(TEMP|TEMPORARY|UNIQUE|VIRTUAL)$/i.test(tokens[i]!.text)) i++;
  const object = tokens[i]?.text.toUpperCase() ?? '';
  if (object === 'TABLE') {
    // CREATE TABLE name AS SELECT ...: the SELECT runs once, so it is pinned like any write.
    let depth = 0;
    for (let j = i + 1; j < to; j++) {
      const t = tokens[j]!;
      if (t.kind === 'lparen') depth++;
      else if (t.kind === 'rparen') depth--;
      else if (depth === 0 && t.kind === 'word' && t.text.toUpperCase() === 'AS') return null;
      if (depth > 0) break; // a column list: a real schema definition
    }
  }
  return `CREATE ${object === '' ? 'statement' : object}`;
}

function literalSize(tokens: readonly Token[], from: number, open: number, close: number): number | null {
  if (close !== open + 2) return null;
  const t = tokens[from + open + 1]!;
  if (t.kind !== 'number' || !/^[0-9]+$/.test(t.text)) return null;
  return t.text.length > 9 ? Number.MAX_SAFE_INTEGER : Number(t.text);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function integerLiteral(v: bigint): string {
  if (typeof v !== 'bigint' || v < INT64_MIN || v > INT64_MAX) {
    throw new ReplisqlError(ErrorCode.INTERNAL, `PinContext.random() returned a value outside signed 64-bit: ${String(v)}`);
  }
  // Parenthesised when negative so that `x-random()` does not become the comment `x--5`.
  return v < 0n ? `(${v.toString()})` : v.toString();
}

const HEX = '0123456789ABCDEF';

function blobLiteral(randomBytes: (n: number) => Uint8Array, n: number): string {
  const bytes = randomBytes(n);
  if (!(bytes instanceof Uint8Array) || bytes.length !== n) {
    throw new ReplisqlError(ErrorCode.INTERNAL, `PinContext.randomBytes(${n}) returned the wrong length`);
  }
  const parts: string[] = new Array<string>(n);
  for (let i = 0; i < n; i++) parts[i] = HEX[bytes[i]! >> 4]! + HEX[bytes[i]! & 15]!;
  return `X'${parts.join('')}'`;
}

function applyEdits(sql: string, edits: readonly Edit[]): string {
  if (edits.length === 0) return sql;
  const sorted = [...edits].sort((a, b) => a.start - b.start || a.end - b.end);
  let out = '';
  let at = 0;
  for (const e of sorted) {
    if (e.start < at) throw new ReplisqlError(ErrorCode.INTERNAL, 'overlapping SQL rewrites');
    out += sql.slice(at, e.start) + e.text;
    at = e.end;
  }
  return out + sql.slice(at);
}
