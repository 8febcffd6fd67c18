// The core must stay a pure, deterministic state machine: no I/O, no clocks, no randomness
// outside its seeded PRNG, no asynchrony. This test reads the sources and enforces it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const CORE = join(import.meta.dirname, '..', '..', 'src', 'core');
const ALLOWED_IMPORTS = new Set(['../errors.js']);
const FORBIDDEN: readonly [RegExp, string][] = [
  [/\bDate\b/, 'Date (time comes from Tick inputs)'],
  [/Math\.random/, 'Math.random (use the seeded Prng)'],
  [/\bsetTimeout\b|\bsetInterval\b|\bsetImmediate\b|\bqueueMicrotask\b/, 'timers'],
  [/\bprocess\./, 'process'],
  [/\basync\b|\bawait\b|\bPromise\b/, 'asynchrony'],
  [/\bperformance\b/, 'performance clock'],
  [/\bconsole\./, 'console (the core reports events instead of logging)'],
  [/\brequire\(/, 'require'],
];

function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

test('src/core imports nothing with side effects and uses no clocks, randomness or async', () => {
  const files = readdirSync(CORE).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 8, 'core files found');
  const problems: string[] = [];
  for (const f of files) {
    const src = stripComments(readFileSync(join(CORE, f), 'utf8'));
    for (const m of src.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
      const spec = m[1] as string;
      const ok = spec.startsWith('./') || ALLOWED_IMPORTS.has(spec);
      if (!ok) problems.push(`${f}: imports '${spec}'`);
    }
    for (const m of src.matchAll(/\bimport\s*\(/g)) problems.push(`${f}: dynamic import at ${m.index}`);
    for (const [re, what] of FORBIDDEN) if (re.test(src)) problems.push(`${f}: uses ${what}`);
  }
  assert.deepEqual(problems, []);
});

test('the purity scan itself detects a forbidden construct', () => {
  const sample = stripComments("import { readFileSync } from 'node:fs';\nconst t = Date.now(); // fine in a comment: Math.random\n");
  assert.match(sample, /from 'node:fs'/);
  assert.ok(FORBIDDEN.some(([re]) => re.test(sample)));
  assert.ok(!/Math\.random/.test(sample), 'comments are ignored');
});
