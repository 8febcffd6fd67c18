// Plumbing both engines share (sqlite/sqlite-engine.ts, mysql/connections.ts): the open/close state
// with a close() that is idempotent and shared by concurrent callers, the gate that holds reads back
// while a snapshot is installed, and the check of a numeric option.
import { ConfigError } from '../errors.js';

export type EngineStatus = 'closed' | 'opening' | 'open' | 'closing';

export class EngineLifecycle {
  status: EngineStatus = 'closed';
  private closing: Promise<void> | null = null;

  /**
   * Closes once: a no-op when closed; callers during a close share it. `doClose` runs with the status
   * 'closing'; the status is 'closed' when it settles, whatever its outcome.
   */
  close(doClose: () => Promise<void>): Promise<void> {
    if (this.status === 'closed') return Promise.resolve();
    if (this.closing !== null) return this.closing;
    this.status = 'closing';
    this.closing = doClose().finally(() => {
      this.closing = null;
      this.status = 'closed';
    });
    return this.closing;
  }
}

/** Shut while a snapshot is installed: reads wait for `shut` (in a loop, `while (g.shut) await g.shut`). */
export class ReadGate {
  private gate: Promise<void> | null = null;

  /** Resolves when the gate opens again; null while it is open. */
  get shut(): Promise<void> | null {
    return this.gate;
  }

  /** Runs `fn` with the gate shut (set before this returns); throws `busy()` if it is shut already. */
  async shutWhile<T>(fn: () => Promise<T>, busy: () => Error): Promise<T> {
    if (this.gate !== null) throw busy();
    let release!: () => void;
    this.gate = new Promise<void>((r) => (release = r));
    try {
      return await fn();
    } finally {
      this.gate = null;
      release();
    }
  }
}

/** An integer option in [min, max] (`dflt` when absent); a ConfigError naming the engine otherwise. */
export function intOption(engine: string, name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  const x = v ?? dflt;
  if (!Number.isSafeInteger(x) || x < min || x > max) {
    throw new ConfigError(`${engine}: ${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return x;
}
