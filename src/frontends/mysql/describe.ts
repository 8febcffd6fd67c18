// The result columns of a statement being prepared, for sessions without describe(). libmariadb (and so sysbench and the mariadb tools) needs the column count in
// the COM_STMT_PREPARE response: with 0 it ignores or mishandles the result set that EXECUTE
// returns (sysbench counted SELECTs as writes and crashed). So a statement that returns rows is run
// once with a zero row limit: `<select> LIMIT 0`, or, when it already has a top-level LIMIT or a
// locking clause, `SELECT * FROM (<select>) AS replisql_describe LIMIT 0`. Statements that return
// no rows (INSERT, UPDATE, SELECT ... INTO, ...) are not run: 0 columns.
import { tokenize, type Token } from '../../sql/index.js';

const ROW_STATEMENTS = new Set(['SELECT', 'WITH', 'VALUES', 'TABLE']);

/** The SQL that yields the statement's columns without rows, or null when it returns no rows. */
export function describeSql(sql: string): string | null {
  const tokens = tokenize(sql, { dialect: 'mysql' });
  let end = tokens.length;
  while (end > 0 && tokens[end - 1]!.kind === 'semicolon') end--;
  if (end === 0) return null;
  const first = firstWord(tokens);
  if (first === null || !ROW_STATEMENTS.has(first)) return null;
  let depth = 0;
  let needsWrap = false;
  for (let i = 0; i < end; i++) {
    const t = tokens[i]!;
    if (t.kind === 'lparen') depth++;
    else if (t.kind === 'rparen') depth--;
    else if (t.kind === 'semicolon') return null; // more than one statement: not ours to describe
    else if (depth === 0 && t.kind === 'word') {
      const w = t.text.toUpperCase();
      if (w === 'INTO') return null;
      if (w === 'LIMIT' || w === 'FOR' || w === 'LOCK' || w === 'PROCEDURE') needsWrap = true;
    }
  }
  const body = sql.slice(0, tokens[end - 1]!.end);
  return needsWrap ? `SELECT * FROM (${body}) AS replisql_describe LIMIT 0` : `${body} LIMIT 0`;
}

function firstWord(tokens: readonly Token[]): string | null {
  for (const t of tokens) {
    if (t.kind === 'lparen') continue;
    return t.kind === 'word' ? t.text.toUpperCase() : null;
  }
  return null;
}
