// Splits a script into statements on top-level semicolons.
// SQLite: a CREATE TRIGGER body (BEGIN ...; ...; END) ends only at "; END ;", the same rule
// SQLite's own sqlite3_complete() uses, so CASE ... END inside the body is no problem.
// MySQL: CREATE PROCEDURE/FUNCTION/TRIGGER/EVENT and MariaDB's BEGIN NOT ATOMIC contain
// compound blocks; semicolons inside BEGIN ... END (and CASE ... END) do not split.
import { SqlLexError } from './lex-error.js';
import { isSqlSpace, tokenize, type Dialect, type LexOptions, type Token } from './tokenizer.js';

/** One statement of a script, as token indices and as a text span (trimmed). */
export interface StatementRange {
  /** Index of the statement's first token. */
  readonly firstToken: number;
  /** Index just past its last token (its terminating semicolon is not included). */
  readonly endToken: number;
  /** Text span of the statement, leading comments included, surrounding whitespace excluded. */
  readonly textStart: number;
  readonly textEnd: number;
}

/** Splits `sql` into its statements (original text, trimmed), dropping empty ones. */
export function splitStatements(sql: string, options: LexOptions = {}): string[] {
  const tokens = tokenize(sql, options);
  return statementRanges(sql, tokens, options.dialect ?? 'sqlite').map((r) => sql.slice(r.textStart, r.textEnd));
}

/** The statements of an already tokenized script. Statements with no token are dropped. */
export function statementRanges(sql: string, tokens: readonly Token[], dialect: Dialect): StatementRange[] {
  const splitter = dialect === 'mysql' ? new MysqlSplitter() : new SqliteSplitter();
  const out: StatementRange[] = [];
  let pieceStart = 0;
  let firstToken = 0;
  const close = (endToken: number, textEnd: number): void => {
    if (endToken > firstToken) {
      let s = pieceStart;
      let e = textEnd;
      while (s < e && isSqlSpace(sql.charCodeAt(s))) s++;
      while (e > s && isSqlSpace(sql.charCodeAt(e - 1))) e--;
      out.push({ firstToken, endToken, textStart: s, textEnd: e });
    }
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind === 'semicolon') {
      if (t.inExecComment) {
        throw new SqlLexError('semicolon inside a MySQL executable comment is not supported', sql, t.start);
      }
      if (!splitter.semicolonEnds()) continue;
      close(i, t.start);
      pieceStart = t.end;
      firstToken = i + 1;
      continue;
    }
    splitter.token(tokens, i);
  }
  close(tokens.length, sql.length);
  return out;
}

interface Splitter {
  /** Feeds a non-semicolon token. */
  token(tokens: readonly Token[], i: number): void;
  /** Feeds a semicolon; true when it ends the statement (the splitter then resets). */
  semicolonEnds(): boolean;
}

function isWord(t: Token | undefined, upper: string): boolean {
  return t !== undefined && t.kind === 'word' && t.text.length === upper.length && t.text.toUpperCase() === upper;
}

// sqlite3_complete()'s state machine (src/complete.c), on our tokens.
const S = { START: 1, NORMAL: 2, EXPLAIN: 3, CREATE: 4, TRIGGER: 5, SEMI: 6, END: 7 } as const;
type SqliteState = (typeof S)[keyof typeof S];
const K = { SEMI: 0, OTHER: 1, EXPLAIN: 2, CREATE: 3, TEMP: 4, TRIGGER: 5, END: 6 } as const;
type SqliteTokenClass = (typeof K)[keyof typeof K];
const SQLITE_KEYWORDS: ReadonlyMap<string, SqliteTokenClass> = new Map<string, SqliteTokenClass>([
  ['EXPLAIN', K.EXPLAIN],
  ['CREATE', K.CREATE],
  ['TEMP', K.TEMP],
  ['TEMPORARY', K.TEMP],
  ['TRIGGER', K.TRIGGER],
  ['END', K.END],
]);
// TRANSITIONS[state - 1][tokenClass]; columns: SEMI OTHER EXPLAIN CREATE TEMP TRIGGER END.
const TRANSITIONS: readonly (readonly SqliteState[])[] = [
  /* START   */ [1, 2, 3, 4, 2, 2, 2],
  /* NORMAL  */ [1, 2, 2, 2, 2, 2, 2],
  /* EXPLAIN */ [1, 3, 2, 4, 2, 2, 2],
  /* CREATE  */ [1, 2, 2, 2, 4, 5, 2],
  /* TRIGGER */ [6, 5, 5, 5, 5, 5, 5],
  /* SEMI    */ [6, 5, 5, 5, 5, 5, 7],
  /* END     */ [1, 5, 5, 5, 5, 5, 5],
];

class SqliteSplitter implements Splitter {
  private state: SqliteState = S.START;

  token(tokens: readonly Token[], i: number): void {
    if (this.state === S.NORMAL || this.state === S.TRIGGER) return; // keywords do not matter there
    const t = tokens[i]!;
    let cls: SqliteTokenClass = K.OTHER;
    if (t.kind === 'word' && t.text.length <= 9) cls = SQLITE_KEYWORDS.get(t.text.toUpperCase()) ?? K.OTHER;
    this.state = TRANSITIONS[this.state - 1]![cls]!;
  }

  semicolonEnds(): boolean {
    this.state = TRANSITIONS[this.state - 1]![K.SEMI]!;
    return this.state === S.START;
  }
}

/** Words that, right after CREATE, mean the object cannot hold a compound block. */
const MYSQL_PLAIN_OBJECTS: ReadonlySet<string> = new Set([
  'TABLE',
  'VIEW',
  'INDEX',
  'DATABASE',
  'SCHEMA',
  'USER',
  'ROLE',
  'SERVER',
  'TABLESPACE',
  'LOGFILE',
  'SEQUENCE',
  'UNIQUE',
  'FULLTEXT',
  'SPATIAL',
  'RESOURCE',
  'PACKAGE',
]);
const MYSQL_COMPOUND_OBJECTS: ReadonlySet<string> = new Set(['PROCEDURE', 'FUNCTION', 'TRIGGER', 'EVENT']);
/** `END IF`, `END LOOP`, ... close blocks whose opening word is not counted. */
const MYSQL_UNCOUNTED_BLOCKS: ReadonlySet<string> = new Set(['IF', 'LOOP', 'WHILE', 'REPEAT', 'FOR']);
/** How far into a CREATE statement the object kind is looked for. */
const MYSQL_HEADER_TOKENS = 24;

class MysqlSplitter implements Splitter {
  private index = 0; // token index within the statement
  private mode: 'plain' | 'create-header' | 'compound' = 'plain';
  private depth = 0;

  token(tokens: readonly Token[], i: number): void {
    const t = tokens[i]!;
    const pos = this.index++;
    if (pos === 0) {
      this.depth = 0;
      this.mode = 'plain';
      if (isWord(t, 'CREATE')) this.mode = 'create-header';
      else if (isWord(t, 'BEGIN') && isWord(tokens[i + 1], 'NOT') && isWord(tokens[i + 2], 'ATOMIC')) {
        this.mode = 'compound';
        this.depth = 1;
      }
      return;
    }
    if (this.mode === 'plain' || t.kind !== 'word') return;
    const upper = t.text.toUpperCase();
    if (this.mode === 'create-header') {
      if (MYSQL_COMPOUND_OBJECTS.has(upper)) this.mode = 'compound';
      else if (MYSQL_PLAIN_OBJECTS.has(upper) || pos > MYSQL_HEADER_TOKENS) this.mode = 'plain';
      return;
    }
    if (upper === 'BEGIN') this.depth++;
    else if (upper === 'CASE') {
      if (!isWord(tokens[i - 1], 'END')) this.depth++;
    } else if (upper === 'END') {
      const after = tokens[i + 1];
      const closesUncounted = after !== undefined && after.kind === 'word' && MYSQL_UNCOUNTED_BLOCKS.has(after.text.toUpperCase());
      if (!closesUncounted && this.depth > 0) this.depth--;
    }
  }

  semicolonEnds(): boolean {
    if (this.mode === 'compound' && this.depth > 0) return false;
    this.index = 0;
    return true;
  }
}
