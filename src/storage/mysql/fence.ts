// The fencing row, _replisql_state: the last entry whose effects are in the database, written in the
// same InnoDB transaction as those effects. Two markers ride along: an entry with schema changes that
// is partly applied (which statement comes next, whether a DDL had started), and a snapshot install
// whose swap happened but whose last steps did not run yet (docs/mysql.md).
import type { Connection } from 'mysql2';
import { GENESIS_CHAIN_HASH } from '../../core/types.js';
import { ErrorCode } from '../../errors.js';
import { EngineCode, SqlEngineError, type AppliedState } from '../sql-engine.js';
import { quoteString } from './mysql-context.js';
import { query, rowsOf } from './query.js';

/** The fencing row with the markers of an unfinished schema-change entry or snapshot install. */
export interface FenceRow extends AppliedState {
  /** A schema-change entry partly applied: its index, term, chain hash, and how many of its statements are done. */
  readonly pending: PendingEntry | null;
  readonly installPending: boolean;
}

export interface PendingEntry {
  readonly index: number;
  readonly term: number;
  readonly chainHash: string;
  readonly next: number;
  readonly ddlStarted: boolean;
}

export const STATE_TABLE = '_replisql_state';

const FENCE_DDL = `CREATE TABLE IF NOT EXISTS ${STATE_TABLE} (
  id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
  applied_index BIGINT UNSIGNED NOT NULL,
  term BIGINT UNSIGNED NOT NULL,
  chain_hash VARCHAR(256) NOT NULL,
  pending_index BIGINT UNSIGNED NULL,
  pending_term BIGINT UNSIGNED NULL,
  pending_hash VARCHAR(256) NULL,
  pending_next INT UNSIGNED NULL,
  pending_ddl TINYINT NOT NULL DEFAULT 0,
  install_pending TINYINT NOT NULL DEFAULT 0,
  CHECK (id = 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
const FENCE_COLUMNS = 'applied_index, term, chain_hash, pending_index, pending_term, pending_hash, pending_next, pending_ddl, install_pending';

/** Creates the fencing table and its genesis row `(0, 0, genesis)` unless they exist. */
export async function createFence(w: Connection): Promise<void> {
  await query(w, FENCE_DDL);
  await query(
    w,
    `INSERT IGNORE INTO ${STATE_TABLE} (id, applied_index, term, chain_hash) VALUES (1, 0, 0, ${quoteString(GENESIS_CHAIN_HASH)})`,
  );
}

export async function readFence(c: Connection): Promise<FenceRow> {
  const rows = await rowsOf(c, `SELECT ${FENCE_COLUMNS} FROM ${STATE_TABLE} WHERE id = 1`);
  const r = rows[0];
  if (r === undefined) throw new SqlEngineError(ErrorCode.UNHEALTHY, EngineCode.BAD_SNAPSHOT, `the ${STATE_TABLE} row is missing`);
  const pendingIndex = r[3];
  return {
    appliedIndex: Number(r[0]),
    term: Number(r[1]),
    chainHash: String(r[2]),
    pending:
      pendingIndex === null
        ? null
        : { index: Number(pendingIndex), term: Number(r[4]), chainHash: String(r[5]), next: Number(r[6] ?? 0), ddlStarted: Number(r[7]) === 1 },
    installPending: Number(r[8]) === 1,
  };
}

/** The UPDATE that records `s` as applied and clears the partly-applied marker. */
export function fenceUpdateSql(s: AppliedState): string {
  return `UPDATE ${STATE_TABLE} SET applied_index = ${s.appliedIndex}, term = ${s.term}, chain_hash = ${quoteString(s.chainHash)}, pending_index = NULL, pending_term = NULL, pending_hash = NULL, pending_next = NULL, pending_ddl = 0 WHERE id = 1`;
}

/** The UPDATE that records how far a schema-change entry got. */
export function pendingUpdateSql(p: PendingEntry): string {
  return `UPDATE ${STATE_TABLE} SET pending_index = ${p.index}, pending_term = ${p.term}, pending_hash = ${quoteString(p.chainHash)}, pending_next = ${p.next}, pending_ddl = ${p.ddlStarted ? 1 : 0} WHERE id = 1`;
}

export function publicState(s: AppliedState): AppliedState {
  return { appliedIndex: s.appliedIndex, term: s.term, chainHash: s.chainHash };
}
