// Placeholder: the simulator CLI lands with the core protocol work.
export interface SimCliOptions {
  readonly seed: number;
  readonly seeds: number;
  readonly nodes: number;
  readonly steps: number;
  readonly verbose: boolean;
}
/** Returns the process exit code (0 when no invariant was violated). */
export async function runSimCli(_opts: SimCliOptions): Promise<number> {
  throw new Error('runSimCli: not implemented yet');
}
