// `replisql client`: run SQL with -e, or an interactive shell in the style of the mysql client.
import { createInterface } from 'node:readline';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ReplisqlClient, type QueryOptions, type StatementResult } from '../client/client.js';
import { splitStatements } from '../sql/index.js';
import { formatStatus } from './status.js';
import { formatErrorJson, formatErrorText, renderTable, type ShellIo } from './output.js';

export const HISTORY_MAX_LINES = 1000;

export interface ClientShellOptions {
  readonly endpoints: readonly string[];
  /** SQL to run (one request, possibly several statements); interactive when absent. */
  readonly execute?: string;
  readonly json: boolean;
  readonly timeoutMs: number;
  /** Read level and write ack of every request (docs/consistency.md); the node's defaults when absent. */
  readonly queryOptions?: QueryOptions;
}

const defaultIo: ShellIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };

// ---------------------------------------------------------------- statement scanning

/**
 * True when the statement(s) typed so far are complete: the text ends with a `;` outside quotes
 * and comments, and that `;` is not inside a compound body (CREATE TRIGGER ... BEGIN ...; END;
 * or a MySQL stored program), as the SQL lexer's splitter sees it in both dialects.
 */
export function statementComplete(text: string): boolean {
  return endsWithTerminator(text) && closesStatement(text, 'sqlite') && closesStatement(text, 'mysql');
}

/** Does the final `;` end a statement? (Appending one more statement must add one more.) */
function closesStatement(text: string, dialect: 'sqlite' | 'mysql'): boolean {
  try {
    return splitStatements(`${text}\nSELECT 1`, { dialect }).length === splitStatements(text, { dialect }).length + 1;
  } catch {
    return true; // what the lexer refuses, the server will explain
  }
}

/**
 * Ends with a `;` outside '...', "...", `...` (backslash escapes, doubled quotes), -- and # line
 * comments and block comments.
 */
export function endsWithTerminator(text: string): boolean {
  let state: 'code' | "'" | '"' | '`' | 'line' | 'block' = 'code';
  let endsWithSemicolon = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    const next = text[i + 1];
    switch (state) {
      case 'code':
        if (c === "'" || c === '"' || c === '`') {
          state = c;
          endsWithSemicolon = false;
        } else if (c === '#' || (c === '-' && next === '-')) {
          state = 'line';
        } else if (c === '/' && next === '*') {
          state = 'block';
          i++;
        } else if (c === ';') {
          endsWithSemicolon = true;
        } else if (!/\s/.test(c)) {
          endsWithSemicolon = false;
        }
        break;
      case 'line':
        if (c === '\n') state = 'code';
        break;
      case 'block':
        if (c === '*' && next === '/') {
          state = 'code';
          i++;
        }
        break;
      default:
        if (c === '\\' && state !== '`') i++;
        else if (c === state) state = 'code';
    }
  }
  return endsWithSemicolon && (state === 'code' || state === 'line' || state === 'block');
}

/** True when `text` holds nothing but whitespace, comments and semicolons. */
export function isBlankSql(text: string): boolean {
  const stripped = text
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/(--|#)[^\n]*/g, ' ')
    .replace(/[;\s]/g, '');
  return stripped === '';
}

// ---------------------------------------------------------------- output

function cellText(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v);
}

function seconds(elapsedMs: number): string {
  return `(${(elapsedMs / 1000).toFixed(3)} sec)`;
}

/** mysql-style rendering of one statement's result; `elapsedMs` null omits the timing. */
export function formatResultText(r: StatementResult, elapsedMs: number | null): string {
  const time = elapsedMs === null ? '' : ` ${seconds(elapsedMs)}`;
  if (r.columns.length === 0) {
    return `Query OK, ${r.affectedRows} ${r.affectedRows === 1 ? 'row' : 'rows'} affected${time}\n`;
  }
  if (r.rows.length === 0) return `Empty set${time}\n`;
  const numeric = r.columns.map((_, c) => r.rows.every((row) => row[c] === null || typeof row[c] === 'number'));
  const table = renderTable(
    r.columns,
    r.rows.map((row) => row.map(cellText)),
    numeric.map((n) => (n ? 'right' : 'left')),
  );
  const n = r.rows.length;
  return `${table}\n${n} ${n === 1 ? 'row' : 'rows'} in set${time}\n`;
}

/** The --json line for one statement: exactly these keys in this order. */
export function formatResultJson(r: StatementResult): string {
  return JSON.stringify({ columns: r.columns, rows: r.rows, affectedRows: r.affectedRows, lastInsertId: r.lastInsertId });
}

// ---------------------------------------------------------------- running

async function runSql(client: ReplisqlClient, sql: string, json: boolean, io: ShellIo, queryOptions: QueryOptions = {}): Promise<boolean> {
  const started = performance.now();
  try {
    const { results } = await client.queryDetailed(sql, [], queryOptions);
    const elapsed = performance.now() - started;
    results.forEach((r, i) => {
      if (json) io.stdout.write(formatResultJson(r) + '\n');
      else io.stdout.write(formatResultText(r, i === results.length - 1 ? elapsed : null) + (i < results.length - 1 ? '\n' : ''));
    });
    return true;
  } catch (err) {
    if (json) io.stdout.write(formatErrorJson(err) + '\n');
    else io.stdout.write(formatErrorText(err));
    return false;
  }
}

/** Runs the client command; returns the process exit code. */
export async function runClientShell(opts: ClientShellOptions, io: ShellIo = defaultIo): Promise<number> {
  if (opts.execute !== undefined && isBlankSql(opts.execute)) {
    io.stderr.write('replisql client: -e was given no SQL statement\n');
    return 2;
  }
  let client: ReplisqlClient;
  try {
    client = await ReplisqlClient.connect(opts.endpoints, { timeoutMs: opts.timeoutMs });
  } catch (err) {
    if (opts.json) io.stdout.write(formatErrorJson(err) + '\n');
    else io.stderr.write(formatErrorText(err));
    return 1;
  }
  try {
    if (opts.execute !== undefined) return (await runSql(client, opts.execute, opts.json, io, opts.queryOptions)) ? 0 : 1;
    return await interactive(client, opts, io);
  } finally {
    await client.close();
  }
}

function historyPath(): string | null {
  const env = process.env.REPLISQL_HISTORY_FILE;
  if (env !== undefined) return env === '' ? null : env;
  return join(homedir(), '.replisql_history');
}

/** History lines, oldest first, at most HISTORY_MAX_LINES. */
export function loadHistory(path: string | null): string[] {
  if (path === null) return [];
  try {
    const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
    return lines.slice(-HISTORY_MAX_LINES);
  } catch {
    return [];
  }
}

export function saveHistory(path: string | null, linesOldestFirst: readonly string[]): void {
  if (path === null) return;
  try {
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, linesOldestFirst.slice(-HISTORY_MAX_LINES).join('\n') + '\n', { mode: 0o600 });
    renameSync(tmp, path);
  } catch {
    // history is a convenience; never fail the shell over it
  }
}

const HELP = `Statements end with ';' and may span several lines; all statements up to the ';' are sent
as one request (one id, applied at most once). Commands:
  help, \\h        this help
  status, \\s      the connected node's view of the cluster
  exit, quit, \\q  leave (or Ctrl-D); Ctrl-C clears the statement being typed
`;

async function interactive(client: ReplisqlClient, opts: ClientShellOptions, io: ShellIo): Promise<number> {
  const tty = io.stdin.isTTY === true;
  const histFile = tty ? historyPath() : null;
  let history = loadHistory(histFile);
  const rl = createInterface({
    input: io.stdin,
    output: tty ? io.stdout : undefined,
    terminal: tty,
    history: [...history].reverse(),
    historySize: HISTORY_MAX_LINES,
    removeHistoryDuplicates: true,
  });
  const PROMPT_IDLE = 'replisql> ';
  const PROMPT_TXN = 'replisql*> ';
  const MORE = '       -> ';
  /** The prompt says when a transaction is open (BEGIN ... COMMIT/ROLLBACK). */
  const prompt = (): string => (client.inTransaction ? PROMPT_TXN : PROMPT_IDLE);
  if (tty) {
    io.stdout.write(
      `Connected to ${client.endpoint ?? opts.endpoints[0]} (failover: ${opts.endpoints.join(', ')}).\n` +
        `End statements with ';'. Type 'help' for help, 'exit' to leave.\n\n`,
    );
  }
  rl.on('history', (h: string[]) => {
    history = [...h].reverse();
  });
  let buffer = '';
  let failures = 0;
  rl.on('SIGINT', () => {
    if (buffer === '') {
      rl.close();
      return;
    }
    buffer = '';
    io.stdout.write('^C\n');
    rl.setPrompt(prompt());
    rl.prompt();
  });
  rl.setPrompt(prompt());
  if (tty) rl.prompt();
  for await (const line of rl) {
    const trimmed = line.trim();
    if (buffer === '') {
      const command = trimmed.replace(/;$/, '').toLowerCase();
      if (command === '') {
        if (tty) rl.prompt();
        continue;
      }
      if (['exit', 'quit', '\\q'].includes(command)) break;
      if (command === 'help' || command === '\\h' || command === '?') {
        io.stdout.write(HELP);
        if (tty) rl.prompt();
        continue;
      }
      if (command === 'status' || command === '\\s') {
        try {
          io.stdout.write(formatStatus(await client.status(), client.endpoint));
        } catch (err) {
          io.stdout.write(formatErrorText(err));
          failures++;
        }
        if (tty) rl.prompt();
        continue;
      }
    }
    buffer = buffer === '' ? line : `${buffer}\n${line}`;
    if (statementComplete(buffer)) {
      const sql = buffer;
      buffer = '';
      if (!isBlankSql(sql) && !(await runSql(client, sql, opts.json, io, opts.queryOptions))) failures++;
      saveHistory(histFile, history);
      rl.setPrompt(prompt());
    } else {
      rl.setPrompt(MORE);
    }
    if (tty) rl.prompt();
  }
  rl.close();
  if (buffer.trim() !== '' && !isBlankSql(buffer)) {
    // Input ended in the middle of a statement (piped input without a final ';'): run it.
    if (!(await runSql(client, buffer, opts.json, io, opts.queryOptions))) failures++;
  }
  saveHistory(histFile, history);
  if (tty) io.stdout.write('Bye\n');
  return !tty && failures > 0 ? 1 : 0;
}
