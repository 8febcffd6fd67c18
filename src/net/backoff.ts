// Reconnect delays: exponential growth with jitter, capped.
// Jitter spreads the reconnects of many nodes that lost the same peer at the same moment; it only
// ever shortens a delay, so maxDelayMs is a hard cap.

export interface BackoffPolicy {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly multiplier: number;
  /** Fraction of the delay that jitter may take away: 0 = no jitter, 0.5 = delay in [base/2, base]. */
  readonly jitterRatio: number;
}

/** 50 ms doubling up to 2 s, each delay drawn from [base/2, base]. */
export const DEFAULT_RECONNECT_BACKOFF: BackoffPolicy = {
  initialDelayMs: 50,
  maxDelayMs: 2000,
  multiplier: 2,
  jitterRatio: 0.5,
};

/** The delay before retry number `attempt` (0-based), given a uniform random number in [0, 1). */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random01: number): number {
  const exponent = Math.max(0, Math.min(attempt, 64));
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** exponent);
  const jitter = Math.min(1, Math.max(0, policy.jitterRatio)) * Math.min(1, Math.max(0, random01));
  return Math.max(0, Math.round(base * (1 - jitter)));
}

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly policy: BackoffPolicy = DEFAULT_RECONNECT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  /** The next delay; each call moves one step up the curve (until the cap). */
  next(): number {
    const delay = backoffDelayMs(this.policy, this.attempt, this.random());
    if (this.attempt < 64) this.attempt++;
    return delay;
  }

  /** Back to the initial delay (after a connection proved healthy). */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
