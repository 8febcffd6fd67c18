// Lexer-level view of function calls: `name (` ... `)`, with the parentheses matched.
import type { Token } from './tokenizer.js';

export interface ParenIndex {
  /** For a '(' token, the index of its ')' (-1 when unbalanced); -1 for other tokens. */
  readonly match: Int32Array;
  /** For every token, how many commas precede it inside its innermost parentheses (its argument index). */
  readonly argIndex: Int32Array;
}

/**
 * Matches the parentheses of tokens[from, to) in one pass. Indices in the result are relative to
 * `from`. A ')' belongs to the level outside its own parentheses.
 */
export function indexParens(tokens: readonly Token[], from: number, to: number): ParenIndex {
  const len = Math.max(0, to - from);
  const match = new Int32Array(len).fill(-1);
  const argIndex = new Int32Array(len);
  const stack: number[] = [];
  const commas: number[] = [0]; // per open parenthesis level, the top-level level first
  for (let k = 0; k < len; k++) {
    const t = tokens[from + k]!;
    if (t.kind === 'rparen') {
      const open = stack.pop();
      if (open !== undefined) {
        match[open] = k;
        commas.pop();
      }
    }
    argIndex[k] = commas[commas.length - 1]!;
    if (t.kind === 'lparen') {
      stack.push(k);
      commas.push(0);
    } else if (t.kind === 'comma') {
      commas[commas.length - 1]!++;
    }
  }
  return { match, argIndex };
}

/** Number of arguments of the call whose '(' is at relative `open` and ')' at relative `close`. */
export function argumentCount(parens: ParenIndex, open: number, close: number): number {
  return close === open + 1 ? 0 : parens.argIndex[close - 1]! + 1;
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
