// Running statements on a mysql2 connection: one statement at a time with its rows streamed (at most
// maxRows kept), connections that died refused at once (mysql2 would queue the command forever), and
// values and column types as the port reports them.
import type { Connection, FieldPacket } from 'mysql2';
import type { ColumnType, StatementResult } from '../sql-engine.js';
import type { MysqlErrorLike } from './mysql-context.js';

export type QueryOutcome =
  | { readonly kind: 'ok'; readonly affectedRows: number; readonly insertId: unknown; readonly serverStatus: number }
  | { readonly kind: 'rows'; readonly columns: string[]; readonly rows: unknown[][]; readonly fields: FieldPacket[]; readonly overflow: boolean };

export interface QueryOpts {
  readonly timeoutMs?: number;
  readonly maxRows?: number;
  readonly raw?: boolean;
}

export const SERVER_STATUS_IN_TRANS = 1;
export const BINARY_CHARSET = 63;

/** A value as the port reports it: Buffer → { $blob }, everything else as mysql2 cast it. */
function valueOut(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return { $blob: v.toString('base64') };
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  return v;
}

/** MySQL column type numbers (include/mysql_com.h, enum_field_types) to the port's ColumnType. */
const MYSQL_COLUMN_TYPES: ReadonlyMap<number, ColumnType> = new Map<number, ColumnType>([
  [0, 'decimal'], [246, 'decimal'],
  [1, 'int'], [2, 'int'], [3, 'int'], [8, 'int'], [9, 'int'], [16, 'int'],
  [4, 'float32'], [5, 'float'],
  [6, 'null'],
  [7, 'timestamp'], [10, 'date'], [14, 'date'], [11, 'time'], [12, 'datetime'], [13, 'year'],
  [249, 'blob'], [250, 'blob'], [251, 'blob'], [252, 'blob'], [255, 'blob'],
]);
/** The type of each result column, from mysql2's field packets. */
export function columnTypesOf(fields: readonly FieldPacket[]): ColumnType[] {
  return fields.map((f) => {
    const t = MYSQL_COLUMN_TYPES.get(f.columnType ?? 253);
    if (t === 'blob' || t === undefined) return f.characterSet === BINARY_CHARSET ? 'blob' : 'text';
    // BIT comes back as bytes.
    if (f.columnType === 16) return 'blob';
    return t;
  });
}

export function emptyResult(): StatementResult {
  return { columns: [], rows: [], affectedRows: 0, lastInsertId: null };
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

export async function endConnection(c: Connection): Promise<void> {
  await Promise.race([new Promise<void>((r) => c.end(() => r())), delay(2000)]);
  destroyConnection(c);
}

/**
 * Connections that failed or were destroyed. mysql2 queues a command sent to a destroyed connection
 * and never answers it, so runQuery refuses them itself.
 */
const deadConnections = new WeakSet<object>();

export function destroyConnection(c: Connection): void {
  deadConnections.add(c);
  c.destroy();
}

/**
 * Queries running on each connection. mysql2 does not tell a query started without a callback that its
 * connection closed (it only emits 'error' on the connection), so runQuery rejects them itself.
 */
const inFlight = new WeakMap<object, Set<(err: unknown) => void>>();

function lostConnectionError(): Error {
  return Object.assign(new Error('the connection to the server was lost'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true });
}

export function watchConnection(c: Connection): Set<(err: unknown) => void> {
  let set = inFlight.get(c);
  if (set !== undefined) return set;
  const running = new Set<(err: unknown) => void>();
  inFlight.set(c, running);
  const fail = (err: unknown): void => {
    deadConnections.add(c);
    for (const f of [...running]) f(err);
  };
  c.on('error', (err: unknown) => fail((err as MysqlErrorLike | null)?.fatal === true ? err : lostConnectionError()));
  c.on('end', () => fail(lostConnectionError()));
  set = running;
  return set;
}

/** Runs one statement on a core connection, streaming rows (at most maxRows kept). */
export function runQuery(c: Connection, sql: string, opts: QueryOpts = {}): Promise<QueryOutcome> {
  return new Promise<QueryOutcome>((resolve, reject) => {
    // mysql2 also queues commands on a connection whose socket closed without a network error.
    const state = (c as { state?: string }).state;
    if (deadConnections.has(c) || state === 'error' || state === 'disconnected') {
      deadConnections.add(c);
      reject(Object.assign(new Error('the connection was closed after a failure'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true }));
      return;
    }
    const running = watchConnection(c);
    let settled = false;
    const abort = (err: unknown): void => {
      if (settled) return;
      settled = true;
      running.delete(abort);
      reject(err);
    };
    running.add(abort);
    let fields: FieldPacket[] | null = null;
    const rows: unknown[][] = [];
    let overflow = false;
    let header: { affectedRows?: number; insertId?: unknown; serverStatus?: number } | null = null;
    const maxRows = opts.maxRows ?? Number.MAX_SAFE_INTEGER;
    const q = c.query({ sql, rowsAsArray: true, ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}), ...(opts.raw ? { typeCast: false } : {}) });
    q.on('error', (err: unknown) => {
      if ((err as MysqlErrorLike).fatal === true) deadConnections.add(c);
      abort(err);
    });
    q.on('fields', (f: FieldPacket[] | undefined) => {
      if (Array.isArray(f)) fields = f; // mysql2 emits 'fields' with undefined for an OK packet
    });
    q.on('result', (r: unknown) => {
      if (fields === null || !Array.isArray(r)) {
        header = r as typeof header;
        return;
      }
      if (rows.length >= maxRows) {
        overflow = true;
        return;
      }
      rows.push(opts.raw ? r : r.map(valueOut));
    });
    q.on('end', () => {
      if (settled) return;
      settled = true;
      running.delete(abort);
      if (fields !== null) {
        const f = fields as FieldPacket[];
        resolve({ kind: 'rows', columns: f.map((x) => x.name), rows, fields: f, overflow });
      } else {
        const h = header ?? {};
        resolve({ kind: 'ok', affectedRows: h.affectedRows ?? 0, insertId: h.insertId ?? 0, serverStatus: h.serverStatus ?? 0 });
      }
    });
  });
}

export async function query(c: Connection, sql: string, timeoutMs = 0): Promise<QueryOutcome> {
  return runQuery(c, sql, { timeoutMs });
}

export async function rowsOf(c: Connection, sql: string): Promise<unknown[][]> {
  const out = await runQuery(c, sql);
  return out.kind === 'rows' ? out.rows : [];
}
