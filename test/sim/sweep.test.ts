// The seed sweep CI runs on every change: 2,000 random fault schedules (3 to 7 nodes), zero
// violations allowed. A longer sweep is `npm run sweep`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const SEEDS = Number(process.env['REPLISQL_SWEEP_SEEDS'] ?? 2000);

test(`seed sweep: ${SEEDS} fault schedules without an invariant violation`, { timeout: 15 * 60_000 }, () => {
  const bin = join(ROOT, 'bin', 'replisql.js');
  assert.ok(existsSync(join(ROOT, 'dist', 'cli', 'main.js')), 'dist/ is built (npm test builds first)');
  const res = spawnSync(process.execPath, [bin, 'sim', '--seed', '1', '--seeds', String(SEEDS), '--nodes', '0', '--steps', '300', '--jobs', '2'], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const out = res.stdout + res.stderr;
  const summary = out.split('\n').find((l) => / passed, \d+ failed: seeds/.test(l)) ?? '';
  process.stdout.write(`# ${summary}\n`);
  assert.equal(res.status, 0, out.slice(-4000));
  assert.match(summary, new RegExp(`^${SEEDS} passed, 0 failed`));
});
