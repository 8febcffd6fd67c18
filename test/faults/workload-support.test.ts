// How the workloads classify a failed request (src/faults/workload-support.ts): refusals that mean
// "did not happen" are fail, everything that may have happened is unknown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyError, sleep } from '../../src/faults/workload-support.js';
import { ErrorCode, ReplisqlError } from '../../src/errors.js';
import { ClientConnectionError } from '../../src/client/client.js';

test('refusals are fail; UNKNOWN_OUTCOME, lost connections, timeouts and anything else are unknown', () => {
  for (const code of [ErrorCode.NO_QUORUM, ErrorCode.NO_COORDINATOR, ErrorCode.NOT_COORDINATOR, ErrorCode.OVERLOADED, ErrorCode.TRANSACTION_ABORTED, ErrorCode.BAD_REQUEST] as const) {
    assert.equal(classifyError(new ReplisqlError(code, 'x')).outcome, 'fail', code);
  }
  assert.equal(classifyError(new ReplisqlError({ engineCode: 'SQLITE_CONSTRAINT_UNIQUE' }, 'dup')).outcome, 'fail');
  const unknown = classifyError(new ReplisqlError(ErrorCode.UNKNOWN_OUTCOME, 'no answer within 3000 ms'));
  assert.deepEqual(unknown, { outcome: 'unknown', error: 'UNKNOWN_OUTCOME: no answer within 3000 ms' });
  assert.equal(classifyError(new ReplisqlError(ErrorCode.INTERNAL, 'bad frame')).outcome, 'unknown');
  assert.equal(classifyError(new ClientConnectionError('client closed')).outcome, 'unknown');
  assert.equal(classifyError(new ClientConnectionError('no endpoint reachable within 3000 ms')).outcome, 'fail');
  assert.equal(classifyError(new Error('boom')).outcome, 'unknown');
});

test('sleep ends early when the stop signal fires', async () => {
  const stop = new AbortController();
  const started = performance.now();
  setTimeout(() => stop.abort(), 20);
  await sleep(5000, stop.signal);
  assert.ok(performance.now() - started < 1000);
  await sleep(5000, stop.signal); // already stopped: returns at once
});
