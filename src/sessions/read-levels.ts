// Read consistency levels (docs/consistency.md): what a read waits for before it runs on this node's
// own database.
//   local         what this node has applied, now;
//   session       also every write of this session (read-your-writes; the default);
//   bounded       also at most `maxStalenessMs` behind: served at once when this node completed a
//                 read index that recently (it then had every write acknowledged before that read
//                 index was asked), else it first takes a new one: one read index per bound at most;
//   linearizable  every write acknowledged before the read started, on any node: a read index from
//                 the coordinator (one majority round, no log write), applied here before reading.
import { randomBytes } from 'node:crypto';
import { ReplisqlError } from '../errors.js';
import { MAX_STALENESS_LIMIT_MS, READ_CONSISTENCY_LEVELS, type ReadConsistency, type ReadIndexAnswer } from '../core/types.js';

export { MAX_STALENESS_LIMIT_MS, READ_CONSISTENCY_LEVELS, type ReadConsistency };

export interface ReadLevel {
  readonly consistency: ReadConsistency;
  /** For `bounded`: the read may miss only writes acknowledged longer ago than this before it started, in ms. */
  readonly maxStalenessMs: number;
}

/** The level named by `v` (any case), or null. */
export function readConsistencyOf(v: unknown): ReadConsistency | null {
  const s = typeof v === 'string' ? v.trim().toLowerCase() : null;
  return s !== null && (READ_CONSISTENCY_LEVELS as readonly string[]).includes(s) ? (s as ReadConsistency) : null;
}

/** The error for a value that is not a level, naming the valid ones. */
export function unknownReadConsistency(v: unknown, field: string): string {
  return `unknown read consistency ${JSON.stringify(v)?.slice(0, 60)} in ${field}: expected one of ${READ_CONSISTENCY_LEVELS.join(', ')}`;
}

/** A staleness bound in ms, or why it is not one. */
export function parseMaxStaleness(v: unknown, field = 'maxStalenessMs'): number | string {
  const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v.trim()) : v;
  if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= MAX_STALENESS_LIMIT_MS) return n;
  return `${field} must be an integer number of milliseconds from 0 to ${MAX_STALENESS_LIMIT_MS}, got ${JSON.stringify(v)?.slice(0, 60)}`;
}

/** What the levels need from the node. */
export interface ReadBarrierHost {
  /** Resolves once this node's database has applied `index` (rejects after the node's wait timeout). */
  waitApplied(index: number): Promise<void>;
  /** Asks the core for a read index (answered through `deliver`). */
  requestReadIndex(requestId: string): void;
  /** A monotonic clock in ms (performance.now in the node). */
  now(): number;
}

/**
 * TEST ONLY: the env var that weakens the node so that every read level is served as `local` (no
 * read index, no wait). The fault suite runs such a build to show that its checker catches
 * stale reads; never set it in production (the node logs a warning at start when it is set).
 */
export const UNSAFE_LOCAL_READS_ENV = 'REPLISQL_TEST_UNSAFE_LOCAL_READS';

/** Runs the wait a read level demands; one per node, shared by every session and connection. */
export class ReadBarrier {
  private readonly waiting = new Map<string, (answer: ReadIndexAnswer) => void>();
  private readonly nonce = randomBytes(4).toString('hex');
  private count = 0;
  /**
   * When the newest completed read index was asked (ms): this node has applied every write
   * acknowledged before then. null before the first one.
   */
  private freshAsOf: number | null = null;

  constructor(
    private readonly host: ReadBarrierHost,
    /** TEST ONLY (UNSAFE_LOCAL_READS_ENV): every level reads locally. */
    private readonly unsafeLocalReads = false,
  ) {}

  /**
   * Resolves when a read at `level` may run; `sessionIndex` is the log index of the session's last
   * write (0 when none). Rejects with the cluster error that prevents the level (NO_QUORUM,
   * NO_COORDINATOR, UNHEALTHY, ...).
   */
  async before(level: ReadLevel, sessionIndex: number): Promise<void> {
    if (this.unsafeLocalReads) return;
    switch (level.consistency) {
      case 'local':
        return;
      case 'session':
        if (sessionIndex > 0) await this.host.waitApplied(sessionIndex);
        return;
      case 'bounded': {
        if (this.freshAsOf !== null && this.host.now() - this.freshAsOf < level.maxStalenessMs) {
          if (sessionIndex > 0) await this.host.waitApplied(sessionIndex);
          return;
        }
        await this.host.waitApplied(Math.max(await this.readIndex(), sessionIndex));
        return;
      }
      case 'linearizable':
        await this.host.waitApplied(Math.max(await this.readIndex(), sessionIndex));
        return;
    }
  }

  /** The core's answer to a read index request. */
  deliver(answer: ReadIndexAnswer): void {
    const resolve = this.waiting.get(answer.requestId);
    if (resolve === undefined) return;
    this.waiting.delete(answer.requestId);
    resolve(answer);
  }

  /** A read index from the core; once this node applied it, it is fresh as of when it was asked. */
  private async readIndex(): Promise<number> {
    const requestId = `read-${this.nonce}-${++this.count}`;
    const askedAt = this.host.now();
    const answer = await new Promise<ReadIndexAnswer>((resolve) => {
      this.waiting.set(requestId, resolve);
      this.host.requestReadIndex(requestId);
    });
    if (!answer.ok) throw ReplisqlError.fromInfo(answer.error);
    await this.host.waitApplied(answer.index);
    if (this.freshAsOf === null || askedAt > this.freshAsOf) this.freshAsOf = askedAt;
    return answer.index;
  }
}

/** The level of a read that a request names, over the connection's or config's default. */
export function readLevelOf(requested: { consistency?: unknown; maxStalenessMs?: unknown }, fallback: ReadLevel): ReadLevel | string {
  let consistency = fallback.consistency;
  let maxStalenessMs = fallback.maxStalenessMs;
  if (requested.consistency !== undefined) {
    const c = readConsistencyOf(requested.consistency);
    if (c === null) return unknownReadConsistency(requested.consistency, '"consistency"');
    consistency = c;
  }
  if (requested.maxStalenessMs !== undefined) {
    const m = parseMaxStaleness(requested.maxStalenessMs);
    if (typeof m === 'string') return m;
    maxStalenessMs = m;
  }
  return { consistency, maxStalenessMs };
}
