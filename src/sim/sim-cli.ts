// `replisql sim`: runs one seed or a sweep of seeds; exits non-zero on any invariant violation,
// printing the seed and the violated invariant so that `--seed N` replays it exactly.
import { spawn } from 'node:child_process';
import { runSimulation, type SimResult } from './simulator.js';
import type { UnsafeFlags } from '../core/types.js';
import type { DriverUnsafeFlags } from '../node/driver.js';

export interface SimCliOptions {
  readonly seed: number;
  readonly seeds: number;
  readonly nodes: number;
  readonly steps: number;
  readonly verbose: boolean;
  /** Spread a sweep over this many child processes. */
  readonly jobs?: number;
  readonly unsafe?: UnsafeFlags;
  readonly driverUnsafe?: DriverUnsafeFlags;
  /** When nodes is 0: pick 3..7 nodes per seed. */
  readonly write?: (line: string) => void;
}

export interface SweepSummary {
  readonly runs: number;
  readonly failures: readonly SimResult[];
  readonly events: number;
  readonly elapsedMs: number;
}

export function nodesForSeed(seed: number, nodes: number): number {
  return nodes > 0 ? nodes : 3 + (seed % 5);
}

export function sweep(opts: SimCliOptions): SweepSummary {
  const write = opts.write ?? ((l: string) => process.stdout.write(l + '\n'));
  const failures: SimResult[] = [];
  let events = 0;
  const started = performance.now();
  let lastProgress = started;
  for (let i = 0; i < opts.seeds; i++) {
    const seed = opts.seed + i;
    const result = runSimulation({ seed, nodes: nodesForSeed(seed, opts.nodes), steps: opts.steps, trace: opts.verbose && opts.seeds === 1, ...(opts.unsafe ? { unsafe: opts.unsafe } : {}), ...(opts.driverUnsafe ? { driverUnsafe: opts.driverUnsafe } : {}) });
    events += result.stats.events;
    if (opts.verbose && opts.seeds === 1) for (const line of result.trace) write(line);
    if (!result.ok) {
      failures.push(result);
      const v = result.violation!;
      write(`FAIL seed=${seed} nodes=${nodesForSeed(seed, opts.nodes)} invariant=${v.invariant} at=${(v.atMs / 1000).toFixed(3)}s: ${v.detail}`);
      write(`  replay: replisql sim --seed ${seed} --nodes ${nodesForSeed(seed, opts.nodes)} --steps ${opts.steps} --verbose`);
    } else if (opts.seeds === 1) {
      const s = result.stats;
      write(
        `ok seed=${seed} events=${s.events} committed=${s.committedIndex} writes=${s.writesSubmitted} acked=${s.writesAcknowledged} failed=${s.writesFailed} ` +
          `elections=${s.elections} crashes=${s.crashes} snapshots=${s.snapshotsInstalled} checksumRejects=${s.checksumMismatches} converged=${s.convergedAfterMs}ms fingerprint=${result.fingerprint}`,
      );
    }
    const now = performance.now();
    if (opts.seeds > 1 && now - lastProgress > 5000) {
      lastProgress = now;
      write(`  ... ${i + 1}/${opts.seeds} seeds, ${failures.length} failing, ${Math.round(events / ((now - started) / 1000))} events/s`);
    }
  }
  return { runs: opts.seeds, failures, events, elapsedMs: performance.now() - started };
}

/** Runs seed ranges in child processes (`replisql sim ...`), streaming their FAIL lines. */
async function parallelSweep(opts: SimCliOptions, jobs: number, write: (l: string) => void): Promise<number> {
  const started = performance.now();
  const per = Math.ceil(opts.seeds / jobs);
  const script = process.argv[1] as string;
  let passed = 0;
  let failed = 0;
  let events = 0;
  const runs: Promise<number>[] = [];
  for (let j = 0; j < jobs; j++) {
    const first = opts.seed + j * per;
    const count = Math.min(per, opts.seed + opts.seeds - first);
    if (count <= 0) break;
    const args = [script, 'sim', '--seed', String(first), '--seeds', String(count), '--nodes', String(opts.nodes), '--steps', String(opts.steps)];
    runs.push(
      new Promise<number>((resolve) => {
        const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
        let buf = '';
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            const m = /^(\d+) passed, (\d+) failed: .*?, (\d+) events/.exec(line);
            if (m) {
              passed += Number(m[1]);
              failed += Number(m[2]);
              events += Number(m[3]);
            } else write(`[job ${j + 1}] ${line}`);
          }
        });
        child.on('close', (code) => resolve(code ?? 1));
      }),
    );
  }
  const codes = await Promise.all(runs);
  const secs = (performance.now() - started) / 1000;
  if (passed + failed < opts.seeds) failed += opts.seeds - passed - failed;
  write(`${passed} passed, ${failed} failed: seeds ${opts.seed}..${opts.seed + opts.seeds - 1} in ${jobs} jobs, ${events} events in ${secs.toFixed(1)} s (${Math.round(events / secs)} events/s)`);
  return failed === 0 && codes.every((c) => c === 0) ? 0 : 1;
}

/** Returns the process exit code (0 when no invariant was violated). */
export async function runSimCli(opts: SimCliOptions): Promise<number> {
  const write = opts.write ?? ((l: string) => process.stdout.write(l + '\n'));
  if ((opts.jobs ?? 1) > 1 && opts.seeds > 1) return parallelSweep(opts, Math.min(opts.jobs ?? 1, opts.seeds), write);
  const summary = sweep(opts);
  if (opts.seeds > 1 || summary.failures.length > 0) {
    const secs = summary.elapsedMs / 1000;
    write(
      `${summary.runs - summary.failures.length} passed, ${summary.failures.length} failed: seeds ${opts.seed}..${opts.seed + opts.seeds - 1}, ` +
        `${summary.events} events in ${secs.toFixed(1)} s (${Math.round(summary.events / secs)} events/s)`,
    );
  }
  return summary.failures.length === 0 ? 0 : 1;
}
