// The MySQL snapshot file (a logical dump): JSON lines with a header carrying the fencing row, per
// table its CREATE TABLE and its rows as INSERT values in primary-key order, views, triggers, and an
// end line with a SHA-256 over every line before it. Reading and checking it, and turning rows into
// SQL literals that read back as the same values.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import type { Connection, FieldPacket } from 'mysql2';
import { ErrorCode } from '../../errors.js';
import { EngineCode, SqlEngineError, type AppliedState } from '../sql-engine.js';
import { BINARY_CHARSET, watchConnection } from './query.js';

export const SNAPSHOT_FORMAT = 'replisql-mysql-snapshot';
/** A snapshot's INSERT statements stay below this many bytes (max_allowed_packet is 16 MiB by default on MariaDB, 64 MiB on MySQL 8). */
const SNAPSHOT_CHUNK_BYTES = 512 * 1024;

// Column type codes of the MySQL protocol.
const NUMERIC_TYPES = new Set([0, 1, 2, 3, 4, 5, 8, 9, 13, 246]);
const TEMPORAL_TYPES = new Set([7, 10, 11, 12, 14, 17, 18, 19]);
const BIT_TYPE = 16;
const JSON_TYPE = 245;

export interface SnapshotTable {
  readonly name: string;
  readonly create: string;
  readonly columns: readonly string[];
}

export interface SnapshotPlan {
  readonly fence: AppliedState;
  readonly tables: SnapshotTable[];
  readonly views: { readonly name: string; readonly create: string }[];
  readonly triggers: { readonly name: string; readonly create: string }[];
}

/** A raw text-protocol value as a SQL literal that reads back as the same value. */
function rowLiteral(v: unknown, f: FieldPacket): string {
  if (v === null || v === undefined) return 'NULL';
  const b = Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'utf8');
  const type = f.columnType ?? -1;
  if (NUMERIC_TYPES.has(type)) return b.toString('latin1');
  if (type === JSON_TYPE) return `_utf8mb4 X'${b.toString('hex')}'`; // MySQL 8 sends JSON as binary
  if (TEMPORAL_TYPES.has(type)) return `'${b.toString('latin1')}'`;
  if (type === BIT_TYPE || f.characterSet === BINARY_CHARSET) return `X'${b.toString('hex')}'`;
  return `_utf8mb4 X'${b.toString('hex')}'`;
}

/** Streams a SELECT's rows as `(..),(..)` chunks of at most SNAPSHOT_CHUNK_BYTES. */
export function streamRows(c: Connection, sql: string, onChunk: (values: string) => Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let fields: FieldPacket[] = [];
    let chunk: string[] = [];
    let bytes = 0;
    let chain = Promise.resolve();
    let failed = false;
    const running = watchConnection(c);
    const abort = (err: unknown): void => {
      if (failed) return;
      failed = true;
      running.delete(abort);
      reject(err);
    };
    running.add(abort);
    const q = c.query({ sql, rowsAsArray: true, typeCast: false });
    const flush = (): void => {
      if (chunk.length === 0) return;
      const values = chunk.join(',');
      chunk = [];
      bytes = 0;
      chain = chain.then(() => onChunk(values));
    };
    q.on('error', (err: unknown) => abort(err));
    q.on('fields', (f: FieldPacket[] | undefined) => {
      if (Array.isArray(f)) fields = f;
    });
    q.on('result', (r: unknown) => {
      if (!Array.isArray(r) || failed) return;
      try {
        const row = `(${r.map((v, i) => rowLiteral(v, fields[i]!)).join(',')})`;
        if (bytes + row.length > SNAPSHOT_CHUNK_BYTES) flush();
        chunk.push(row);
        bytes += row.length + 1;
      } catch (err) {
        abort(err);
      }
    });
    q.on('end', () => {
      if (failed) return;
      running.delete(abort);
      flush();
      chain.then(resolve, reject);
    });
  });
}

/** Reads and checks a snapshot file: header, object lines, SHA-256 of every line before the last. */
export async function readSnapshotPlan(src: string): Promise<SnapshotPlan> {
  const bad = (m: string): SqlEngineError => new SqlEngineError(ErrorCode.INTERNAL, EngineCode.BAD_SNAPSHOT, `mysql engine: ${src} is not a usable snapshot: ${m}`);
  if (!fs.existsSync(src)) throw bad('the file does not exist');
  const hash = createHash('sha256');
  let header: { format?: unknown; version?: unknown; fence?: AppliedState } | null = null;
  let end: { lines?: unknown; sha256?: unknown } | null = null;
  let lines = 0;
  const plan: SnapshotPlan = { fence: { appliedIndex: 0, term: 0, chainHash: '' }, tables: [], views: [], triggers: [] };
  const rl = readline.createInterface({ input: fs.createReadStream(src, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const text of rl) {
    if (end !== null) throw bad('data after the end line');
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw bad(`line ${lines + 1} is not JSON`);
    }
    if (o.t === 'end') {
      end = o;
      continue;
    }
    hash.update(`${text}\n`);
    lines++;
    if (header === null) {
      header = o;
      if (o.format !== SNAPSHOT_FORMAT || o.version !== 1) throw bad('unknown format');
      continue;
    }
    if (o.t === 'table' && typeof o.name === 'string' && typeof o.create === 'string' && Array.isArray(o.columns)) {
      plan.tables.push({ name: o.name, create: o.create, columns: o.columns.map(String) });
    } else if (o.t === 'view' && typeof o.name === 'string' && typeof o.create === 'string') plan.views.push({ name: o.name, create: o.create });
    else if (o.t === 'trigger' && typeof o.name === 'string' && typeof o.create === 'string') plan.triggers.push({ name: o.name, create: o.create });
    else if (o.t !== 'rows') throw bad(`line ${lines} has an unknown type`);
  }
  if (header === null) throw bad('it is empty');
  if (end === null) throw bad('it is truncated (no end line)');
  if (end.lines !== lines || end.sha256 !== hash.digest('hex')) throw bad('its checksum does not match (corrupt or truncated)');
  const f = header.fence;
  if (f === undefined || !Number.isSafeInteger(f.appliedIndex) || !Number.isSafeInteger(f.term) || typeof f.chainHash !== 'string') throw bad('no fencing row');
  return { ...plan, fence: { appliedIndex: f.appliedIndex, term: f.term, chainHash: f.chainHash } };
}

export async function* snapshotLines(src: string): AsyncGenerator<unknown> {
  const rl = readline.createInterface({ input: fs.createReadStream(src, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const text of rl) yield JSON.parse(text) as unknown;
}
