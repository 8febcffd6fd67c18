// Snapshots of the MySQL engine: snapshotTo() writes the committed database as a snapshot file
// (snapshot-file.ts) from one consistent read snapshot; installSnapshot() loads one under staging names
// and swaps it in, with a new fencing row, by one atomic RENAME TABLE; what cannot be part of the swap
// is listed in _replisql_install first and finished on open() (recover) if a crash interrupts it.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Connection } from 'mysql2';
import { ErrorCode } from '../../errors.js';
import { fsyncPath } from '../fsync-path.js';
import { EngineCode, SqlEngineError, type AppliedState } from '../sql-engine.js';
import { listObjects, listTriggers, orderColumns, showCreate, stripDefiner } from './catalog.js';
import type { MysqlConnections } from './connections.js';
import { publicState, readFence, STATE_TABLE, type FenceRow } from './fence.js';
import { classifyMysqlError, errorCodeOf, errorMessageOf, quoteIdent, quoteString, type MysqlErrorLike } from './mysql-context.js';
import type { MysqlSettings } from './options.js';
import { query, rowsOf } from './query.js';
import { readSnapshotPlan, SNAPSHOT_FORMAT, snapshotLines, streamRows, type SnapshotPlan, type SnapshotTable } from './snapshot-file.js';

/** What an interrupted install leaves: staging tables and fencing row, old tables, views and fencing row, the step list. */
const LEFTOVER_RE = /^_replisql_(n[0-9]+|nstate|o[0-9]+|ostate|v[0-9]+|install)$/;

export class MysqlSnapshots {
  constructor(
    private readonly s: MysqlSettings,
    private readonly conn: MysqlConnections,
  ) {}

  /** On a new write connection: the fencing row, after finishing a snapshot install a crash interrupted. */
  async recover(w: Connection): Promise<FenceRow> {
    let fence = await readFence(w);
    if (fence.installPending) {
      await this.finishInstall(w);
      fence = await readFence(w);
    }
    return fence;
  }

  /**
   * Writes a logical dump of the committed database to `path` (must not exist): JSON lines with the
   * fencing row, each table's CREATE TABLE and its rows as INSERT values in primary-key order, views,
   * triggers, and a SHA-256 over everything. One consistent snapshot; fsynced.
   */
  async snapshotTo(dest: string): Promise<AppliedState> {
    this.conn.ready();
    if (typeof dest !== 'string' || dest === '') throw this.conn.misuse('snapshot path must be a non-empty string', EngineCode.BAD_SNAPSHOT);
    if (fs.existsSync(dest)) throw this.conn.misuse(`snapshot target ${dest} already exists`, EngineCode.BAD_SNAPSHOT);
    return this.conn.withReadConnection(async (c) => {
      // Start the snapshot while no write request runs, and take a metadata lock on every table, so no
      // schema change can slip between the fencing row and the tables we read.
      let fence!: FenceRow;
      let objects!: { name: string; type: string }[];
      await this.conn.onWriter(async () => {
        await query(c, 'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
        fence = await readFence(c);
        objects = await listObjects(c);
        for (const o of objects) if (o.type === 'BASE TABLE') await query(c, `SELECT 1 FROM ${quoteIdent(o.name)} LIMIT 0`);
      });
      const tmp = `${dest}.partial`;
      const fh = await fsp.open(tmp, 'wx');
      const hash = createHash('sha256');
      let lineCount = 0;
      const write = async (obj: unknown): Promise<void> => {
        const line = `${JSON.stringify(obj)}\n`;
        hash.update(line);
        lineCount++;
        await fh.write(line);
      };
      try {
        if (fence.pending !== null || fence.installPending) {
          throw new SqlEngineError(ErrorCode.SQL_ERROR, EngineCode.INTERNAL, 'a schema change or snapshot install is unfinished; try again once it is applied');
        }
        const db = await rowsOf(c, 'SELECT @@character_set_database, @@collation_database, VERSION()');
        await write({ format: SNAPSHOT_FORMAT, version: 1, fence: publicState(fence), server: String(db[0]![2]), database: { charset: db[0]![0], collation: db[0]![1] } });
        for (const o of objects.filter((x) => x.type === 'BASE TABLE')) {
          const create = await showCreate(c, 'TABLE', o.name);
          const columns = (await rowsOf(c, `SELECT COLUMN_NAME, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${quoteString(o.name)} ORDER BY ORDINAL_POSITION`))
            .filter((r) => !/GENERATED/i.test(String(r[1] ?? '')))
            .map((r) => String(r[0]));
          await write({ t: 'table', name: o.name, create, columns });
          if (columns.length === 0) continue;
          const order = await orderColumns(c, o.name, columns);
          await streamRows(
            c,
            `SELECT ${columns.map(quoteIdent).join(', ')} FROM ${quoteIdent(o.name)} ORDER BY ${order.map(quoteIdent).join(', ')}`,
            async (values) => write({ t: 'rows', values }),
          );
        }
        for (const v of objects.filter((x) => x.type === 'VIEW')) await write({ t: 'view', name: v.name, create: stripDefiner(await showCreate(c, 'VIEW', v.name)) });
        for (const t of await listTriggers(c)) await write({ t: 'trigger', name: t.name, create: stripDefiner(t.create) });
        const digest = hash.digest('hex');
        await fh.write(`${JSON.stringify({ t: 'end', lines: lineCount, sha256: digest })}\n`);
        await fh.sync();
      } catch (err) {
        await fh.close().catch(() => undefined);
        await fsp.rm(tmp, { force: true });
        throw err;
      } finally {
        await query(c, 'COMMIT').catch(() => undefined);
      }
      await fh.close();
      await fsp.rename(tmp, dest);
      fsyncPath(path.dirname(path.resolve(dest)));
      return publicState(fence);
    });
  }

  /**
   * Replaces every replicated table, view and trigger with those of a snapshotTo file. The new tables
   * are loaded under staging names and swapped in, together with a new fencing row, by one atomic
   * RENAME TABLE; what cannot be part of the swap (dropping the old tables, foreign keys, views,
   * triggers) is listed in _replisql_install first and finished on open() if a crash interrupts it.
   */
  async installSnapshot(src: string): Promise<AppliedState> {
    this.conn.ready();
    if (typeof src !== 'string' || src === '') throw this.conn.misuse('snapshot path must be a non-empty string', EngineCode.BAD_SNAPSHOT);
    const plan = await readSnapshotPlan(src);
    return this.conn.readGate.shutWhile(
      () =>
        this.conn.onWriter(async (w) => {
          if (this.conn.batchOpen) throw this.conn.misuse('installSnapshot while a batch is open', EngineCode.BATCH_OPEN);
          const cur = this.conn.state!;
          if (plan.fence.appliedIndex < cur.appliedIndex) {
            throw this.conn.misuse(`snapshot at index ${plan.fence.appliedIndex} is older than the applied index ${cur.appliedIndex}`, EngineCode.BAD_SNAPSHOT);
          }
          try {
            await this.loadSnapshot(w, src, plan);
          } catch (err) {
            if (err instanceof SqlEngineError) throw err;
            const kind = classifyMysqlError(err);
            if (kind === 'connection') throw this.conn.lose(w, `snapshot install failed: ${errorMessageOf(err)}`, EngineCode.UNHEALTHY, true);
            throw this.conn.markFatal(`snapshot install failed: ${errorCodeOf(err)}: ${errorMessageOf(err)}`, EngineCode.INTERNAL);
          }
          this.conn.state = await readFence(w);
          return publicState(this.conn.state);
        }),
      () => this.conn.misuse('a snapshot install is already running'),
    );
  }

  private async loadSnapshot(w: Connection, src: string, plan: SnapshotPlan): Promise<void> {
    await this.dropLeftovers(w);
    await query(w, 'SET SESSION foreign_key_checks = 0');
    try {
      // 1. Staging tables, outside the live schema's names; foreign keys come after the swap.
      const stageName = new Map<string, string>();
      plan.tables.forEach((t, k) => stageName.set(t.name, `_replisql_n${k}`));
      const fks: string[] = [];
      for (const t of plan.tables) {
        const { create, foreignKeys } = stagingCreate(t, stageName.get(t.name)!);
        await query(w, create);
        for (const fk of foreignKeys) fks.push(`ALTER TABLE ${quoteIdent(t.name)} ADD ${fk}`);
      }
      let current: SnapshotTable | null = null;
      let inTx = false;
      for await (const line of snapshotLines(src)) {
        const o = line as { t?: string; name?: string; values?: string };
        if (o.t === 'table') {
          if (inTx) await query(w, 'COMMIT');
          current = plan.tables.find((t) => t.name === o.name) ?? null;
          await query(w, 'START TRANSACTION');
          inTx = true;
        } else if (o.t === 'rows') {
          if (current === null || typeof o.values !== 'string') throw new SqlEngineError(ErrorCode.INTERNAL, EngineCode.BAD_SNAPSHOT, 'snapshot rows before any table');
          await query(w, `INSERT INTO ${quoteIdent(stageName.get(current.name)!)} (${current.columns.map(quoteIdent).join(', ')}) VALUES ${o.values}`);
        }
      }
      if (inTx) await query(w, 'COMMIT');
      // 2. The new fencing row, marked "install pending", and the list of what remains after the swap.
      await query(w, `CREATE TABLE _replisql_nstate LIKE ${STATE_TABLE}`);
      await query(
        w,
        `INSERT INTO _replisql_nstate (id, applied_index, term, chain_hash, install_pending) VALUES (1, ${plan.fence.appliedIndex}, ${plan.fence.term}, ${quoteString(plan.fence.chainHash)}, 1)`,
      );
      const live = await listObjects(w);
      const oldTables = live.filter((o) => o.type === 'BASE TABLE');
      const oldViews = live.filter((o) => o.type === 'VIEW');
      const steps: { kind: string; stmt: string }[] = [];
      oldTables.forEach((_, j) => steps.push({ kind: 'sql', stmt: `DROP TABLE IF EXISTS ${quoteIdent(`_replisql_o${j}`)}` }));
      oldViews.forEach((_, j) => steps.push({ kind: 'sql', stmt: `DROP VIEW IF EXISTS ${quoteIdent(`_replisql_v${j}`)}` }));
      steps.push({ kind: 'sql', stmt: 'DROP TABLE IF EXISTS _replisql_ostate' });
      for (const fk of fks) steps.push({ kind: 'fk', stmt: fk });
      for (const v of plan.views) steps.push({ kind: 'view', stmt: v.create.replace(/^CREATE\s+(OR\s+REPLACE\s+)?/i, 'CREATE OR REPLACE ') });
      for (const t of plan.triggers) {
        steps.push({ kind: 'sql', stmt: `DROP TRIGGER IF EXISTS ${quoteIdent(t.name)}` });
        steps.push({ kind: 'sql', stmt: t.create });
      }
      await query(w, 'CREATE TABLE _replisql_install (seq INT UNSIGNED NOT NULL PRIMARY KEY, kind VARCHAR(8) NOT NULL, stmt LONGTEXT NOT NULL, done TINYINT NOT NULL DEFAULT 0) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4');
      for (let s = 0; s < steps.length; s++) {
        await query(w, `INSERT INTO _replisql_install (seq, kind, stmt) VALUES (${s}, ${quoteString(steps[s]!.kind)}, ${quoteString(steps[s]!.stmt)})`);
      }
      // 3. The commit point: one RENAME TABLE swaps the old objects out and the new ones in.
      const renames: string[] = [];
      oldTables.forEach((t, j) => renames.push(`${quoteIdent(t.name)} TO ${quoteIdent(`_replisql_o${j}`)}`));
      oldViews.forEach((v, j) => renames.push(`${quoteIdent(v.name)} TO ${quoteIdent(`_replisql_v${j}`)}`));
      renames.push(`${STATE_TABLE} TO _replisql_ostate`, `_replisql_nstate TO ${STATE_TABLE}`);
      for (const t of plan.tables) renames.push(`${quoteIdent(stageName.get(t.name)!)} TO ${quoteIdent(t.name)}`);
      await query(w, `RENAME TABLE ${renames.join(', ')}`);
      await this.s.opts.faults?.afterSwap?.();
      // 4. The rest, resumable.
      await this.finishInstall(w);
    } finally {
      await query(w, 'SET SESSION foreign_key_checks = 1').catch(() => undefined);
    }
  }

  /** Runs the steps _replisql_install still lists, then clears the "install pending" mark. Idempotent. */
  private async finishInstall(w: Connection): Promise<void> {
    await query(w, 'SET SESSION foreign_key_checks = 0');
    try {
      const exists = await rowsOf(w, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '_replisql_install'");
      if (Number(exists[0]![0]) > 0) {
        const steps = (await rowsOf(w, 'SELECT seq, kind, stmt FROM _replisql_install WHERE done = 0 ORDER BY seq')).map((r) => ({
          seq: Number(r[0]),
          kind: String(r[1]),
          stmt: String(r[2]),
        }));
        // Views may depend on views: retry those that fail on a missing table until no progress is made.
        let pendingViews: { seq: number; stmt: string; error: unknown }[] = [];
        for (const s of steps) {
          if (s.kind === 'view') {
            pendingViews.push({ seq: s.seq, stmt: s.stmt, error: null });
            continue;
          }
          if (pendingViews.length > 0 && s.kind !== 'fk') pendingViews = await createViews(w, pendingViews);
          try {
            await query(w, s.stmt);
          } catch (err) {
            const errno = (err as MysqlErrorLike).errno;
            const duplicateFk = s.kind === 'fk' && (errno === 1826 || errno === 1005 || errno === 1061 || errno === 121);
            if (!duplicateFk) throw err;
          }
          await query(w, `UPDATE _replisql_install SET done = 1 WHERE seq = ${s.seq}`);
        }
        if (pendingViews.length > 0) pendingViews = await createViews(w, pendingViews);
        if (pendingViews.length > 0) throw pendingViews[0]!.error;
      }
      await query(w, `UPDATE ${STATE_TABLE} SET install_pending = 0 WHERE id = 1`);
      await query(w, 'DROP TABLE IF EXISTS _replisql_install');
    } finally {
      await query(w, 'SET SESSION foreign_key_checks = 1').catch(() => undefined);
    }
  }

  /** Drops what an interrupted install left before its swap (staging tables) or after it (old tables). */
  async dropLeftovers(w: Connection): Promise<void> {
    const rows = await rowsOf(w, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND LEFT(TABLE_NAME, 10) = '_replisql_'");
    const leftovers = rows.map((r) => ({ name: String(r[0]), type: String(r[1]) })).filter((o) => LEFTOVER_RE.test(o.name));
    if (leftovers.length === 0) return;
    await query(w, 'SET SESSION foreign_key_checks = 0');
    try {
      for (const o of leftovers) await query(w, `DROP ${o.type === 'VIEW' ? 'VIEW' : 'TABLE'} IF EXISTS ${quoteIdent(o.name)}`);
    } finally {
      await query(w, 'SET SESSION foreign_key_checks = 1').catch(() => undefined);
    }
  }
}

/** CREATE TABLE for the staging name, with its FOREIGN KEY clauses taken out (added after the swap). */
function stagingCreate(t: SnapshotTable, stage: string): { create: string; foreignKeys: string[] } {
  const prefix = `CREATE TABLE ${quoteIdent(t.name)} (`;
  if (!t.create.startsWith(prefix)) {
    throw new SqlEngineError(ErrorCode.INTERNAL, EngineCode.BAD_SNAPSHOT, `mysql engine: snapshot table ${t.name} has an unexpected definition`);
  }
  const lines = t.create.split('\n');
  let close = lines.length - 1;
  while (close > 0 && !lines[close]!.startsWith(')')) close--;
  const body = lines.slice(1, close).map((l) => l.replace(/,$/, ''));
  const foreignKeys = body.filter((l) => /^\s*CONSTRAINT\s+`(?:[^`]|``)+`\s+FOREIGN KEY\s/.test(l)).map((l) => l.trim());
  const kept = body.filter((l) => !foreignKeys.includes(l.trim()));
  const create = [`CREATE TABLE ${quoteIdent(stage)} (`, kept.join(',\n'), ...lines.slice(close)].join('\n');
  return { create, foreignKeys };
}

/** Creates the views that can be created now, repeatedly; returns those still failing. */
async function createViews(w: Connection, views: { seq: number; stmt: string; error: unknown }[]): Promise<{ seq: number; stmt: string; error: unknown }[]> {
  let left = views;
  for (;;) {
    const failed: { seq: number; stmt: string; error: unknown }[] = [];
    for (const v of left) {
      try {
        await query(w, v.stmt);
        await query(w, `UPDATE _replisql_install SET done = 1 WHERE seq = ${v.seq}`);
      } catch (err) {
        if (classifyMysqlError(err) !== 'statement') throw err;
        failed.push({ ...v, error: err });
      }
    }
    if (failed.length === 0 || failed.length === left.length) return failed;
    left = failed;
  }
}
