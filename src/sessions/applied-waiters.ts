// Sessions waiting until this node's database has applied a log index (read-your-writes).
import { ErrorCode, ReplisqlError } from '../errors.js';

interface Waiter {
  readonly index: number;
  readonly resolve: () => void;
  readonly timer: NodeJS.Timeout;
}

export class AppliedWaiters {
  private waiters: Waiter[] = [];
  private applied: number;

  constructor(
    appliedIndex: number,
    private readonly timeoutMs: number,
  ) {
    this.applied = appliedIndex;
  }

  /** Resolves once `index` is applied; rejects (UNHEALTHY) after the timeout: the node is lagging. */
  wait(index: number): Promise<void> {
    if (this.applied >= index) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(
          new ReplisqlError(
            ErrorCode.UNHEALTHY,
            `this node has not applied the session's last write (log index ${index}, applied ${this.applied}) within ${this.timeoutMs} ms; retry, or connect to another node`,
          ),
        );
      }, this.timeoutMs);
      timer.unref();
      this.waiters.push({ index, resolve, timer });
    });
  }

  /** The database applied up to `appliedIndex`. */
  advance(appliedIndex: number): void {
    this.applied = Math.max(this.applied, appliedIndex);
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.index <= this.applied);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.index > this.applied);
    for (const w of ready) {
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  close(): void {
    for (const w of this.waiters) clearTimeout(w.timer);
    this.waiters = [];
  }
}
