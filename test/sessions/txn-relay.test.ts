// The relay that carries interactive-transaction statements to the coordinator: two relays wired
// back to back (as over a peer connection), a runner that records what the coordinator was asked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, ReplisqlError } from '../../src/errors.js';
import { isTxnFrame, TxnRelay, type TransactionRunner } from '../../src/sessions/txn-relay.js';
import type { Logger } from '../../src/util/logger-port.js';
import type { TxnStatementOutcome } from '../../src/apply/write-executor.js';
import type { SqlValue } from '../../src/storage/sql-engine.js';

interface Recorded {
  readonly calls: string[];
  readonly warnings: string[];
}

function runner(rec: Recorded, opts: { beginFails?: boolean; hang?: boolean } = {}): TransactionRunner {
  return {
    beginTransaction: async (key) => {
      rec.calls.push(`begin ${key}`);
      if (opts.beginFails) throw new ReplisqlError(ErrorCode.NOT_COORDINATOR, 'not ready');
    },
    execInTransaction: async (key: string, sql: string, params: readonly SqlValue[]): Promise<TxnStatementOutcome> => {
      rec.calls.push(`exec ${key} ${sql} ${JSON.stringify(params)}`);
      if (opts.hang) return new Promise(() => {});
      return { ok: true, result: { columns: ['n'], rows: [[1]], affectedRows: 0, lastInsertId: null } };
    },
    rollbackTransaction: (key) => {
      rec.calls.push(`rollback ${key}`);
    },
  };
}

function logger(rec: Recorded): Logger {
  const l: Logger = {
    debug: () => {},
    info: () => {},
    warn: (_o: unknown, msg: string) => rec.warnings.push(msg),
    error: (_o: unknown, msg: string) => rec.warnings.push(msg),
    child: () => l,
  } as unknown as Logger;
  return l;
}

/** Node 1 (origin) and node 3 (coordinator), frames delivered asynchronously as over TCP. */
function pair(coordinatorOpts: { beginFails?: boolean; hang?: boolean } = {}, callTimeoutMs = 1000) {
  const origin: Recorded = { calls: [], warnings: [] };
  const coord: Recorded = { calls: [], warnings: [] };
  const relays = new Map<number, TxnRelay>();
  const send = (from: number) => (to: number, frame: object) => {
    const copy = JSON.parse(JSON.stringify(frame)) as unknown;
    setImmediate(() => relays.get(to)?.onFrame(from, copy));
  };
  relays.set(1, new TxnRelay({ selfId: 1, runner: runner(origin), send: send(1), logger: logger(origin), callTimeoutMs, maxSqlBytes: 1000 }));
  relays.set(3, new TxnRelay({ selfId: 3, runner: runner(coord, coordinatorOpts), send: send(3), logger: logger(coord), callTimeoutMs, maxSqlBytes: 1000 }));
  return { origin, coord, a: relays.get(1)!, c: relays.get(3)! };
}

test('a statement travels to the coordinator, opens the transaction first, and its result comes back', async () => {
  const { a, coord } = pair();
  const r = await a.exec(3, 'k1', true, 'SELECT ?', [1]);
  assert.deepEqual(r, { ok: true, result: { columns: ['n'], rows: [[1]], affectedRows: 0, lastInsertId: null } });
  await a.exec(3, 'k1', false, 'SELECT 2', []);
  assert.deepEqual(coord.calls, ['begin k1', 'exec k1 SELECT ? [1]', 'exec k1 SELECT 2 []']);
  a.rollback(3, 'k1');
  await new Promise((r2) => setImmediate(r2));
  assert.equal(coord.calls.at(-1), 'rollback k1');
});

test('on the coordinator itself the runner is called directly', async () => {
  const { c, coord } = pair();
  assert.equal((await c.exec(3, 'k2', true, 'SELECT 1', [])).ok, true);
  assert.deepEqual(coord.calls, ['begin k2', 'exec k2 SELECT 1 []']);
});

test('a transaction that cannot start is reported aborted; NOT_COORDINATOR becomes TRANSACTION_ABORTED', async () => {
  const { a } = pair({ beginFails: true });
  const r = await a.exec(3, 'k3', true, 'SELECT 1', []);
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.aborted, true);
    assert.equal(r.error.code, ErrorCode.TRANSACTION_ABORTED);
  }
});

test('no answer within the call timeout, or a coordinator change, ends the transaction with TRANSACTION_ABORTED', async (t) => {
  // The relay's timers do not hold a node process open; this one holds the test's.
  const keepAlive = setInterval(() => {}, 1000);
  t.after(() => clearInterval(keepAlive));
  const { a, coord } = pair({ hang: true }, 100);
  const r = await a.exec(3, 'k4', true, 'SELECT 1', []);
  assert.ok(!r.ok && r.aborted && r.error.code === ErrorCode.TRANSACTION_ABORTED && /did not answer within 100 ms/.test(r.error.message), JSON.stringify(r));
  await new Promise((r2) => setTimeout(r2, 20));
  assert.equal(coord.calls.at(-1), 'rollback k4', 'a rollback is sent after a timeout');

  const { a: a2 } = pair({ hang: true }, 10_000);
  const pending = a2.exec(3, 'k5', true, 'SELECT 1', []);
  a2.coordinatorChanged(2);
  const r2 = await pending;
  assert.ok(!r2.ok && r2.aborted && /coordinator changed/.test(r2.error.message), JSON.stringify(r2));
});

test('malformed frames from a peer are dropped with a log line; oversized SQL is refused with a clear error', async () => {
  const { c, coord } = pair();
  assert.equal(isTxnFrame({ type: 'TXN' }), true);
  assert.equal(isTxnFrame({ type: 'REPLICATE' }), false);
  c.onFrame(1, { type: 'TXN', op: 'exec', callId: 1 }); // no key
  c.onFrame(1, { type: 'TXN', op: 'drop', callId: 1, key: 'k' }); // unknown op
  c.onFrame(1, { type: 'TXN_REPLY', callId: 99, outcome: {} }); // nobody waits for it
  assert.deepEqual(coord.calls, []);
  assert.match(coord.warnings[0] ?? '', /dropped a transaction frame from node 1: TXN without a valid key/);
  const { a } = pair();
  const r = await a.exec(3, 'k6', true, `SELECT '${'x'.repeat(2000)}'`, []);
  assert.ok(!r.ok && r.error.code === ErrorCode.BAD_REQUEST && /at most 1000 bytes/.test(r.error.message), JSON.stringify(r));
});
