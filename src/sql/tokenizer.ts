// Hand-written SQL lexer for the SQLite and MySQL/MariaDB lexical forms.
// One pass, no backtracking, no regular expressions: linear in the input.
// Whitespace and comments produce no tokens; every token keeps its offsets so
// callers can cut or rewrite the original text byte-for-byte.
import { SqlLexError } from './lex-error.js';

export const DIALECTS = ['sqlite', 'mysql'] as const;
export type Dialect = (typeof DIALECTS)[number];

export const TOKEN_KINDS = [
  /** Bare identifier or keyword: `SELECT`, `t1`, `current_timestamp`. */
  'word',
  /** Quoted identifier: "x" (SQLite, MySQL with ANSI_QUOTES), `x`, [x] (SQLite). */
  'quoted',
  /** String literal: 'x' (and "x" in MySQL without ANSI_QUOTES). */
  'string',
  /** Blob/hex/bit literal with quotes: X'00ff', B'0101' (MySQL). */
  'blob',
  /** Numeric literal: 1, 1.5, .5e3, 0x1F, 0b101 (MySQL). */
  'number',
  /** Bound parameter or variable: ?, ?1, :name, @name, $name, @@sys_var. */
  'param',
  /** Any other operator or punctuation: + - * / = <= <> || . ! etc. */
  'op',
  'lparen',
  'rparen',
  'comma',
  'semicolon',
] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

export interface Token {
  readonly kind: TokenKind;
  /** Offset of the first character (UTF-16 code units). */
  readonly start: number;
  /** Offset just past the last character. */
  readonly end: number;
  /** The original text, `sql.slice(start, end)`. */
  readonly text: string;
  /** True when the token comes from inside a MySQL executable comment `/*! ... *\/`. */
  readonly inExecComment: boolean;
}

/** Token with its text cut from the source only when asked for (most tokens never are). */
class SourceToken implements Token {
  constructor(
    readonly kind: TokenKind,
    readonly start: number,
    readonly end: number,
    readonly inExecComment: boolean,
    private readonly source: string,
  ) {}
  get text(): string {
    return this.source.slice(this.start, this.end);
  }
  toJSON(): object {
    return { kind: this.kind, start: this.start, end: this.end, text: this.text, inExecComment: this.inExecComment };
  }
}

export interface LexOptions {
  /** Default 'sqlite' (the node's default engine). */
  readonly dialect?: Dialect;
  /** MySQL sql_mode NO_BACKSLASH_ESCAPES: backslash is an ordinary character in strings. */
  readonly noBackslashEscapes?: boolean;
  /** MySQL sql_mode ANSI_QUOTES: "x" is an identifier, not a string. */
  readonly ansiQuotes?: boolean;
}

// Character classes for ASCII; everything >= 0x80 counts as an identifier character
// (both SQLite and MySQL accept non-ASCII letters in bare identifiers).
const C_SPACE = 1;
const C_IDENT_START = 2;
const C_IDENT_PART = 4;
const C_DIGIT = 8;
const C_HEX = 16;
const CLASS = new Uint8Array(128);
for (const c of [9, 10, 11, 12, 13, 32]) CLASS[c] = C_SPACE;
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z_]/.test(ch)) CLASS[c]! |= C_IDENT_START | C_IDENT_PART;
  if (/[0-9]/.test(ch)) CLASS[c]! |= C_DIGIT | C_IDENT_PART;
  if (/[0-9A-Fa-f]/.test(ch)) CLASS[c]! |= C_HEX;
}
CLASS[36]! |= C_IDENT_PART; // '$' inside identifiers

function isIdentStart(c: number): boolean {
  return c >= 128 ? true : (CLASS[c]! & C_IDENT_START) !== 0;
}
function isIdentPart(c: number): boolean {
  return c >= 128 ? true : c >= 0 && (CLASS[c]! & C_IDENT_PART) !== 0;
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isHex(c: number): boolean {
  return c < 128 && c >= 0 && (CLASS[c]! & C_HEX) !== 0;
}
export function isSqlSpace(c: number): boolean {
  return c < 128 && c >= 0 && (CLASS[c]! & C_SPACE) !== 0;
}

const CH = {
  tab: 9,
  nl: 10,
  space: 32,
  bang: 33,
  dquote: 34,
  hash: 35,
  dollar: 36,
  amp: 38,
  squote: 39,
  lparen: 40,
  rparen: 41,
  star: 42,
  plus: 43,
  comma: 44,
  minus: 45,
  dot: 46,
  slash: 47,
  zero: 48,
  colon: 58,
  semi: 59,
  lt: 60,
  eq: 61,
  gt: 62,
  question: 63,
  at: 64,
  B: 66,
  M: 77,
  X: 88,
  lbracket: 91,
  backslash: 92,
  rbracket: 93,
  underscore: 95,
  backtick: 96,
  b: 98,
  x: 120,
  pipe: 124,
} as const;

/** Two- and three-character operators, longest first. */
const MULTI_OPS: readonly string[] = ['<=>', '->>', '<=', '>=', '<>', '!=', '==', '<<', '>>', '||', '&&', ':=', '->'];

/**
 * Splits `sql` into tokens. Throws `SqlLexError` (and nothing else) for an unterminated
 * string, quoted identifier, block comment or MySQL executable comment.
 */
export function tokenize(sql: string, options: LexOptions = {}): Token[] {
  const mysql = options.dialect === 'mysql';
  const backslashEscapes = mysql && options.noBackslashEscapes !== true;
  const dquoteIsString = mysql && options.ansiQuotes !== true;
  const n = sql.length;
  const out: Token[] = [];
  let inExec = false;
  let execStart = -1;
  let i = 0;


  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c < 128 && (CLASS[c]! & C_SPACE) !== 0) {
      i++;
      continue;
    }
    const next = i + 1 < n ? sql.charCodeAt(i + 1) : -1;
    switch (c) {
      case CH.minus:
        // SQLite: "--" always starts a comment. MySQL: only when followed by whitespace,
        // a control character or the end of input ("1--1" is 1 - -1 there).
        if (next === CH.minus && (!mysql || i + 2 >= n || sql.charCodeAt(i + 2) <= CH.space)) {
          i = endOfLine(sql, i + 2);
          continue;
        }
        if (next === CH.gt) {
          const len = sql.charCodeAt(i + 2) === CH.gt ? 3 : 2;
          out.push(new SourceToken('op', i, i + len, inExec, sql));
          i += len;
          continue;
        }
        out.push(new SourceToken('op', i, i + 1, inExec, sql));
        i++;
        continue;
      case CH.hash:
        if (mysql) {
          i = endOfLine(sql, i + 1);
          continue;
        }
        out.push(new SourceToken('op', i, i + 1, inExec, sql));
        i++;
        continue;
      case CH.slash:
        if (next === CH.star) {
          const third = i + 2 < n ? sql.charCodeAt(i + 2) : -1;
          const execBang =
            third === CH.bang ? 3 : third === CH.M && sql.charCodeAt(i + 3) === CH.bang ? 4 : 0;
          if (mysql && execBang > 0) {
            if (inExec) throw new SqlLexError('nested executable comment', sql, i);
            inExec = true;
            execStart = i;
            i += execBang;
            // Optional server version: 5 digits (MySQL) or 6 (MariaDB).
            let d = i;
            while (d < n && isDigit(sql.charCodeAt(d))) d++;
            if (d - i === 5 || d - i === 6) i = d;
            continue;
          }
          const close = sql.indexOf('*/', i + 2);
          if (close < 0) throw new SqlLexError('unterminated block comment', sql, i);
          i = close + 2;
          continue;
        }
        out.push(new SourceToken('op', i, i + 1, inExec, sql));
        i++;
        continue;
      case CH.star:
        if (inExec && next === CH.slash) {
          inExec = false;
          i += 2;
          continue;
        }
        out.push(new SourceToken('op', i, i + 1, inExec, sql));
        i++;
        continue;
      case CH.squote: {
        const end = quoted(sql, i, CH.squote, backslashEscapes, 'string literal');
        out.push(new SourceToken('string', i, end, inExec, sql));
        i = end;
        continue;
      }
      case CH.dquote: {
        const what = dquoteIsString ? 'string literal' : 'quoted identifier';
        const end = quoted(sql, i, CH.dquote, dquoteIsString && backslashEscapes, what);
        out.push(new SourceToken(dquoteIsString ? 'string' : 'quoted', i, end, inExec, sql));
        i = end;
        continue;
      }
      case CH.backtick: {
        const end = quoted(sql, i, CH.backtick, false, 'quoted identifier');
        out.push(new SourceToken('quoted', i, end, inExec, sql));
        i = end;
        continue;
      }
      case CH.lbracket:
        if (!mysql) {
          const close = sql.indexOf(']', i + 1);
          if (close < 0) throw new SqlLexError('unterminated [identifier]', sql, i);
          out.push(new SourceToken('quoted', i, close + 1, inExec, sql));
          i = close + 1;
          continue;
        }
        out.push(new SourceToken('op', i, i + 1, inExec, sql));
        i++;
        continue;
      case CH.lparen:
        out.push(new SourceToken('lparen', i, i + 1, inExec, sql));
        i++;
        continue;
      case CH.rparen:
        out.push(new SourceToken('rparen', i, i + 1, inExec, sql));
        i++;
        continue;
      case CH.comma:
        out.push(new SourceToken('comma', i, i + 1, inExec, sql));
        i++;
        continue;
      case CH.semi:
        out.push(new SourceToken('semicolon', i, i + 1, inExec, sql));
        i++;
        continue;
      case CH.question: {
        let j = i + 1;
        if (!mysql) while (j < n && isDigit(sql.charCodeAt(j))) j++;
        out.push(new SourceToken('param', i, j, inExec, sql));
        i = j;
        continue;
      }
      case CH.colon:
        if (next >= 0 && isIdentPart(next)) {
          const j = endOfIdent(sql, i + 1);
          out.push(new SourceToken('param', i, j, inExec, sql));
          i = j;
          continue;
        }
        if (next === CH.eq) {
          out.push(new SourceToken('op', i, i + 2, inExec, sql));
          i += 2;
          continue;
        }
        out.push(new SourceToken('op', i, i + 1, inExec, sql));
        i++;
        continue;
      case CH.at: {
        if (mysql) {
          if (next === CH.at) {
            const j = endOfIdent(sql, i + 2);
            out.push(new SourceToken('param', i, j, inExec, sql));
            i = j;
            continue;
          }
          if (next === CH.squote || next === CH.dquote || next === CH.backtick) {
            const end = quoted(sql, i + 1, next, next !== CH.backtick && backslashEscapes, 'quoted variable name');
            out.push(new SourceToken('param', i, end, inExec, sql));
            i = end;
            continue;
          }
        }
        if (next >= 0 && isIdentPart(next)) {
          const j = endOfIdent(sql, i + 1);
          out.push(new SourceToken('param', i, j, inExec, sql));
          i = j;
          continue;
        }
        out.push(new SourceToken('op', i, i + 1, inExec, sql));
        i++;
        continue;
      }
      case CH.dollar:
        if (mysql) {
          // '$' may start an identifier in MySQL.
          const j = endOfIdent(sql, i);
          out.push(new SourceToken('word', i, j, inExec, sql));
          i = j;
          continue;
        }
        if (next >= 0 && isIdentPart(next)) {
          const j = endOfIdent(sql, i + 1);
          out.push(new SourceToken('param', i, j, inExec, sql));
          i = j;
          continue;
        }
        out.push(new SourceToken('op', i, i + 1, inExec, sql));
        i++;
        continue;
      case CH.dot:
        if (isDigit(next)) {
          const j = endOfNumber(sql, i, mysql);
          out.push(new SourceToken('number', i, j, inExec, sql));
          i = j;
          continue;
        }
        out.push(new SourceToken('op', i, i + 1, inExec, sql));
        i++;
        continue;
      case CH.x:
      case CH.X:
      case CH.b:
      case CH.B:
        if (next === CH.squote && (c === CH.x || c === CH.X || mysql)) {
          const end = quoted(sql, i + 1, CH.squote, false, c === CH.x || c === CH.X ? 'blob literal' : 'bit literal');
          out.push(new SourceToken('blob', i, end, inExec, sql));
          i = end;
          continue;
        }
        break;
      default:
        break;
    }
    if (isDigit(c)) {
      const j = endOfNumber(sql, i, mysql);
      out.push(new SourceToken('number', i, j, inExec, sql));
      i = j;
      continue;
    }
    if (isIdentStart(c)) {
      const j = endOfIdent(sql, i);
      out.push(new SourceToken('word', i, j, inExec, sql));
      i = j;
      continue;
    }
    let len = 1;
    for (const op of MULTI_OPS) {
      if (sql.startsWith(op, i)) {
        len = op.length;
        break;
      }
    }
    out.push(new SourceToken('op', i, i + len, inExec, sql));
    i += len;
  }
  if (inExec) throw new SqlLexError('unterminated executable comment', sql, execStart);
  return out;
}

/** Index just past the closing quote; throws when there is none. */
function quoted(sql: string, start: number, quote: number, backslash: boolean, what: string): number {
  const end = endOfQuoted(sql, start, quote, backslash);
  if (end < 0) throw new SqlLexError(`unterminated ${what}`, sql, start);
  return end;
}

/** Index just past the closing quote, or -1. A doubled quote is an escaped quote. */
function endOfQuoted(sql: string, start: number, quote: number, backslash: boolean): number {
  const n = sql.length;
  if (!backslash) {
    const q = String.fromCharCode(quote);
    let j = start + 1;
    for (;;) {
      const k = sql.indexOf(q, j);
      if (k < 0) return -1;
      if (sql.charCodeAt(k + 1) === quote) {
        j = k + 2;
        continue;
      }
      return k + 1;
    }
  }
  for (let j = start + 1; j < n; j++) {
    const c = sql.charCodeAt(j);
    if (c === CH.backslash) {
      j++;
      continue;
    }
    if (c === quote) {
      if (sql.charCodeAt(j + 1) === quote) {
        j++;
        continue;
      }
      return j + 1;
    }
  }
  return -1;
}

function endOfLine(sql: string, from: number): number {
  const k = sql.indexOf('\n', from);
  return k < 0 ? sql.length : k + 1;
}

function endOfIdent(sql: string, from: number): number {
  const n = sql.length;
  let j = from;
  while (j < n && isIdentPart(sql.charCodeAt(j))) j++;
  return j;
}

function endOfDigits(sql: string, from: number, allowUnderscore: boolean): number {
  const n = sql.length;
  let j = from;
  while (j < n) {
    const c = sql.charCodeAt(j);
    if (isDigit(c)) j++;
    else if (allowUnderscore && c === CH.underscore && isDigit(sql.charCodeAt(j + 1)) && j > from) j++;
    else break;
  }
  return j;
}

/**
 * A numeric literal. Identifier characters glued to it (`1abc`, `0x1g`) stay in the same
 * token: SQLite rejects such a token as a whole, and MySQL reads it as one identifier, so
 * splitting it would let `1random()` look like a call to random().
 */
function endOfNumber(sql: string, start: number, mysql: boolean): number {
  const n = sql.length;
  let j = start;
  const c0 = sql.charCodeAt(start);
  const c1 = sql.charCodeAt(start + 1);
  if (c0 === CH.zero && (c1 === CH.x || c1 === CH.X) && isHex(sql.charCodeAt(start + 2))) {
    j = start + 2;
    while (j < n && isHex(sql.charCodeAt(j))) j++;
  } else if (mysql && c0 === CH.zero && (c1 === CH.b || c1 === CH.B) && (sql.charCodeAt(start + 2) | 1) === 49) {
    j = start + 2;
    while (j < n && (sql.charCodeAt(j) | 1) === 49) j++;
  } else {
    j = endOfDigits(sql, j, !mysql);
    if (sql.charCodeAt(j) === CH.dot) j = endOfDigits(sql, j + 1, !mysql);
    const e = sql.charCodeAt(j);
    if (e === 101 || e === 69) {
      let k = j + 1;
      const s = sql.charCodeAt(k);
      if (s === CH.plus || s === CH.minus) k++;
      if (isDigit(sql.charCodeAt(k))) j = endOfDigits(sql, k, !mysql);
    }
  }
  while (j < n && isIdentPart(sql.charCodeAt(j))) j++;
  return j;
}
