// A MysqlSessionPort on an in-memory better-sqlite3 database, only to exercise the protocol layer
// in tests (the node's real session is src/shell/sql-session.ts). Columns declared DATE, DATETIME,
// ... get `columnTypes` so the typed path is tested too; expressions are left to inference.
import Database from 'better-sqlite3';
import type { MysqlSessionPort, SessionOutcome, SessionStatus } from '../../../src/sessions/session-port.js';
import { sqlErrorInfo, type ErrorInfo } from '../../../src/errors.js';
import { splitStatements } from '../../../src/sql/index.js';
import type { ColumnType, SqlValue, StatementDescription, StatementResult } from '../../../src/storage/sql-engine.js';

function declaredType(decl: string | null): ColumnType | null {
  if (decl === null) return null;
  const t = decl.toUpperCase();
  if (t.includes('INT')) return 'int';
  if (/REAL|DOUBLE|FLOAT/.test(t)) return 'float';
  if (/DECIMAL|NUMERIC/.test(t)) return 'decimal';
  if (t.includes('BLOB')) return 'blob';
  if (t === 'DATE') return 'date';
  if (t.startsWith('DATETIME')) return 'datetime';
  if (t.startsWith('TIMESTAMP')) return 'timestamp';
  if (t.startsWith('TIME')) return 'time';
  if (t === 'YEAR') return 'year';
  if (/CHAR|TEXT|CLOB/.test(t)) return 'text';
  return null;
}

function toRow(values: unknown[]): unknown[] {
  return values.map((v) => {
    if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    if (Buffer.isBuffer(v)) return { $blob: v.toString('base64') };
    return v;
  });
}

function toParam(v: SqlValue): unknown {
  if (v !== null && typeof v === 'object') return Buffer.from(v.$blob, 'base64');
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' && /^-?\d{17,}$/.test(v)) return BigInt(v);
  return v;
}

function sessionError(e: unknown): ErrorInfo {
  const err = e as { code?: unknown; message?: unknown };
  return sqlErrorInfo({ engineCode: typeof err.code === 'string' ? err.code : 'SQLITE_ERROR' }, String(err.message ?? e));
}

export class SqliteTestSession implements MysqlSessionPort {
  database = 'test';
  closed = false;
  resets = 0;

  constructor(
    readonly db: Database.Database,
    withDescribe = false,
  ) {
    if (!withDescribe) this.describe = undefined;
  }

  /** COM_STMT_PREPARE's question, answered by SQLite's own prepare (absent unless asked for). */
  describe?: (sql: string) => Promise<StatementDescription | ErrorInfo> = async (sql) => {
    try {
      const stmt = this.db.prepare(sql);
      const columns = stmt.reader ? stmt.columns().map((c) => ({ name: c.name, type: declaredType(c.type) })) : [];
      return { columns };
    } catch (e) {
      return sessionError(e);
    }
  };

  static openShared(): Database.Database {
    return new Database(':memory:');
  }

  async query(sql: string, opts: { readonly multiStatements: boolean }): Promise<SessionOutcome> {
    let parts: string[];
    try {
      parts = splitStatements(sql, { dialect: 'sqlite' });
    } catch (e) {
      return { results: [], error: sqlErrorInfo({ engineCode: 'SQLITE_ERROR' }, `syntax error: ${(e as Error).message}`) };
    }
    if (parts.length > 1 && !opts.multiStatements) {
      return { results: [], error: sqlErrorInfo({ engineCode: 'ER_PARSE_ERROR' }, 'You have an error in your SQL syntax: multiple statements need CLIENT_MULTI_STATEMENTS') };
    }
    const results: StatementResult[] = [];
    for (const part of parts) {
      const r = this.run(part, []);
      if ('error' in r) return { results, error: r.error };
      results.push(r.result);
    }
    return { results, error: null };
  }

  async execute(sql: string, params: readonly SqlValue[]): Promise<SessionOutcome> {
    const r = this.run(sql, params);
    return 'error' in r ? { results: [], error: r.error } : { results: [r.result], error: null };
  }

  private run(sql: string, params: readonly SqlValue[]): { result: StatementResult } | { error: ErrorInfo } {
    try {
      const stmt = this.db.prepare(sql);
      stmt.safeIntegers(true);
      const bound = params.map(toParam);
      if (stmt.reader) {
        const cols = stmt.columns();
        const types = cols.map((c) => declaredType(c.type));
        const rows = (stmt.raw(true).all(...bound) as unknown[][]).map(toRow);
        const columnTypes = types.every((t) => t !== null) ? (types as ColumnType[]) : undefined;
        return { result: { columns: cols.map((c) => c.name), ...(columnTypes ? { columnTypes } : {}), rows, affectedRows: 0, lastInsertId: null } };
      }
      const info = stmt.run(...bound);
      const id = info.lastInsertRowid;
      return {
        result: {
          columns: [],
          rows: [],
          affectedRows: info.changes,
          lastInsertId: info.changes > 0 && /^\s*(insert|replace)/i.test(sql) ? (typeof id === 'bigint' ? toRow([id])[0] as number | string : id) : null,
        },
      };
    } catch (e) {
      return { error: sessionError(e) };
    }
  }

  useDatabase(name: string): ErrorInfo | null {
    if (name !== 'test') return sqlErrorInfo({ engineCode: 'ER_BAD_DB_ERROR' }, `Unknown database '${name}'`);
    this.database = name;
    return null;
  }

  status(): SessionStatus {
    return { inTransaction: this.db.inTransaction, autocommit: !this.db.inTransaction };
  }

  async reset(): Promise<void> {
    this.resets++;
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
  }
}
