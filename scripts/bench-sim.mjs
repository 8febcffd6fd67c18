#!/usr/bin/env node
// Speed of the deterministic simulator: simulated events per second, the duration of a sweep, and
// what that means for the CI sweep (test/sim/sweep.test.ts: 2,000 seeds, --nodes 0, --steps 300,
// --jobs 2) and for `npm run sweep` (20,000 seeds, 5 nodes, 3,000 steps).
//
//   npm run build && node scripts/bench-sim.mjs [--seeds 300] [--steps 300] [--nodes 0] [--seed 1]
//                                               [--jobs 2] [--ci-seeds 2000] [--long-seeds 5]
//
// 1. sweep() in this process (one core), the same code `replisql sim` runs;
// 2. the same seeds through the CLI with --jobs (child processes), as CI runs it;
// 3. a few seeds at the `npm run sweep` settings, to project that one too.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { sweep } from '../dist/sim/sim-cli.js';
import { commandLine, gitInfo, machineInfo, nonNegativeInt, parseArgs, positiveInt, root, table } from './bench-lib.mjs';

const USAGE = 'usage: node scripts/bench-sim.mjs [--seeds N] [--steps M] [--nodes 0|3..7] [--seed S] [--jobs J] [--ci-seeds N] [--long-seeds N]';
const opts = parseArgs(
  process.argv.slice(2),
  {
    seeds: [300, positiveInt],
    steps: [300, positiveInt],
    nodes: [0, nonNegativeInt],
    seed: [1, nonNegativeInt],
    jobs: [2, positiveInt],
    'ci-seeds': [2000, positiveInt],
    'long-seeds': [5, nonNegativeInt],
  },
  USAGE,
);

const fmtS = (s) => (s >= 120 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`);
const nodesLabel = opts.nodes === 0 ? '3..7 per seed' : String(opts.nodes);
const bin = join(root, 'bin', 'replisql.js');

console.log(`command: ${commandLine()}`);
console.log(machineInfo());
console.log(gitInfo());
console.log('');

let failures = 0;
function inProcess(seeds, steps, nodes) {
  const lines = [];
  const s = sweep({ seed: opts.seed, seeds, nodes, steps, verbose: false, write: (l) => lines.push(l) });
  for (const l of lines) if (/^FAIL|replay:/.test(l.trim())) console.log(l);
  failures += s.failures.length;
  return s;
}

function viaCli(seeds, steps, nodes, jobs) {
  const args = [bin, 'sim', '--seed', String(opts.seed), '--seeds', String(seeds), '--nodes', String(nodes), '--steps', String(steps), '--jobs', String(jobs)];
  const t0 = performance.now();
  const res = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const ms = performance.now() - t0;
  const summary = (res.stdout ?? '').split('\n').find((l) => / passed, \d+ failed/.test(l)) ?? '';
  const m = /(\d+) passed, (\d+) failed.*?(\d+) events/.exec(summary);
  if (res.status !== 0 || m === null) {
    console.log(`replisql sim ${args.slice(2).join(' ')} exited ${res.status}:\n${(res.stdout + res.stderr).slice(-2000)}`);
    failures += m === null ? seeds : Number(m[2]);
  }
  return { ms, events: m === null ? NaN : Number(m[3]), command: `node bin/replisql.js ${args.slice(1).join(' ')}` };
}

const rows = [];
const a = inProcess(opts.seeds, opts.steps, opts.nodes);
const aSecs = a.elapsedMs / 1000;
rows.push([`sweep() in-process, 1 core`, opts.seeds, opts.steps, nodesLabel, a.events, aSecs.toFixed(2), Math.round(a.events / aSecs), ((a.elapsedMs / opts.seeds)).toFixed(1)]);

const b = viaCli(opts.seeds, opts.steps, opts.nodes, opts.jobs);
const bSecs = b.ms / 1000;
rows.push([`CLI --jobs ${opts.jobs} (wall, incl. start-up)`, opts.seeds, opts.steps, nodesLabel, b.events, bSecs.toFixed(2), Math.round(b.events / bSecs), (b.ms / opts.seeds).toFixed(1)]);

let long = null;
if (opts['long-seeds'] > 0) {
  long = inProcess(opts['long-seeds'], 3000, 5);
  const s = long.elapsedMs / 1000;
  rows.push([`sweep() in-process, npm run sweep settings`, opts['long-seeds'], 3000, '5', long.events, s.toFixed(2), Math.round(long.events / s), (long.elapsedMs / opts['long-seeds']).toFixed(1)]);
}

console.log(table(['run', 'seeds', 'steps', 'nodes', 'events', 'seconds', 'events/s', 'ms/seed'], rows));
console.log('');
const ci = opts['ci-seeds'];
const scale = ci / opts.seeds;
console.log(`projection for the CI sweep (${ci} seeds, --nodes ${opts.nodes}, --steps ${opts.steps}; test/sim/sweep.test.ts uses --nodes 0 --steps 300 --jobs 2):`);
console.log(`  one process: ${fmtS(aSecs * scale)}   with --jobs ${opts.jobs}: ${fmtS(bSecs * scale)} (measured ${opts.seeds} seeds x ${scale.toFixed(2)})`);
if (long !== null) {
  const perSeed = long.elapsedMs / 1000 / opts['long-seeds'];
  console.log(
    `projection for npm run sweep (20000 seeds, 5 nodes, 3000 steps, one process): ${fmtS(perSeed * 20000)} ` +
      `(from ${opts['long-seeds']} seeds; ${fmtS((perSeed * 20000) / opts.jobs)} if ${opts.jobs} jobs scale perfectly)`,
  );
}
console.log(`bench process RSS at the end: ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
if (failures > 0) console.log(`${failures} seed(s) FAILED an invariant (see above)`);
process.exit(failures > 0 ? 1 : 0);
