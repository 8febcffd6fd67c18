// The replicated command: what a log entry's payload holds for the SQL shell, and what a write's
// outcome looks like. The coordinator pins non-determinism before it writes the payload, so every
// replica runs exactly the same statements.
import { ErrorCode, ReplisqlError } from '../errors.js';
import type { SqlValue, Statement, StatementResult } from '../storage/sql-engine.js';

/** What a client asked for, as forwarded to the coordinator (not yet pinned). */
export interface ClientCommand {
  readonly sql: string;
  readonly params?: readonly SqlValue[];
}

/** What the log stores: statements already split and pinned. */
export interface ReplicatedCommand {
  readonly v: 1;
  readonly stmts: readonly Statement[];
}

export type WriteResult =
  | { readonly ok: true; readonly results: readonly StatementResult[] }
  | { readonly ok: false; readonly error: { readonly code: string; readonly message: string } };

/**
 * "Commit the interactive transaction `txn`": its statements already ran in a session on the
 * coordinator (src/shell/txn-relay.ts); the coordinator logs them as one entry. It travels the
 * ordinary write path, so it gets the same routing, ack levels, timeouts and de-duplication.
 */
export interface TxnCommitCommand {
  readonly txnCommit: string;
}

export function encodeClientCommand(c: ClientCommand): string {
  return JSON.stringify(c.params && c.params.length > 0 ? { sql: c.sql, params: c.params } : { sql: c.sql });
}

export function encodeTxnCommitCommand(txnKey: string): string {
  return JSON.stringify({ txnCommit: txnKey });
}

/**
 * The transaction key when `text` is a TxnCommitCommand, else null. Ordinary writes are told apart
 * by their first bytes (encodeClientCommand always starts with `{"sql":`), so they are not parsed twice.
 */
export function txnCommitKey(text: string): string | null {
  if (!text.startsWith('{"txnCommit":')) return null;
  try {
    const cmd = decodeClientCommand(text);
    return 'txnCommit' in cmd ? cmd.txnCommit : null;
  } catch {
    return null;
  }
}

export function decodeClientCommand(text: string): ClientCommand | TxnCommitCommand {
  const o = JSON.parse(text) as { sql?: unknown; params?: unknown; txnCommit?: unknown };
  if (typeof o.txnCommit === 'string') return { txnCommit: o.txnCommit };
  if (typeof o.sql !== 'string') throw new ReplisqlError(ErrorCode.BAD_REQUEST, 'forwarded command has no sql');
  return Array.isArray(o.params) ? { sql: o.sql, params: o.params as SqlValue[] } : { sql: o.sql };
}

export function encodeReplicatedCommand(stmts: readonly Statement[]): string {
  return JSON.stringify({
    v: 1,
    stmts: stmts.map((s) => ({
      sql: s.sql,
      ...(s.params && s.params.length > 0 ? { params: s.params } : {}),
      ...(s.context !== undefined && Object.keys(s.context).length > 0 ? { context: s.context } : {}),
    })),
  });
}

export function decodeReplicatedCommand(payload: string): ReplicatedCommand {
  const o = JSON.parse(payload) as { v?: unknown; stmts?: unknown };
  if (o.v !== 1 || !Array.isArray(o.stmts)) throw new ReplisqlError(ErrorCode.INTERNAL, `log entry payload has an unknown format (v=${String(o.v)})`);
  return { v: 1, stmts: o.stmts as Statement[] };
}
