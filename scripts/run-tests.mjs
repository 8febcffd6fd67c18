#!/usr/bin/env node
// Runs every test/**/*.test.ts file with node:test under tsx.
// Node 20's --test does not expand globs, so the files are listed here.
// Usage: node scripts/run-tests.mjs [--only unit|cluster|mysql] [extra files...]
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
let only = null;
const explicit = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--only') only = args[++i];
  else explicit.push(args[i]);
}

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

let files = explicit.length > 0 ? explicit : walk('test');
if (only === 'unit') files = files.filter((f) => !/\/(cluster|mysql|netns)\//.test(f));
else if (only) files = files.filter((f) => f.includes(`/${only}/`));
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
console.log(`run-tests: ${files.length} files`);
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files.map((f) => relative('.', f))],
  { stdio: 'inherit' },
);
process.exit(res.status ?? 1);
