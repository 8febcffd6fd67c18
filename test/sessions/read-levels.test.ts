// The read barrier (src/sessions/read-levels.ts): what each level waits for, with a host that
// records the calls and answers read indexes the way the core does (through deliver()).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, errorInfo, ReplisqlError } from '../../src/errors.js';
import { ReadBarrier, readLevelOf, type ReadLevel } from '../../src/sessions/read-levels.js';

function harness(answer: (requestId: string) => Parameters<ReadBarrier['deliver']>[0]) {
  const calls: string[] = [];
  const clock = { ms: 1000 };
  const barrier: ReadBarrier = new ReadBarrier({
    waitApplied: async (index) => {
      calls.push(`wait ${index}`);
    },
    requestReadIndex: (requestId) => {
      calls.push('read-index');
      queueMicrotask(() => barrier.deliver(answer(requestId)));
    },
    now: () => clock.ms,
  });
  return { barrier, calls, clock };
}

const level = (consistency: ReadLevel['consistency'], maxStalenessMs = 1000): ReadLevel => ({ consistency, maxStalenessMs });

test('local waits for nothing; session for its own last write; linearizable for the read index (and the session write, if later)', async () => {
  const { barrier, calls } = harness((requestId) => ({ requestId, ok: true, index: 40 }));
  await barrier.before(level('local'), 50);
  assert.deepEqual(calls, []);
  await barrier.before(level('session'), 0);
  await barrier.before(level('session'), 50);
  assert.deepEqual(calls, ['wait 50']);
  calls.length = 0;
  await barrier.before(level('linearizable'), 10);
  await barrier.before(level('linearizable'), 55);
  assert.deepEqual(calls, ['read-index', 'wait 40', 'wait 40', 'read-index', 'wait 40', 'wait 55']);
});

test('bounded takes a read index at most once per bound: within it reads are served at once', async () => {
  const { barrier, calls, clock } = harness((requestId) => ({ requestId, ok: true, index: 7 }));
  await barrier.before(level('bounded', 500), 0);
  assert.deepEqual(calls, ['read-index', 'wait 7', 'wait 7'], 'never fresh before the first read index');
  calls.length = 0;
  clock.ms += 400;
  await barrier.before(level('bounded', 500), 0);
  assert.deepEqual(calls, [], 'fresh as of the last read index, 400 ms ago');
  clock.ms += 200;
  await barrier.before(level('bounded', 500), 0);
  assert.deepEqual(calls, ['read-index', 'wait 7', 'wait 7'], '600 ms is past the bound');
  calls.length = 0;
  await barrier.before(level('bounded', 0), 0);
  assert.deepEqual(calls, ['read-index', 'wait 7', 'wait 7'], 'a 0 ms bound takes a read index every time');
});

test('a refused read index rejects with the cluster error', async () => {
  const { barrier } = harness((requestId) => ({ requestId, ok: false, error: errorInfo(ErrorCode.NO_QUORUM, 'coordinator 3 could not confirm') }));
  await assert.rejects(barrier.before(level('linearizable'), 0), (e: unknown) => e instanceof ReplisqlError && e.code === ErrorCode.NO_QUORUM && /could not confirm/.test(e.message));
});

test('a request names a level and bound over the default; bad values are refused with the valid ones named', () => {
  const dflt = level('session', 1000);
  assert.deepEqual(readLevelOf({}, dflt), dflt);
  assert.deepEqual(readLevelOf({ consistency: 'LINEARIZABLE' }, dflt), { consistency: 'linearizable', maxStalenessMs: 1000 });
  assert.deepEqual(readLevelOf({ consistency: 'bounded', maxStalenessMs: 0 }, dflt), { consistency: 'bounded', maxStalenessMs: 0 });
  assert.match(readLevelOf({ consistency: 'strong' }, dflt) as string, /unknown read consistency "strong" in "consistency": expected one of local, session, bounded, linearizable/);
  assert.match(readLevelOf({ maxStalenessMs: 1.5 }, dflt) as string, /maxStalenessMs must be an integer number of milliseconds from 0 to 86400000/);
  assert.match(readLevelOf({ maxStalenessMs: 86_400_001 }, dflt) as string, /from 0 to 86400000/);
});

test('the test-only weakened barrier serves every level locally', async () => {
  const calls: string[] = [];
  const weakened = new ReadBarrier({ waitApplied: async (i) => void calls.push(`wait ${i}`), requestReadIndex: () => calls.push('read-index'), now: () => 0 }, true);
  await weakened.before(level('linearizable'), 9);
  await weakened.before(level('bounded', 0), 9);
  assert.deepEqual(calls, []);
});
