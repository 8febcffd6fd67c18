// Lexer-level view of function calls: `name (` ... `)`, with the parentheses matched.
import type { Token } from './tokenizer.js';

export interface ParenIndex {
  /** For every token, the index of the innermost '(' around it, or -1. */
  readonly enclosing: Int32Array;
  /** For a '(' token, the index of its ')' (-1 when unbalanced); -1 for other tokens. */
  readonly match: Int32Array;
}

/** Matches the parentheses of tokens[from, to). Indices in the result are relative to `from`. */
export function indexParens(tokens: readonly Token[], from: number, to: number): ParenIndex {
  const len = Math.max(0, to - from);
  const enclosing = new Int32Array(len).fill(-1);
  const match = new Int32Array(len).fill(-1);
  const stack: number[] = [];
  for (let k = 0; k < len; k++) {
    const t = tokens[from + k]!;
    if (t.kind === 'rparen') {
      const open = stack.pop();
      if (open !== undefined) match[open] = k;
      enclosing[k] = stack.length > 0 ? stack[stack.length - 1]! : -1;
      continue;
    }
    enclosing[k] = stack.length > 0 ? stack[stack.length - 1]! : -1;
    if (t.kind === 'lparen') stack.push(k);
  }
  return { enclosing, match };
}

/**
 * Words after which `name (` names a table, view, index, trigger or CTE rather than
 * calling a function: `INSERT INTO date(a) ...`, `CREATE VIEW random(x) AS ...`, `WITH changes(n) AS`.
 */
const NAME_CONTEXT: ReadonlySet<string> = new Set([
  'INTO',
  'TABLE',
  'UPDATE',
  'REFERENCES',
  'INDEX',
  'TRIGGER',
  'VIEW',
  'EXISTS',
  'WITH',
  'RECURSIVE',
]);

/** True when tokens[i] is a bare word immediately followed by '(' used as a function call. */
export function isCallAt(tokens: readonly Token[], i: number, from: number, to: number): boolean {
  const t = tokens[i];
  if (t === undefined || t.kind !== 'word' || i + 1 >= to || tokens[i + 1]!.kind !== 'lparen') return false;
  return !isNameContext(tokens, i, from);
}

/** True when tokens[i] follows a '.', i.e. is a qualified name such as `t.current_timestamp`. */
export function isAfterDot(tokens: readonly Token[], i: number, from: number): boolean {
  if (i <= from) return false;
  const prev = tokens[i - 1]!;
  return prev.kind === 'op' && prev.text === '.';
}

/** True when the word at i is in a position where it can only be a name (after '.', INTO, ...). */
export function isNameContext(tokens: readonly Token[], i: number, from: number): boolean {
  if (i <= from) return false;
  const prev = tokens[i - 1]!;
  if (prev.kind === 'op' && prev.text === '.') return true;
  return prev.kind === 'word' && NAME_CONTEXT.has(prev.text.toUpperCase());
}

/** Index (relative) of the argument of the call whose '(' is at relative `open` that contains relative `k`. */
export function argumentIndex(tokens: readonly Token[], from: number, open: number, k: number): number {
  let depth = 0;
  let arg = 0;
  for (let j = open + 1; j < k; j++) {
    const t = tokens[from + j]!;
    if (t.kind === 'lparen') depth++;
    else if (t.kind === 'rparen') depth--;
    else if (t.kind === 'comma' && depth === 0) arg++;
  }
  return arg;
}

/** Number of top-level arguments between the '(' at relative `open` and its ')' at relative `close`. */
export function argumentCount(tokens: readonly Token[], from: number, open: number, close: number): number {
  if (close === open + 1) return 0;
  return argumentIndex(tokens, from, open, close) + 1;
}
