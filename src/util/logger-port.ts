// The logging port the shell needs. Declared here, by its users; pino's Logger satisfies it.

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** A logger that discards everything. */
export const nullLogger: Logger = {
  info() {},
  warn() {},
  error() {},
  debug() {},
};

/**
 * Lets through at most one log line per key per interval, so that a flood of bad input or a
 * peer that stays down cannot flood the log. The number of lines held back is reported with the
 * next line that goes through.
 */
export class LogRateLimiter {
  private readonly lastByKey = new Map<string, { atMs: number; suppressed: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly nowMs: () => number = Date.now,
    private readonly maxKeys = 1024,
  ) {}

  /** null: suppress this line. A number: log it, mentioning that many suppressed lines (if > 0). */
  take(key: string): number | null {
    const now = this.nowMs();
    const last = this.lastByKey.get(key);
    if (last !== undefined && now - last.atMs < this.intervalMs) {
      last.suppressed++;
      return null;
    }
    const suppressed = last?.suppressed ?? 0;
    if (last === undefined && this.lastByKey.size >= this.maxKeys) this.lastByKey.clear();
    this.lastByKey.set(key, { atMs: now, suppressed: 0 });
    return suppressed;
  }
}
