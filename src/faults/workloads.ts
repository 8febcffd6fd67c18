// The fault suite's workloads, as the runner sees them: the Workload interface and createWorkload.
// Each workload drives a real cluster through the JSON client (src/client/client.ts), records its
// history and checks it: set (src/faults/set-workload.ts), register (src/faults/register-workload.ts),
// bank (src/faults/bank-workload.ts).
import { BankWorkload } from './bank-workload.js';
import { RegisterWorkload } from './register-workload.js';
import { SetWorkload } from './set-workload.js';

export interface WorkloadContext {
  /** 'host:port' of every node's JSON client port, index i = node i+1. */
  readonly endpoints: readonly string[];
  /** Client processes (logical), each with its own ReplisqlClient pinned to one random node. */
  readonly concurrency: number;
  readonly seed: number;
  readonly readConsistency: 'local' | 'session' | 'bounded' | 'linearizable';
  readonly log: (line: string) => void;
}

export interface CheckResult {
  readonly valid: boolean | 'unknown';
  readonly counts: { operations: number; acknowledged: number; unknown: number; failed: number; violations: number };
  /** Human-readable lines, first problems first. */
  readonly details: readonly string[];
}

export interface Workload {
  readonly name: 'set' | 'register' | 'bank';
  /** Create tables (through any node), wait until replicated. */
  setup(ctx: WorkloadContext): Promise<void>;
  /** Issue operations until stop fires; records history internally. Never throws. */
  run(ctx: WorkloadContext, stop: AbortSignal): Promise<void>;
  /** What to save to a history file. */
  history(): readonly unknown[];
  /** After the faults healed: read final state from every node. */
  final(ctx: WorkloadContext): Promise<void>;
  check(): CheckResult;
}

export const WORKLOAD_NAMES = ['set', 'register', 'bank'] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

/** A fresh workload (its own empty history). Throws an Error naming the valid names for an unknown one. */
export function createWorkload(name: string): Workload {
  switch (name) {
    case 'set':
      return new SetWorkload();
    case 'register':
      return new RegisterWorkload();
    case 'bank':
      return new BankWorkload();
    default:
      throw new Error(`unknown workload ${JSON.stringify(name)}; valid workloads: ${WORKLOAD_NAMES.join(', ')}`);
  }
}
