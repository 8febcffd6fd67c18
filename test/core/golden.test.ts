// Golden protocol traces: each test/core/testdata/*.txt script is run against CoreNode by the
// interpreter in trace-script.ts, and every command's printed Readys are compared with the
// expected output written under it (etcd's datadriven style).
// Rewrite the expected outputs (then read the diff!) with:
//   REWRITE_GOLDEN=1 node --import tsx --test test/core/golden.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lineDiff, runScript } from './trace-script.js';

const DIR = join(import.meta.dirname, 'testdata');
const REWRITE = process.env['REWRITE_GOLDEN'] === '1';

const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.txt'))
  .sort();

test('golden trace scripts exist', () => {
  assert.ok(files.length >= 5, `found ${files.length} scripts in ${DIR}`);
});

for (const file of files) {
  test(`golden trace ${file}`, () => {
    const path = join(DIR, file);
    const src = readFileSync(path, 'utf8');
    const { actual, mismatches } = runScript(src);
    if (REWRITE) {
      if (actual !== src) writeFileSync(path, actual);
      return;
    }
    if (mismatches.length === 0) return;
    const report = mismatches
      .slice(0, 3)
      .map(({ command, actual: got }) => [`${file}:${command.line}: ${command.text}`, ...lineDiff(command.expected, got)].join('\n'))
      .join('\n\n');
    assert.fail(`${mismatches.length} command(s) differ ('-' expected, '+' actual):\n\n${report}\n\n(rewrite with REWRITE_GOLDEN=1 if the change is intended)`);
  });
}
