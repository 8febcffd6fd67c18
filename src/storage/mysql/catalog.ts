// What the database holds, read from information_schema and SHOW CREATE: its tables, views and
// triggers (replisql's own tables left out), their definitions, a table's key order. Used by dump()
// and by snapshots.
import type { Connection } from 'mysql2';
import { quoteIdent, quoteString } from './mysql-context.js';
import { rowsOf, runQuery } from './query.js';

/** A view's or trigger's definition without its DEFINER clause (which names an account of one server). */
export function stripDefiner(sql: string): string {
  return sql.replace(/\s+DEFINER\s*=\s*(`(?:[^`]|``)*`|'(?:[^']|'')*'|[A-Za-z0-9_$]+)(@(`(?:[^`]|``)*`|'(?:[^']|'')*'|[A-Za-z0-9_.%$-]+))?/i, '');
}

/** Base tables and views of the database, replisql's own left out, in byte order of their names. */
export async function listObjects(c: Connection): Promise<{ name: string; type: string }[]> {
  const rows = await rowsOf(
    c,
    "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND LEFT(TABLE_NAME, 10) <> '_replisql_' AND TABLE_TYPE IN ('BASE TABLE', 'VIEW') ORDER BY BINARY TABLE_NAME",
  );
  return rows.map((r) => ({ name: String(r[0]), type: String(r[1]) }));
}

export async function listTriggers(c: Connection): Promise<{ name: string; table: string; create: string }[]> {
  const rows = await rowsOf(
    c,
    'SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ' +
      'ORDER BY BINARY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER, BINARY TRIGGER_NAME',
  );
  const out: { name: string; table: string; create: string }[] = [];
  for (const r of rows) {
    const name = String(r[0]);
    const show = await runQuery(c, `SHOW CREATE TRIGGER ${quoteIdent(name)}`);
    if (show.kind !== 'rows') continue;
    const col = show.columns.indexOf('SQL Original Statement');
    out.push({ name, table: String(r[1]), create: String(show.rows[0]?.[col] ?? '') });
  }
  return out;
}

export async function showCreate(c: Connection, what: 'TABLE' | 'VIEW', name: string): Promise<string> {
  const rows = await rowsOf(c, `SHOW CREATE ${what} ${quoteIdent(name)}`);
  return String(rows[0]?.[1] ?? '');
}

/** Primary key columns, or every column when there is no primary key. */
export async function orderColumns(c: Connection, table: string, columns: readonly string[]): Promise<string[]> {
  const pk = await rowsOf(
    c,
    `SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${quoteString(table)} AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`,
  );
  return pk.length > 0 ? pk.map((r) => String(r[0])) : [...columns];
}
