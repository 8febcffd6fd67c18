// The simulated database: a key/value register set that records what it applied, so the
// checkers can compare replicas and detect a request applied twice. Durable across crashes,
// like a real database whose fencing row is written in the same transaction as the data.
import type { Entry } from '../core/types.js';

export class SimStateMachine {
  appliedIndex = 0;
  appliedChainHash = '';
  private data = new Map<string, string>();
  private appliedRequests = new Map<string, number>();
  private effects = new Map<string, number>();

  /**
   * Applies a committed entry. An entry whose request id was already applied is skipped (the
   * same rule the SQL engines follow with their request table), so a retried request takes
   * effect once even if it reached the log twice.
   */
  apply(e: Entry): { result: unknown; duplicateOf: number | null } {
    this.appliedIndex = e.index;
    this.appliedChainHash = e.chainHash;
    if (e.kind === 'noop') return { result: null, duplicateOf: null };
    if (e.requestId !== null) {
      const prev = this.appliedRequests.get(e.requestId);
      if (prev !== undefined) return { result: { index: prev, duplicate: true }, duplicateOf: prev };
      this.appliedRequests.set(e.requestId, e.index);
    }
    // payload: "set <key> <value>"
    const [, key, value] = e.payload.split(' ');
    if (key !== undefined && value !== undefined) {
      this.data.set(key, value);
      if (e.requestId !== null) this.effects.set(e.requestId, (this.effects.get(e.requestId) ?? 0) + 1);
    }
    return { result: { index: e.index, key, value }, duplicateOf: null };
  }

  /** How many times a request's command took effect here (must never exceed 1). */
  effectsOf(requestId: string | null): number {
    return requestId === null ? 0 : (this.effects.get(requestId) ?? 0);
  }

  hasApplied(requestId: string): boolean {
    return this.appliedRequests.has(requestId);
  }

  serialize(): string {
    return JSON.stringify({
      appliedIndex: this.appliedIndex,
      appliedChainHash: this.appliedChainHash,
      data: [...this.data.entries()].sort(),
      requests: [...this.appliedRequests.entries()].sort(),
      effects: [...this.effects.entries()].sort(),
    });
  }

  static restore(text: string): SimStateMachine {
    const o = JSON.parse(text) as { appliedIndex: number; appliedChainHash: string; data: [string, string][]; requests: [string, number][]; effects: [string, number][] };
    const sm = new SimStateMachine();
    sm.appliedIndex = o.appliedIndex;
    sm.appliedChainHash = o.appliedChainHash;
    sm.data = new Map(o.data);
    sm.appliedRequests = new Map(o.requests);
    sm.effects = new Map(o.effects);
    return sm;
  }

  /** Content digest for convergence checks. */
  contentKey(): string {
    return JSON.stringify([...this.data.entries()].sort());
  }
}
