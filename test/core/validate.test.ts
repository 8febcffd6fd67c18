import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateMessage } from '../../src/core/validate.js';
import { ReplicatedLog } from '../../src/core/log.js';
import { EMPTY_SNAPSHOT } from '../../src/core/types.js';

test('valid messages pass validation unchanged', () => {
  const log = new ReplicatedLog(EMPTY_SNAPSHOT, []);
  const e = log.makeNext(1, 'command', 'r1', '{"sql":"INSERT INTO t VALUES (1)"}');
  const msg = { type: 'REPLICATE', term: 1, prevIndex: 0, prevTerm: 0, entries: [e], commitIndex: 0 };
  const v = validateMessage(JSON.parse(JSON.stringify(msg)));
  assert.ok(v.ok);
  assert.deepEqual(v.ok && v.msg, msg);
  const hb = { type: 'HEARTBEAT', term: 3, leaderId: null, lastLogIndex: 0, lastLogTerm: 0, commitIndex: 0 };
  assert.deepEqual(validateMessage(hb), { ok: true, msg: hb });
  for (const m of [
    { type: 'READ_INDEX', term: 2, requestId: 'read-1' },
    { type: 'READ_INDEX_REPLY', term: 2, requestId: 'read-1', index: 9, error: null },
    { type: 'READ_INDEX_REPLY', term: 2, requestId: 'read-1', index: 0, error: { code: 'NO_QUORUM', message: 'no majority' } },
    { type: 'READ_PROBE', term: 2, seq: 4 },
    { type: 'READ_PROBE_ACK', term: 2, seq: 4 },
    { type: 'APPLIED', term: 2, appliedIndex: 17 },
    { type: 'REPLICATE', term: 1, prevIndex: 0, prevTerm: 0, entries: [], commitIndex: 0, wantApplied: true },
  ]) {
    assert.deepEqual(validateMessage(m), { ok: true, msg: m }, m.type);
  }
});

test('bad messages are refused with a reason naming what was wrong', () => {
  const cases: [unknown, RegExp][] = [
    [null, /must be an object/],
    [[1, 2], /must be an object/],
    [{ term: 1 }, /no string 'type'/],
    [{ type: 'LAUNCH_MISSILES', term: 1 }, /unknown message type 'LAUNCH_MISSILES'/],
    [{ type: 'HEARTBEAT', term: -1 }, /'term' must be an integer/],
    [{ type: 'ELECTION', term: 1, prevote: 'yes', takeover: false, lastLogIndex: 0, lastLogTerm: 0 }, /'prevote' must be a boolean/],
    [{ type: 'REPLICATE', term: 1, prevIndex: 0, prevTerm: 0, entries: 'x', commitIndex: 0 }, /'entries' must be an array/],
    [{ type: 'REPLICATE', term: 1, prevIndex: 0, prevTerm: 0, entries: [{ index: 1, term: 1, kind: 'command', requestId: null, payload: 'x', md5: 'zz', chainHash: 'a'.repeat(32) }], commitIndex: 0 }, /'md5' must be/],
    [{ type: 'FORWARD', term: 1, requestId: 'r', command: 'x', ack: 'some' }, /'ack' must be one of one, quorum, all/],
    [{ type: 'FORWARD_REPLY', term: 1, requestId: 'r', outcome: { ok: 'maybe' } }, /outcome.ok must be a boolean/],
    [{ type: 'FORWARD_REPLY', term: 1, requestId: 'r', outcome: { ok: false, error: { code: 'SQL_ERROR', message: 'x' } } }, /outcome.error: an SQL_ERROR must carry its "sql" detail/],
    [{ type: 'FORWARD_REPLY', term: 1, requestId: 'r', outcome: { ok: false, error: { code: 'MADE_UP', message: 'x' } } }, /outcome.error: unknown error code "MADE_UP"/],
    [{ type: 'READ_INDEX_REPLY', term: 1, requestId: 'r', index: 0, error: { code: 'NOPE', message: '' } }, /READ_INDEX_REPLY error: unknown error code/],
    [{ type: 'READ_PROBE', term: 1, seq: 0 }, /'seq' must be an integer >= 1/],
    [{ type: 'APPLIED', term: 1, appliedIndex: -3 }, /'appliedIndex' must be an integer >= 0/],
    [{ type: 'REPLICATE', term: 1, prevIndex: 0, prevTerm: 0, entries: [], commitIndex: 0, wantApplied: 'yes' }, /'wantApplied' must be a boolean/],
  ];
  for (const [raw, re] of cases) {
    const v = validateMessage(raw);
    assert.equal(v.ok, false, JSON.stringify(raw));
    assert.match(!v.ok ? v.reason : '', re);
  }
});

test('an entry whose payload was altered fails verification', async () => {
  const { verifyEntry } = await import('../../src/core/log.js');
  const log = new ReplicatedLog(EMPTY_SNAPSHOT, []);
  const e = log.makeNext(1, 'command', 'r1', 'payload');
  assert.equal(verifyEntry(e, EMPTY_SNAPSHOT.chainHash), null);
  assert.match(verifyEntry({ ...e, payload: 'Payload' }, EMPTY_SNAPSHOT.chainHash) ?? '', /MD5 mismatch at index 1/);
  assert.match(verifyEntry(e, 'f'.repeat(32)) ?? '', /chain hash mismatch/);
});
