// The one error the SQL lexer reports: the input is not lexically valid SQL
// (unterminated string, identifier or comment, ...). Bad input from a client,
// hence BAD_REQUEST; the position lets the client find the problem.
import { ErrorCode, ReplisqlError } from '../errors.js';

export class SqlLexError extends ReplisqlError {
  /** 0-based offset (UTF-16 code units) into the SQL text. */
  readonly position: number;
  /** 1-based line and column of `position`. */
  readonly line: number;
  readonly column: number;

  constructor(reason: string, sql: string, position: number) {
    const { line, column } = lineAndColumn(sql, position);
    super(ErrorCode.BAD_REQUEST, `${reason} at line ${line}, column ${column} (offset ${position})`);
    this.name = 'SqlLexError';
    this.position = position;
    this.line = line;
    this.column = column;
  }
}

function lineAndColumn(sql: string, position: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(position, sql.length);
  for (let i = 0; i < end; i++) {
    if (sql.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: position - lineStart + 1 };
}
