// Reads on the pooled read connections (read-only sessions): read() with all its statements in one
// consistent snapshot, describeStatement() by a server-side PREPARE, and dump(), the text two replicas
// holding the same data agree on. They never see the coordinator's open batch.
import type { FieldPacket } from 'mysql2';
import { ErrorCode } from '../../errors.js';
import { EngineCode, SqlEngineError, type Statement, type StatementDescription, type StatementResult } from '../sql-engine.js';
import { listObjects, listTriggers, showCreate, stripDefiner } from './catalog.js';
import type { MysqlConnections } from './connections.js';
import { analyzeStatement, quoteIdent, StatementRefusal, type AnalyzedStatement } from './mysql-context.js';
import type { MysqlSettings } from './options.js';
import { columnTypesOf, emptyResult, query, rowsOf, runQuery, type QueryOutcome } from './query.js';

export class MysqlReads {
  constructor(
    private readonly s: MysqlSettings,
    private readonly conn: MysqlConnections,
  ) {}

  async read(statements: readonly Statement[]): Promise<StatementResult[]> {
    this.conn.ready();
    if (!Array.isArray(statements)) throw this.conn.misuse('statements must be an array', EngineCode.INVALID_STATEMENT);
    const analyzed: AnalyzedStatement[] = [];
    for (const st of statements) {
      try {
        analyzed.push(analyzeStatement(st, 'read', this.s.lex));
      } catch (e) {
        if (e instanceof StatementRefusal) throw new SqlEngineError(ErrorCode.SQL_ERROR, e.code, e.message);
        throw e;
      }
    }
    if (analyzed.length === 0) return [];
    return this.conn.withReadConnection(async (c) => {
      const results: StatementResult[] = [];
      const many = analyzed.length > 1;
      if (many) await query(c, 'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      try {
        for (const a of analyzed) {
          const out = await runQuery(c, a.text, { timeoutMs: this.conn.clientReadTimeout(), maxRows: this.s.maxResultRows });
          results.push(this.readResult(out));
        }
      } finally {
        if (many) await query(c, 'COMMIT').catch(() => undefined);
      }
      return results;
    });
  }

  /** A server-side PREPARE on a read connection (closed again at once): MySQL's own column metadata. */
  async describeStatement(sql: string): Promise<StatementDescription> {
    this.conn.ready();
    if (typeof sql !== 'string') throw this.conn.misuse('sql must be a string', EngineCode.INVALID_STATEMENT);
    return this.conn.withReadConnection(
      (c) =>
        new Promise<StatementDescription>((resolve, reject) => {
          c.prepare(sql, (err, stmt) => {
            if (err) {
              reject(err);
              return;
            }
            const fields = (stmt as unknown as { columns?: FieldPacket[] }).columns ?? [];
            const types = columnTypesOf(fields);
            const out: StatementDescription = { columns: fields.map((f, i) => ({ name: f.name, type: types[i] ?? null })) };
            stmt.close();
            c.unprepare(sql);
            resolve(out);
          });
        }),
    );
  }

  /**
   * Text that is equal on two replicas holding the same data: the database's character set, and per
   * table its definition (AUTO_INCREMENT counter left out), row count and CHECKSUM TABLE; views and
   * triggers by definition (DEFINER left out). Read in one consistent snapshot; replisql's tables are
   * left out.
   */
  async dump(): Promise<string> {
    this.conn.ready();
    return this.conn.withReadConnection(async (c) => {
      const lines: string[] = [];
      await query(c, 'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      try {
        const db = await rowsOf(c, 'SELECT @@character_set_database, @@collation_database');
        lines.push(`database charset=${String(db[0]![0])} collation=${String(db[0]![1])}`);
        const objects = await listObjects(c);
        const tables = objects.filter((o) => o.type === 'BASE TABLE');
        const sums = new Map<string, string>();
        if (tables.length > 0) {
          const rows = await rowsOf(c, `CHECKSUM TABLE ${tables.map((t) => quoteIdent(t.name)).join(', ')}`);
          tables.forEach((t, i) => sums.set(t.name, String(rows[i]?.[1] ?? 'NULL')));
        }
        for (const t of tables) {
          const create = await showCreate(c, 'TABLE', t.name);
          const count = await rowsOf(c, `SELECT COUNT(*) FROM ${quoteIdent(t.name)}`);
          lines.push(`table ${quoteIdent(t.name)}`, `  ${create.replace(/ AUTO_INCREMENT=[0-9]+/, '').replaceAll('\n', '\n  ')}`);
          lines.push(`  rows=${String(count[0]![0])} checksum=${sums.get(t.name)}`);
        }
        for (const v of objects.filter((o) => o.type === 'VIEW')) {
          lines.push(`view ${quoteIdent(v.name)}`, `  ${stripDefiner(await showCreate(c, 'VIEW', v.name))}`);
        }
        for (const t of await listTriggers(c)) {
          lines.push(`trigger ${quoteIdent(t.name)} on ${quoteIdent(t.table)}`, `  ${stripDefiner(t.create)}`);
        }
      } finally {
        await query(c, 'COMMIT').catch(() => undefined);
      }
      return `${lines.join('\n')}\n`;
    });
  }

  private readResult(out: QueryOutcome): StatementResult {
    if (out.kind === 'ok') return emptyResult();
    if (out.overflow) throw new SqlEngineError(ErrorCode.SQL_ERROR, EngineCode.RESULT_TOO_LARGE, `the statement returned more than ${this.s.maxResultRows} rows`);
    return { columns: out.columns, columnTypes: columnTypesOf(out.fields), rows: out.rows, affectedRows: 0, lastInsertId: null };
  }
}
