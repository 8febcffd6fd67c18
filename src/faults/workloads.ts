// The fault suite's workloads, as the runner sees them: the Workload interface and createWorkload.
// Each workload drives a real cluster through the JSON client (src/client/client.ts), records its
// history and checks it: set (src/faults/set-workload.ts), register (src/faults/register-workload.ts),
// bank (src/faults/bank-workload.ts).
import { BankWorkload } from './bank-workload.js';
import { RegisterWorkload } from './register-workload.js';
import { SetWorkload } from './set-workload.js';
import type { Workload } from './workload-support.js';

export type { CheckResult, Workload, WorkloadContext } from './workload-support.js';

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
