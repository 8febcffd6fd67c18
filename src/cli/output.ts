// Output shared by the client and status commands: mysql-style tables and error lines.
import Table from 'cli-table3';
import { ReplisqlError, type SqlErrorDetail } from '../errors.js';
import { ClientConnectionError } from '../client/client.js';

export interface ShellIo {
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/** What the commands print of an error: its code and message, and for SQL errors the database's detail. */
export function errorParts(err: unknown): { code: string; message: string; sql?: SqlErrorDetail } {
  if (err instanceof ReplisqlError) return err.sql === null ? { code: err.code, message: err.message } : { code: err.code, message: err.message, sql: err.sql };
  if (err instanceof ClientConnectionError) return { code: err.code, message: err.message };
  return { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/**
 * `ERROR NO_QUORUM: ...` for cluster errors; for SQL errors the database's own code, as the mysql client
 * prints them: `ERROR 1062 (23000) ER_DUP_ENTRY: Duplicate entry ...`, `ERROR SQLITE_CONSTRAINT_UNIQUE: ...`.
 */
export function formatErrorText(err: unknown): string {
  const { code, message, sql } = errorParts(err);
  if (sql === undefined) return `ERROR ${code}: ${message}\n`;
  const numbers = sql.errno === undefined ? '' : `${sql.errno}${sql.sqlState === undefined ? '' : ` (${sql.sqlState})`} `;
  return `ERROR ${numbers}${sql.engineCode}: ${message}\n`;
}

/** `{"error":{"code":"...","message":"..."}}` */
export function formatErrorJson(err: unknown): string {
  return JSON.stringify({ error: errorParts(err) });
}

const MYSQL_CHARS = {
  top: '-', 'top-mid': '+', 'top-left': '+', 'top-right': '+',
  bottom: '-', 'bottom-mid': '+', 'bottom-left': '+', 'bottom-right': '+',
  left: '|', 'left-mid': '', mid: '', 'mid-mid': '', right: '|', 'right-mid': '', middle: '|',
};

/** An ASCII table as the mysql client draws it (a rule under the header, none between rows). No trailing newline. */
export function renderTable(head: readonly string[], rows: readonly (readonly string[])[], aligns: readonly ('left' | 'right')[]): string {
  const table = new Table({
    head: head.map((h) => h.replace(/\n/g, ' ')),
    chars: MYSQL_CHARS,
    style: { head: [], border: [] },
    colAligns: [...aligns],
  });
  for (const row of rows) table.push([...row]);
  const lines = table.toString().split('\n');
  lines.splice(2, 0, lines[0]!);
  return lines.join('\n');
}
