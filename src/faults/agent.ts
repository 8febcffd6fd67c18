// The client side of the fault suite. The runner starts it inside the client namespace
// (`ip netns exec <client-ns> node dist/faults/agent.js <mode> '<json>'`), so that every packet of
// the workload and of the probes goes from the client namespace over the bridge, never from the
// host namespace. It answers on stdout with one line `RESULT <json>` (and `READY`/`STOPPED` for the
// workload); the runner talks to it over stdin/stdout pipes.
import { createInterface } from 'node:readline';
import { writeFileSync } from 'node:fs';
import { ReplisqlClient, type NodeStatus } from '../client/client.js';
import { createWorkload, type WorkloadContext } from './workloads.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

async function statusOf(endpoint: string, timeoutMs: number): Promise<NodeStatus | null> {
  let c: ReplisqlClient | null = null;
  try {
    c = await ReplisqlClient.connect([endpoint], { timeoutMs, connectTimeoutMs: Math.min(timeoutMs, 1000), retries: 0 });
    return await c.status();
  } catch {
    return null;
  } finally {
    await c?.close().catch(() => {});
  }
}

/** Every node answers, one coordinator that every node names, and every node applied the coordinator's commit index. */
async function caughtUp(args: { endpoints: Record<string, string>; timeoutMs: number }): Promise<unknown> {
  const deadline = Date.now() + args.timeoutMs;
  let last: Record<string, NodeStatus | null> = {};
  while (Date.now() < deadline) {
    const ids = Object.keys(args.endpoints);
    const sts = await Promise.all(ids.map((id) => statusOf(args.endpoints[id]!, 1500)));
    last = Object.fromEntries(ids.map((id, i) => [id, sts[i] ?? null]));
    const all = sts.every((s) => s !== null) ? (sts as NodeStatus[]) : null;
    if (all !== null) {
      const coord = all[0]!.coordinator;
      const leader = all.find((s) => s.nodeId === coord);
      if (
        coord !== null &&
        leader !== undefined &&
        all.every((s) => s.coordinator === coord && s.healthy) &&
        leader.nodes.every((p) => p.id === coord || p.online) &&
        all.every((s) => s.appliedIndex >= leader.commitIndex)
      ) {
        return { ok: true, coordinator: coord, term: leader.term, commitIndex: leader.commitIndex, waitedMs: args.timeoutMs - (deadline - Date.now()) };
      }
    }
    await sleep(250);
  }
  return { ok: false, last };
}

/**
 * After a heal at `healAt`: polls every node's STATUS and records, for every ordered pair (x, y),
 * when x first heard from y after the heal (now - lastHeartbeatMsAgo). maxMs is the slowest pair.
 */
async function healWatch(args: { endpoints: Record<string, string>; healAt: number; timeoutMs: number }): Promise<unknown> {
  const ids = Object.keys(args.endpoints);
  const seen: Record<string, number> = {};
  const want = ids.length * (ids.length - 1);
  const deadline = args.healAt + args.timeoutMs;
  const clients = new Map<string, ReplisqlClient>();
  while (Date.now() < deadline && Object.keys(seen).length < want) {
    await Promise.all(
      ids.map(async (x) => {
        try {
          let c = clients.get(x);
          if (c === undefined) {
            c = await ReplisqlClient.connect([args.endpoints[x]!], { timeoutMs: 1000, connectTimeoutMs: 500, retries: 0 });
            clients.set(x, c);
          }
          const at = Date.now();
          const st = await c.status();
          for (const p of st.nodes) {
            const key = `${x}>${p.id}`;
            if (String(p.id) === x || seen[key] !== undefined || p.lastHeartbeatMsAgo === null) continue;
            const heardAt = at - p.lastHeartbeatMsAgo;
            if (heardAt >= args.healAt) seen[key] = Math.max(0, heardAt - args.healAt);
          }
        } catch {
          const c = clients.get(x);
          clients.delete(x);
          await c?.close().catch(() => {});
        }
      }),
    );
    await sleep(50);
  }
  for (const c of clients.values()) await c.close().catch(() => {});
  const values = Object.values(seen);
  const missing = ids.flatMap((x) => ids.filter((y) => y !== x && seen[`${x}>${y}`] === undefined).map((y) => `${x}>${y}`));
  return { pairs: seen, missing, maxMs: missing.length > 0 ? null : Math.max(...values) };
}

/** Writes through one endpoint only (no failover) from now until `untilMs`; every write's start, end and outcome. */
async function pinnedWrites(args: { endpoint: string; untilMs: number; timeoutMs: number; table: string }): Promise<unknown> {
  const writes: Array<{ start: number; end: number; outcome: 'ok' | 'error'; error?: string }> = [];
  let c: ReplisqlClient | null = null;
  let k = 0;
  while (Date.now() < args.untilMs) {
    const start = Date.now();
    try {
      if (c === null) c = await ReplisqlClient.connect([args.endpoint], { timeoutMs: args.timeoutMs, connectTimeoutMs: 1000, retries: 0 });
      await c.query(`INSERT INTO ${args.table} (k) VALUES (?)`, [`${process.pid}-${start}-${k++}`]);
      writes.push({ start, end: Date.now(), outcome: 'ok' });
    } catch (err) {
      writes.push({ start, end: Date.now(), outcome: 'error', error: errText(err).slice(0, 200) });
      await c?.close().catch(() => {});
      c = null;
      await sleep(50);
    }
  }
  await c?.close().catch(() => {});
  return { writes };
}

async function execSql(args: { endpoints: string[]; sql: string }): Promise<unknown> {
  const c = await ReplisqlClient.connect(args.endpoints, { timeoutMs: 30_000 });
  try {
    await c.query(args.sql);
    return { ok: true };
  } finally {
    await c.close();
  }
}

/** The workload: READY after setup, runs until a STOP line, STOPPED, then FINAL runs the final reads and the check. */
async function workload(args: {
  name: string;
  endpoints: string[];
  concurrency: number;
  seed: number;
  readConsistency: WorkloadContext['readConsistency'];
  historyPath: string;
}): Promise<unknown> {
  const w = createWorkload(args.name);
  const ctx: WorkloadContext = {
    endpoints: args.endpoints,
    concurrency: args.concurrency,
    seed: args.seed,
    readConsistency: args.readConsistency,
    log: (line) => process.stderr.write(`[${w.name}] ${line}\n`),
  };
  const lines = createInterface({ input: process.stdin });
  const next = (want: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const on = (l: string): void => {
        if (l.trim() !== want) return;
        lines.off('line', on);
        resolve();
      };
      lines.on('line', on);
      lines.once('close', () => reject(new Error(`stdin closed while waiting for ${want}`)));
    });
  await w.setup(ctx);
  const stop = new AbortController();
  const stopped = next('STOP').then(() => stop.abort());
  const final = next('FINAL');
  say('READY');
  const running = w.run(ctx, stop.signal);
  await stopped;
  await running;
  say('STOPPED');
  await final;
  await w.final(ctx);
  const result = w.check();
  writeFileSync(args.historyPath, JSON.stringify({ workload: w.name, seed: args.seed, history: w.history(), result }, null, 1));
  lines.close();
  return result;
}

async function main(): Promise<void> {
  const [mode, json] = process.argv.slice(2);
  const args = JSON.parse(json ?? '{}') as never;
  let result: unknown;
  switch (mode) {
    case 'caught-up':
      result = await caughtUp(args);
      break;
    case 'heal-watch':
      result = await healWatch(args);
      break;
    case 'pinned-writes':
      result = await pinnedWrites(args);
      break;
    case 'exec-sql':
      result = await execSql(args);
      break;
    case 'workload':
      result = await workload(args);
      break;
    default:
      throw new Error(`agent: unknown mode '${mode ?? ''}'`);
  }
  say(`RESULT ${JSON.stringify(result)}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`agent failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
