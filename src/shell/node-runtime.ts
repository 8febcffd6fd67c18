// Placeholder: the node runtime (core + transport + log store + engine) lands with the shell work.
export interface RunNodeOptions {
  readonly configPath: string;
  readonly nodeId: number;
}
export async function runNode(_opts: RunNodeOptions): Promise<void> {
  throw new Error('runNode: not implemented yet');
}
