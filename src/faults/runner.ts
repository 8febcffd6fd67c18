// The fault suite runner (`replisql faults`, docs/reliability.md): namespaces, real node processes
// inside them, a workload and probes inside the client namespace (src/faults/agent.ts), the nemesis
// on a schedule, heal, catch-up, final reads and the check; a summary table; teardown always.
import { startMariaDb, type MariaDbEnv, type MariaDbInstance } from './mariadb.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { NetnsLab, netnsUnavailableReason } from './netns.js';
import { Nemesis, type FaultName } from './nemesis.js';
import type { CheckResult } from './workloads.js';

export const WORKLOADS = ['set', 'register', 'bank'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];
export const PEER_PORT = 7000;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'replisql.js');
const AGENT = join(ROOT, 'dist', 'faults', 'agent.js');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Parses `--workload` (one name or `all`); throws naming the bad value. */
export function parseWorkloads(text: string): WorkloadName[] {
  const t = text.trim();
  if (t === 'all') return [...WORKLOADS];
  if (!(WORKLOADS as readonly string[]).includes(t)) throw new Error(`--workload: expected set, register, bank or all, got '${text}'`);
  return [t as WorkloadName];
}

/** A seeded PRNG (mulberry32): the nemesis's choices replay with the same --seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The database every MariaDB-backed node uses. */
const MYSQL_DATABASE = 'replisql';

export interface SessionOptions {
  readonly nodes: 3 | 5;
  readonly heartbeatIntervalMs: number;
  readonly failureTimeoutMs: number;
  readonly seed: number;
  readonly log: (line: string) => void;
  /** Keep the run folder (config, logs, data) after close. */
  readonly keepDir?: boolean;
  /** The nodes' database: embedded SQLite (default) or one MariaDB server per node (needed by db-kill). */
  readonly engine?: 'sqlite' | 'mysql';
}

export interface WorkloadRunOptions {
  readonly workload: WorkloadName;
  readonly faults: readonly FaultName[];
  readonly durationS: number;
  /** Each fault lasts this long, then the cluster gets quietS of calm. */
  readonly faultS: number;
  readonly quietS: number;
  readonly concurrency: number;
  readonly historyDir: string | null;
}

export interface SummaryRow {
  readonly workload: string;
  readonly faults: string;
  readonly operations: number;
  readonly acknowledged: number;
  readonly unknown: number;
  readonly failed: number;
  readonly violations: number;
  readonly verdict: 'valid' | 'INVALID' | 'unknown';
  readonly details: readonly string[];
  readonly historyFile: string | null;
}

interface AgentResult {
  readonly [k: string]: unknown;
}

/** Where the sessions that are open now are, so that a signal or an exit tears them down. */
const openSessions = new Set<FaultSession>();
let hooksInstalled = false;
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const teardownAll = (): void => {
    for (const s of openSessions) s.closeSync();
  };
  process.once('exit', teardownAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`faults: ${sig}: tearing down namespaces\n`);
      teardownAll();
      process.exit(130);
    });
  }
}

class NodeProc {
  child: ChildProcess | null = null;
  constructor(readonly id: number) {}
  get alive(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }
}

/** One cluster in namespaces: its lab, config, node processes, nemesis and agents. */
export class FaultSession {
  readonly nodeIds: number[];
  readonly dir: string;
  readonly nemesis: Nemesis;
  private readonly procs = new Map<number, NodeProc>();
  private readonly agents = new Set<ChildProcess>();
  private closed = false;

  private constructor(
    readonly lab: NetnsLab,
    readonly opts: SessionOptions,
    /** One MariaDB server per node (index id-1) with engine mysql; reached through its unix socket, which works from any namespace. */
    private readonly databases: MariaDbEnv | null,
  ) {
    this.nodeIds = lab.nodeIds.slice();
    this.dir = mkdtempSync(join(tmpdir(), 'replisql-faults-'));
    mkdirSync(join(this.dir, 'logs'), { recursive: true });
    const config = {
      cluster: 'faults',
      tickMs: 100,
      heartbeatIntervalMs: opts.heartbeatIntervalMs,
      failureTimeoutMs: opts.failureTimeoutMs,
      writeTimeoutMs: Math.max(5000, opts.failureTimeoutMs),
      writeAck: 'quorum',
      logDir: 'logs',
      nodes: this.nodeIds.map((id) => ({ id, host: lab.nodeAddress(id), port: PEER_PORT, storage: this.storageOf(id) })),
    };
    writeFileSync(join(this.dir, 'config.json'), JSON.stringify(config, null, 2));
    this.nemesis = new Nemesis(
      {
        lab,
        nodeIds: this.nodeIds,
        peerPort: PEER_PORT,
        coordinator: async () => this.coordinatorFromLogs(),
        signal: (id, sig) => this.signal(id, sig),
        restart: (id) => this.start(id),
        killDatabase: databases === null ? null : (id) => this.database(id).kill9(),
        restartDatabase: databases === null ? null : (id) => this.database(id).start(),
        log: opts.log,
      },
      prng(opts.seed),
    );
  }

  /** Builds the namespaces, writes the config, starts every node. Throws (after cleaning up) on failure. */
  static async open(opts: SessionOptions): Promise<FaultSession> {
    if (!existsSync(AGENT)) throw new Error(`${AGENT} is missing: run 'npm run build' first`);
    installHooks();
    let databases: MariaDbEnv | null = null;
    if (opts.engine === 'mysql') {
      databases = await startMariaDb(opts.nodes, { database: MYSQL_DATABASE });
      if (databases.skip !== false) throw new Error(`--engine mysql: ${databases.skip}`);
      opts.log(`MariaDB up: ${databases.instances.map((i) => `node ${i.id} ${i.socket}`).join(', ')}`);
    }
    let lab: NetnsLab;
    try {
      lab = NetnsLab.create({ nodeIds: Array.from({ length: opts.nodes }, (_, i) => i + 1), log: opts.log });
    } catch (err) {
      await databases?.stop();
      throw err;
    }
    let s: FaultSession;
    try {
      s = new FaultSession(lab, opts, databases);
    } catch (err) {
      lab.teardown();
      await databases?.stop();
      throw err;
    }
    openSessions.add(s);
    try {
      await Promise.all(s.nodeIds.map((id) => s.start(id)));
      const up = await s.agent('caught-up', { endpoints: s.endpointMap(), timeoutMs: 60_000 }, 70_000);
      if (up['ok'] !== true) throw new Error(`the cluster did not come up: ${JSON.stringify(up)}`);
      opts.log(`cluster up in ${lab.prefix}*: coordinator ${String(up['coordinator'])}, folder ${s.dir}`);
    } catch (err) {
      await s.close();
      throw err;
    }
    return s;
  }

  private storageOf(id: number): object {
    if (this.databases === null) return { engine: 'sqlite', path: `data/node${id}.db` };
    const db = this.database(id);
    return { engine: 'mysql', host: '127.0.0.1', port: db.port, socketPath: db.socket, user: 'root', password: '', database: MYSQL_DATABASE };
  }

  private database(id: number): MariaDbInstance {
    const db = this.databases?.instances[id - 1];
    if (db === undefined) throw new Error(`node ${id} has no MariaDB server (engine sqlite)`);
    return db;
  }

  endpoint(id: number): string {
    return `${this.lab.nodeAddress(id)}:${PEER_PORT}`;
  }

  endpointMap(): Record<string, string> {
    return Object.fromEntries(this.nodeIds.map((id) => [String(id), this.endpoint(id)]));
  }

  /** Starts node `id` inside its namespace and waits for its ready line; `env` is added to its environment. */
  async start(id: number, env: Readonly<Record<string, string>> = {}): Promise<void> {
    const p = this.procs.get(id) ?? new NodeProc(id);
    this.procs.set(id, p);
    if (p.alive) throw new Error(`node ${id} is already running`);
    const out = createWriteStream(join(this.dir, 'logs', `node${id}.stdout`), { flags: 'a' });
    const child = spawn('ip', ['netns', 'exec', this.lab.nodeNs(id), process.execPath, BIN, 'node', '--config', join(this.dir, 'config.json'), '--id', String(id)], {
      cwd: this.dir,
      env: { ...process.env, REPLISQL_LOG_ECHO: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    p.child = child;
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    await new Promise<void>((resolvePromise, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`node ${id} did not get ready in 30 s (see ${join(this.dir, 'logs')})`)), 30_000);
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        if (/ready on/.test(buf)) {
          clearTimeout(timer);
          resolvePromise();
        }
      });
      child.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`node ${id} exited (${code ?? sig}) before it was ready (see ${join(this.dir, 'logs')})`));
      });
    }).catch((err: unknown) => {
      if (p.alive) child.kill('SIGKILL');
      throw err;
    });
    child.removeAllListeners('exit');
  }

  signal(id: number, sig: 'SIGSTOP' | 'SIGCONT' | 'SIGKILL'): void {
    const p = this.procs.get(id);
    if (p?.child == null || !p.alive) throw new Error(`node ${id} is not running`);
    // `ip netns exec` execs the node in place: the child's pid is the node's.
    p.child.kill(sig);
  }

  /** Waits until node `id`'s process has exited (after a SIGKILL). */
  async waitExit(id: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.procs.get(id)?.alive === true) {
      if (Date.now() > deadline) throw new Error(`node ${id} did not exit`);
      await sleep(20);
    }
  }

  /** Structured log lines of node `id` with this event. */
  events(id: number, event: string): Array<Record<string, unknown> & { at: number }> {
    const file = join(this.dir, 'logs', `node${id}.log`);
    if (!existsSync(file)) return [];
    const out: Array<Record<string, unknown> & { at: number }> = [];
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.includes(`"event":"${event}"`)) continue;
      try {
        const o = JSON.parse(line) as Record<string, unknown>;
        if (o['event'] === event) out.push({ ...o, at: Date.parse(String(o['time'])) });
      } catch {
        // a line being written
      }
    }
    return out;
  }

  /** The node that most recently logged became-coordinator (and still runs). Read from files: no traffic. */
  coordinatorFromLogs(): number | null {
    let best: { id: number; at: number } | null = null;
    for (const id of this.nodeIds) {
      if (this.procs.get(id)?.alive !== true) continue;
      const became = Math.max(-1, ...this.events(id, 'became-coordinator').map((e) => e.at));
      const stepped = Math.max(-1, ...this.events(id, 'stepped-down').map((e) => e.at));
      if (became < 0 || stepped >= became) continue;
      if (best === null || became > best.at) best = { id, at: became };
    }
    return best?.id ?? null;
  }

  private spawnAgent(mode: string, args: object): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.lab.clientNs, process.execPath, AGENT, mode, JSON.stringify(args)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.agents.add(child);
    child.once('exit', () => this.agents.delete(child));
    const err = createWriteStream(join(this.dir, 'logs', `agent-${mode}.stderr`), { flags: 'a' });
    child.stderr!.pipe(err);
    return child;
  }

  private readResult(child: ChildProcess, mode: string, timeoutMs: number, onLine?: (l: string) => void): Promise<AgentResult> {
    return new Promise((resolvePromise, reject) => {
      const lines = createInterface({ input: child.stdout! });
      let result: AgentResult | null = null;
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`agent ${mode} did not finish in ${timeoutMs} ms`));
      }, timeoutMs);
      lines.on('line', (l) => {
        if (l.startsWith('RESULT ')) result = JSON.parse(l.slice(7)) as AgentResult;
        else onLine?.(l);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        if (result !== null) resolvePromise(result);
        else reject(new Error(`agent ${mode} exited with ${code} without a result (see ${join(this.dir, 'logs', `agent-${mode}.stderr`)})`));
      });
    });
  }

  /** Runs one agent mode in the client namespace and returns its result. */
  agent(mode: string, args: object, timeoutMs: number): Promise<AgentResult> {
    return this.readResult(this.spawnAgent(mode, args), mode, timeoutMs);
  }

  /** Waits until every node agrees on a coordinator and has applied its commit index. */
  async waitCaughtUp(timeoutMs = 60_000): Promise<AgentResult & { coordinator: number }> {
    const r = await this.agent('caught-up', { endpoints: this.endpointMap(), timeoutMs }, timeoutMs + 10_000);
    if (r['ok'] !== true) throw new Error(`the cluster did not catch up in ${timeoutMs} ms: ${JSON.stringify(r).slice(0, 2000)}`);
    return r as AgentResult & { coordinator: number };
  }

  /** The workload under the nemesis: setup, run with faults on a schedule, heal, catch up, final reads, check. */
  async runWorkload(o: WorkloadRunOptions): Promise<SummaryRow> {
    const log = this.opts.log;
    const historyFile = join(this.dir, `history-${o.workload}.json`);
    const child = this.spawnAgent('workload', {
      name: o.workload,
      endpoints: this.nodeIds.map((id) => this.endpoint(id)),
      concurrency: o.concurrency,
      seed: this.opts.seed,
      readConsistency: 'linearizable',
      historyPath: historyFile,
    });
    const marks: string[] = [];
    let markSeen: (() => void) | null = null;
    const result = this.readResult(child, `workload`, (o.durationS + 300) * 1000, (l) => {
      marks.push(l);
      markSeen?.();
    });
    const waitMark = async (m: string, timeoutMs: number): Promise<void> => {
      const deadline = Date.now() + timeoutMs;
      while (!marks.includes(m)) {
        if (Date.now() > deadline) throw new Error(`workload agent did not say ${m} in ${timeoutMs} ms`);
        await Promise.race([new Promise<void>((r) => (markSeen = r)), sleep(200), result.then(() => undefined, () => undefined)]);
        if (!marks.includes(m) && child.exitCode !== null) throw new Error(`workload agent exited before ${m}`);
      }
    };
    await waitMark('READY', 60_000);
    log(`workload ${o.workload} running for ${o.durationS} s with faults ${o.faults.join(',')}`);
    const endAt = Date.now() + o.durationS * 1000;
    let i = 0;
    const order = o.faults.slice();
    while (o.faults.length > 0 && Date.now() + o.faultS * 1000 <= endAt) {
      const fault = order[i++ % order.length] as FaultName;
      await this.nemesis.apply(fault);
      await sleep(o.faultS * 1000);
      await this.nemesis.heal();
      await sleep(Math.min(o.quietS * 1000, Math.max(0, endAt - Date.now())));
    }
    await sleep(Math.max(0, endAt - Date.now()));
    await this.nemesis.heal();
    child.stdin!.write('STOP\n');
    await waitMark('STOPPED', 120_000);
    await this.waitCaughtUp();
    child.stdin!.write('FINAL\n');
    const check = (await result) as unknown as CheckResult;
    const verdict = check.valid === true ? 'valid' : check.valid === false ? 'INVALID' : 'unknown';
    let saved: string | null = null;
    const dest = o.historyDir ?? (verdict !== 'valid' ? join(process.cwd(), 'fault-histories') : null);
    if (dest !== null && existsSync(historyFile)) {
      mkdirSync(dest, { recursive: true });
      saved = join(dest, `history-${o.workload}-seed${this.opts.seed}-${Date.now()}.json`);
      copyFileSync(historyFile, saved);
      writeFileSync(`${saved.replace(/\.json$/, '')}.nemesis.json`, JSON.stringify(this.nemesis.events, null, 1));
    }
    return {
      workload: o.workload,
      faults: o.faults.join(','),
      ...check.counts,
      verdict,
      details: check.details,
      historyFile: saved,
    };
  }

  /**
   * Cuts the coordinator off for cutMs, heals, and measures how long until every node has heard from
   * every other (STATUS lastHeartbeatMsAgo, polled from the client namespace).
   */
  async measureHeal(cutMs: number): Promise<{ coordinator: number; cutMs: number; maxMs: number | null; missing: string[]; pairs: Record<string, number> }> {
    const c = (await this.waitCaughtUp()).coordinator; // the one every node names in STATUS
    await this.nemesis.apply('isolate-coordinator', c);
    await sleep(cutMs);
    const healAt = Date.now();
    await this.nemesis.heal();
    const r = await this.agent('heal-watch', { endpoints: this.endpointMap(), healAt, timeoutMs: 30_000 }, 45_000);
    return { coordinator: c, cutMs, maxMs: r['maxMs'] as number | null, missing: r['missing'] as string[], pairs: r['pairs'] as Record<string, number> };
  }

  /**
   * Splits the cluster with the coordinator in the minority and writes through the coordinator only
   * (a client pinned to it, no failover) for failureTimeout + extraMs. Returns the writes.
   */
  async minorityWrites(extraMs = 3000): Promise<{ coordinator: number; minority: string; cutAt: number; failureTimeoutMs: number; writes: Array<{ start: number; end: number; outcome: string; error?: string }> }> {
    await this.waitCaughtUp();
    await this.agent('exec-sql', { endpoints: this.nodeIds.map((id) => this.endpoint(id)), sql: 'CREATE TABLE IF NOT EXISTS minority_probe (k TEXT PRIMARY KEY)' }, 40_000);
    const c = (await this.waitCaughtUp()).coordinator;
    const cutAt = Date.now();
    const minority = await this.nemesis.apply('split', c);
    const r = await this.agent('pinned-writes', { endpoint: this.endpoint(c), untilMs: cutAt + this.opts.failureTimeoutMs + extraMs, timeoutMs: 2000, table: 'minority_probe' }, this.opts.failureTimeoutMs + extraMs + 20_000);
    await this.nemesis.heal();
    return { coordinator: c, minority, cutAt, failureTimeoutMs: this.opts.failureTimeoutMs, writes: r['writes'] as never };
  }

  /** SIGKILL node `id` (default: a follower), restart it, wait until it caught up. Returns the ms until caught up. */
  async killAndRestart(id?: number): Promise<{ id: number; caughtUpMs: number }> {
    const c = (await this.waitCaughtUp()).coordinator;
    const n = id ?? this.nodeIds.find((x) => x !== c)!;
    const t0 = Date.now();
    await this.nemesis.apply('kill', n);
    await this.waitExit(n);
    await sleep(1000);
    await this.nemesis.heal();
    await this.waitCaughtUp();
    return { id: n, caughtUpMs: Date.now() - t0 };
  }

  /** Kills every node and agent, removes the namespaces and (unless kept) the run folder. */
  async close(): Promise<void> {
    this.closeSync();
    await this.databases?.stop();
  }

  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    openSessions.delete(this);
    for (const a of this.agents) a.kill('SIGKILL');
    for (const p of this.procs.values()) {
      if (p.alive) {
        p.child!.kill('SIGCONT');
        p.child!.kill('SIGKILL');
      }
    }
    this.lab.teardown(); // also SIGKILLs whatever is still inside a namespace
    for (const db of this.databases?.instances ?? []) db.child?.kill('SIGKILL');
    if (this.opts.keepDir !== true) rmSync(this.dir, { recursive: true, force: true });
    else this.opts.log(`run folder kept: ${this.dir}`);
  }
}

export interface FaultRunOptions {
  readonly workloads: readonly WorkloadName[];
  readonly faults: readonly FaultName[];
  readonly durationS: number;
  readonly nodes: 3 | 5;
  readonly seed: number;
  readonly keepHistory: string | null;
  readonly heartbeatIntervalMs: number;
  readonly failureTimeoutMs: number;
  /** Length of the coordinator cut for the heal measurement; 0 skips it. */
  readonly healCutS: number;
  readonly engine?: 'sqlite' | 'mysql';
  readonly log: (line: string) => void;
}

export interface FaultRunReport {
  readonly skipped: string | null;
  readonly rows: readonly SummaryRow[];
  readonly measurements: readonly string[];
  readonly ok: boolean;
}

export function formatSummary(rows: readonly SummaryRow[]): string {
  const head = ['workload', 'faults', 'operations', 'acknowledged', 'unknown', 'failed', 'violations', 'verdict'];
  const body = rows.map((r) => [r.workload, r.faults, String(r.operations), String(r.acknowledged), String(r.unknown), String(r.failed), String(r.violations), r.verdict]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}

/** `replisql faults`: every workload under the faults, then the heal and minority measurements. */
export async function runFaults(o: FaultRunOptions): Promise<FaultRunReport> {
  const why = netnsUnavailableReason();
  if (why !== null) return { skipped: why, rows: [], measurements: [], ok: false };
  const session = await FaultSession.open({ nodes: o.nodes, heartbeatIntervalMs: o.heartbeatIntervalMs, failureTimeoutMs: o.failureTimeoutMs, seed: o.seed, log: o.log, keepDir: o.keepHistory !== null, engine: o.engine ?? 'sqlite' });
  const rows: SummaryRow[] = [];
  const measurements: string[] = [];
  let ok = true;
  try {
    const faultS = Math.max(2, Math.ceil((o.failureTimeoutMs * 1.5) / 1000));
    for (const w of o.workloads) {
      const row = await session.runWorkload({ workload: w, faults: o.faults, durationS: o.durationS, faultS, quietS: Math.max(2, Math.ceil(o.failureTimeoutMs / 1000)), concurrency: 4, historyDir: o.keepHistory });
      rows.push(row);
      if (row.verdict !== 'valid') ok = false;
      for (const d of row.details) o.log(`  ${w}: ${d}`);
      if (row.historyFile !== null) o.log(`  history saved: ${row.historyFile}`);
    }
    if (o.healCutS > 0) {
      const h = await session.measureHeal(o.healCutS * 1000);
      const bound = 2 * o.heartbeatIntervalMs;
      const pass = h.maxMs !== null && h.maxMs <= bound;
      if (!pass) ok = false;
      measurements.push(`heal after a ${o.healCutS} s cut of coordinator ${h.coordinator}: every node saw every other after ${h.maxMs ?? 'never'} ms (bound ${bound} ms = 2 heartbeats)${h.missing.length > 0 ? `; missing ${h.missing.join(' ')}` : ''} -> ${pass ? 'ok' : 'FAIL'}`);
    }
    const m = await session.minorityWrites();
    const late = m.writes.filter((w) => w.start >= m.cutAt + m.failureTimeoutMs);
    const lateAcked = late.filter((w) => w.outcome === 'ok').length;
    const early = m.writes.filter((w) => w.start < m.cutAt + m.failureTimeoutMs);
    if (lateAcked > 0 || late.length === 0) ok = false;
    measurements.push(
      `split ${m.minority}: writes pinned to the old coordinator ${m.coordinator}: ${early.length} before the failure timeout (${early.filter((w) => w.outcome === 'ok').length} acknowledged), ${late.length} after it (${lateAcked} acknowledged) -> ${lateAcked === 0 && late.length > 0 ? 'ok' : 'FAIL'}`,
    );
  } finally {
    await session.close();
  }
  return { skipped: null, rows, measurements, ok };
}
