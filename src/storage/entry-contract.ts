// What the port (sql-engine.ts) asks of an entry given to applyEntry/applyEntries, checked the same way
// by both engines: its shape, and where it stands against the applied state (already applied, the
// next one, or refused). Each engine reports a violation with its own error (`fail`).
import { EngineCode, type AppliedState, type EntryToApply } from './sql-engine.js';

export type ContractViolation = (engineCode: EngineCode, message: string) => Error;

export function validateEntry(e: EntryToApply, fail: ContractViolation): void {
  if (e === null || typeof e !== 'object') throw fail(EngineCode.INTERNAL, 'entry must be an object');
  if (!Number.isSafeInteger(e.index) || e.index < 1) throw fail(EngineCode.INTERNAL, `entry index must be a positive integer, got ${e.index}`);
  if (!Number.isSafeInteger(e.term) || e.term < 0) throw fail(EngineCode.INTERNAL, `entry term must be a non-negative integer, got ${e.term}`);
  if (typeof e.chainHash !== 'string' || e.chainHash.length > 256) throw fail(EngineCode.INTERNAL, 'entry chainHash must be a string of at most 256 characters');
  if (!Array.isArray(e.statements)) throw fail(EngineCode.INTERNAL, 'entry statements must be an array');
}

/**
 * 'applied': the entry is at or below the applied index (skip it); 'next': it follows the applied
 * index. Throws CHAIN_MISMATCH when the applied index holds another entry than `e`, LOG_GAP for an
 * entry beyond the next, STALE_FENCE for a term lower than the applied one.
 */
export function placeEntry(cur: AppliedState, e: EntryToApply, fail: ContractViolation): 'applied' | 'next' {
  if (e.index === cur.appliedIndex && e.chainHash !== cur.chainHash) {
    // The database holds a different entry at this index than the log does: never paper over that.
    throw fail(EngineCode.CHAIN_MISMATCH, `entry ${e.index} has chain hash ${e.chainHash} but the database applied ${cur.chainHash} at that index`);
  }
  if (e.index <= cur.appliedIndex) return 'applied';
  if (e.index !== cur.appliedIndex + 1) throw fail(EngineCode.LOG_GAP, `entry ${e.index} does not follow the applied index ${cur.appliedIndex}`);
  if (e.term < cur.term) throw fail(EngineCode.STALE_FENCE, `entry ${e.index} has term ${e.term}, lower than the applied term ${cur.term}`);
  return 'next';
}
