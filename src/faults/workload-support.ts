// What the fault-suite workloads share: clients with short deadlines pinned to one node, the
// classification of a failed request as "did not happen" or "may have happened", stop-aware sleeps,
// the retried setup statements and the final read of every node (waiting, within a bound, until the
// nodes agree).
import { ClientConnectionError, ReplisqlClient, type ClientOptions } from '../client/client.js';
import { Prng } from '../core/prng.js';
import { ErrorCode, ReplisqlError } from '../errors.js';
import type { NodeRead } from './checkers.js';
import type { WorkloadContext } from './workloads.js';

/** Per-request deadline of the workload clients: a partition yields unknowns, not hangs. */
export const REQUEST_TIMEOUT_MS = 3000;

export const CLIENT_OPTIONS: ClientOptions = { timeoutMs: REQUEST_TIMEOUT_MS, connectTimeoutMs: 1000, livenessTimeoutMs: 2000, retries: 2 };

export type Classified = { readonly outcome: 'fail' | 'unknown'; readonly error: string };

/** Codes that mean the request certainly did not take effect. */
const DID_NOT_HAPPEN: ReadonlySet<string> = new Set([
  ErrorCode.NO_QUORUM,
  ErrorCode.NO_COORDINATOR,
  ErrorCode.NOT_COORDINATOR,
  ErrorCode.OVERLOADED,
  ErrorCode.TRANSACTION_ABORTED,
  ErrorCode.BAD_REQUEST,
  ErrorCode.SQL_ERROR,
]);

/**
 * fail (did not happen): the refusals above, and a request the client never managed to send.
 * unknown (may have happened): UNKNOWN_OUTCOME, timeouts, connections lost after sending, anything else.
 */
export function classifyError(err: unknown): Classified {
  if (err instanceof ReplisqlError) {
    return { outcome: DID_NOT_HAPPEN.has(err.code) ? 'fail' : 'unknown', error: `${err.code}: ${err.message}` };
  }
  if (err instanceof ClientConnectionError) {
    // The client reports "no endpoint reachable" only for a request it never sent.
    return { outcome: /^no endpoint reachable/.test(err.message) ? 'fail' : 'unknown', error: `UNAVAILABLE: ${err.message}` };
  }
  return { outcome: 'unknown', error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
}

/** Resolves after `ms` or as soon as `stop` fires. */
export function sleep(ms: number, stop?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (stop?.aborted === true) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      stop?.removeEventListener('abort', done);
      resolve();
    }
    stop?.addEventListener('abort', done, { once: true });
  });
}

/**
 * One logical process's connection, pinned to one node. get() connects lazily (null while the node
 * cannot be reached); drop() closes it, e.g. after a failed transaction (closing rolls it back).
 */
export class PinnedClient {
  private client: ReplisqlClient | null = null;
  constructor(readonly endpoint: string) {}

  async get(): Promise<ReplisqlClient | null> {
    if (this.client !== null) return this.client;
    try {
      this.client = await ReplisqlClient.connect([this.endpoint], CLIENT_OPTIONS);
    } catch {
      return null;
    }
    return this.client;
  }

  async drop(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c !== null) await c.close().catch(() => undefined);
  }
}

/**
 * Runs the statements in order through any node (a failover list of all endpoints), retrying the
 * whole list on errors for up to `timeoutMs` (an election may be under way). Statements must be
 * safe to repeat (DROP ... IF EXISTS, CREATE, then INSERT into the fresh table in one request).
 */
export async function runSetup(ctx: WorkloadContext, statements: readonly string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    let client: ReplisqlClient | null = null;
    try {
      client = await ReplisqlClient.connect(ctx.endpoints, { ...CLIENT_OPTIONS, timeoutMs: 10_000 });
      for (const sql of statements) await client.query(sql);
      return;
    } catch (err) {
      last = classifyError(err).error;
      ctx.log(`setup: ${last}; retrying`);
      await sleep(500);
    } finally {
      await client?.close();
    }
  }
  throw new Error(`setup did not succeed within ${timeoutMs} ms: ${last}`);
}

/**
 * Reads `read` from every node (a client pinned to each), repeating until every node answered and
 * all answers are `same`, or until `timeoutMs` passed; returns the last answers (null where a node
 * could not be read). Followers apply committed entries shortly after the coordinator: the wait
 * lets a healthy cluster converge, and a cluster that does not converge is reported as it is.
 */
export async function readEveryNode<T>(
  ctx: WorkloadContext,
  read: (client: ReplisqlClient) => Promise<T>,
  same: (a: T, b: T) => boolean,
  timeoutMs = 20_000,
): Promise<NodeRead<T>[]> {
  const clients = ctx.endpoints.map((e) => new PinnedClient(e));
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const reads = await Promise.all(
        clients.map(async (pc, i): Promise<NodeRead<T>> => {
          const c = await pc.get();
          if (c === null) return { node: i + 1, value: null, error: `cannot connect to ${pc.endpoint}` };
          try {
            return { node: i + 1, value: await read(c) };
          } catch (err) {
            await pc.drop();
            return { node: i + 1, value: null, error: classifyError(err).error };
          }
        }),
      );
      const values = reads.map((r) => r.value);
      const done = values.every((v) => v !== null) && values.every((v) => same(v as T, values[0] as T));
      if (done || Date.now() >= deadline) return reads;
      await sleep(250);
    }
  } finally {
    await Promise.all(clients.map((c) => c.drop()));
  }
}

/** The node index a process is pinned to, and its random stream seed, from the run's seed. */
export function processSeed(seed: number, process: number): number {
  return (Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) + Math.imul(process + 1, 0x85ebca6b)) >>> 0;
}

/** One step of a workload's client process: an operation on `client` (pinned to one node). */
export type ProcessStep = (client: ReplisqlClient, pinned: PinnedClient, rng: Prng, p: number) => Promise<void>;

/**
 * Runs `ctx.concurrency` client processes until `stop`: each pinned to one random node, doing `step`
 * with a short random pause after each, waiting while its node cannot be reached. An unexpected
 * error ends only that process (logged as `name`); its client is always closed.
 */
export async function runProcesses(ctx: WorkloadContext, stop: AbortSignal, name: string, step: ProcessStep): Promise<void> {
  const one = async (p: number): Promise<void> => {
    const rng = new Prng(processSeed(ctx.seed, p));
    const pinned = new PinnedClient(rng.pick(ctx.endpoints));
    try {
      while (!stop.aborted) {
        const client = await pinned.get();
        if (client === null) {
          await sleep(200, stop);
          continue;
        }
        await step(client, pinned, rng, p);
        await sleep(rng.intUpTo(5), stop);
      }
    } catch (err) {
      ctx.log(`${name}: process ${p} stopped by an unexpected error: ${(err as Error).message}`);
    } finally {
      await pinned.drop();
    }
  };
  await Promise.all(Array.from({ length: ctx.concurrency }, (_, p) => one(p)));
}
