import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, DEFAULT_RECONNECT_BACKOFF, backoffDelayMs } from '../../src/net/backoff.js';

test('backoff: 50 ms doubling to a 2 s cap, jitter only shortens', () => {
  const p = DEFAULT_RECONNECT_BACKOFF;
  const noJitter = [0, 1, 2, 3, 4, 5, 6, 10, 100].map((a) => backoffDelayMs(p, a, 0));
  assert.deepEqual(noJitter, [50, 100, 200, 400, 800, 1600, 2000, 2000, 2000]);
  // Maximum jitter takes away half.
  assert.equal(backoffDelayMs(p, 0, 0.999999), 25);
  assert.equal(backoffDelayMs(p, 20, 0.999999), 1000);
  // Out-of-range inputs stay within [base/2, base].
  assert.equal(backoffDelayMs(p, -3, 5), 25);
  assert.equal(backoffDelayMs(p, 1e9, -1), 2000);
});

test('backoff: Backoff steps up, stays within bounds with Math.random, and resets', () => {
  const b = new Backoff();
  const delays: number[] = [];
  for (let i = 0; i < 12; i++) delays.push(b.next());
  for (const [i, d] of delays.entries()) {
    const base = Math.min(2000, 50 * 2 ** i);
    assert.ok(d >= base / 2 && d <= base, `delay ${i} = ${d} not in [${base / 2}, ${base}]`);
  }
  assert.equal(b.attempts, 12);
  b.reset();
  const first = b.next();
  assert.ok(first >= 25 && first <= 50, `after reset got ${first}`);
  const seeded = new Backoff(DEFAULT_RECONNECT_BACKOFF, () => 0);
  assert.deepEqual([seeded.next(), seeded.next(), seeded.next()], [50, 100, 200]);
});
