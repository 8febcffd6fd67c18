// The dependency rules between subsystems (docs/architecture.md), checked on the real sources.
// Each subsystem (a folder of src/, frontends split in two) may import only the subsystems listed
// for it; a few file-level rules narrow that further. The last tests feed the checker a forbidden
// import to show that it fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';

/** Which subsystems each subsystem may import (besides itself). */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  errors: [],
  core: ['errors'],
  sql: ['errors'],
  util: ['errors'],
  wire: ['errors', 'util'],
  config: ['core', 'errors', 'util'],
  storage: ['core', 'errors', 'sql', 'util'],
  durability: ['core', 'errors', 'util'],
  net: ['core', 'errors', 'util', 'wire'],
  apply: ['core', 'errors', 'node', 'sql', 'storage', 'util'],
  sessions: ['apply', 'core', 'errors', 'sql', 'storage', 'util'],
  'frontends/json': ['apply', 'core', 'errors', 'net', 'sessions', 'sql', 'storage', 'util', 'wire'],
  'frontends/mysql': ['core', 'errors', 'sessions', 'sql', 'storage', 'util'],
  sim: ['core', 'errors', 'node'],
  client: ['core', 'errors', 'wire'],
  faults: ['client', 'core', 'errors'],
  node: ['apply', 'config', 'core', 'durability', 'errors', 'frontends/json', 'frontends/mysql', 'net', 'sessions', 'sql', 'storage', 'util', 'wire'],
  cli: ['client', 'config', 'core', 'errors', 'faults', 'node', 'sim', 'sql', 'util', 'wire'],
};

/**
 * Of src/node, only the driver and what it is built from may be used below the composition: the
 * simulator runs the driver, the applier implements a port. node-runtime.ts (real I/O) is composed
 * by the cli alone.
 */
const NODE_LIBRARY = new Set(['src/node/driver.ts', 'src/node/ports.ts', 'src/node/core-config.ts']);

export interface Violation {
  readonly file: string;
  readonly imports: string;
  readonly rule: string;
}

export function subsystemOf(file: string): string {
  const parts = file.replace(/^src\//, '').split('/');
  if (parts.length === 1) return (parts[0] as string).replace(/\.ts$/, '');
  if (parts[0] === 'frontends') return `frontends/${parts[1]}`;
  return parts[0] as string;
}

/** Checks every relative import of `sources` (path -> text, paths under src/). */
export function checkImports(sources: ReadonlyMap<string, string>): Violation[] {
  const out: Violation[] = [];
  for (const [file, text] of sources) {
    const from = subsystemOf(file);
    const allowed = MAY_IMPORT[from];
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = posix.normalize(posix.join(posix.dirname(file), m[1] as string)).replace(/\.js$/, '.ts');
      const to = subsystemOf(target);
      if (to === from) continue;
      if (allowed === undefined) out.push({ file, imports: target, rule: `subsystem '${from}' has no dependency rule` });
      else if (to === 'cli') out.push({ file, imports: target, rule: 'nothing imports the cli' });
      else if (from.startsWith('frontends/') && to.startsWith('frontends/')) out.push({ file, imports: target, rule: 'the front ends never import each other' });
      else if (!allowed.includes(to)) out.push({ file, imports: target, rule: `'${from}' may import only ${allowed.length === 0 ? 'nothing' : allowed.join(', ')}` });
      else if (to === 'node' && from !== 'cli' && !NODE_LIBRARY.has(target)) out.push({ file, imports: target, rule: `'${from}' may use only the node driver and its ports, not ${target}` });
    }
  }
  return out;
}

function readSources(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts')) out.set(p.split('\\').join('/'), readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return out;
}

test('every import in src/ follows the dependency rules', () => {
  const sources = readSources('src');
  assert.ok(sources.size > 50, 'the sources were found');
  const violations = checkImports(sources);
  assert.deepEqual(violations, [], violations.map((v) => `${v.file} -> ${v.imports}: ${v.rule}`).join('\n'));
});

test('every subsystem of src/ has a rule', () => {
  const subsystems = new Set([...readSources('src').keys()].map(subsystemOf));
  for (const s of subsystems) assert.ok(MAY_IMPORT[s] !== undefined, `no rule for ${s}`);
});

test('the checker fails on forbidden imports (core -> net, front end -> front end, anything -> cli, sim -> runtime)', () => {
  const base = readSources('src');
  const cases: [string, string, RegExp][] = [
    ['src/core/node.ts', "import { TcpTransport } from '../net/tcp-transport.js';", /'core' may import only errors/],
    ['src/frontends/mysql/server.ts', "import { ClientServer } from '../json/client-server.js';", /front ends never import each other/],
    ['src/storage/sql-engine.ts', "import { main } from '../cli/main.js';", /nothing imports the cli/],
    ['src/sim/simulator.ts', "import { NodeRuntime } from '../node/node-runtime.js';", /only the node driver and its ports/],
    ['src/sim/simulator.ts', "import { FileLogStore } from '../durability/log-store.js';", /'sim' may import only/],
  ];
  for (const [file, line, rule] of cases) {
    const sources = new Map(base);
    assert.ok(sources.has(file), `${file} exists`);
    sources.set(file, `${line}\n${sources.get(file) as string}`);
    const violations = checkImports(sources);
    assert.equal(violations.length, 1, `${file} + ${line}: ${JSON.stringify(violations)}`);
    assert.match((violations[0] as Violation).rule, rule);
  }
});
