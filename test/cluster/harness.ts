// Real-process cluster harness: writes a config.json for N nodes on 127.0.0.1 (free ports, short
// timings), starts each node as a child process of the built CLI (`bin/replisql.js node`), and lets
// tests kill -9 / SIGSTOP / SIGCONT / restart nodes, talk to them with ReplisqlClient, read STATUS,
// dump tables and read each node's log file. Every child is killed in shutdown() and, as a last
// resort, when the test process exits.
//
// Engines: `engine: 'sqlite'` (default) gives every node its own SQLite file in the temp dir;
// `engine: 'mysql'` starts one MariaDB instance per node (test/mysql/mariadb-harness.ts, database
// `replisql`) and gives every node its own instance. When MariaDB cannot be started, create() throws
// EngineUnavailable (or fails outright when REPLISQL_REQUIRE_MYSQL=1); useCluster() turns that into
// visibly skipped tests. Suites run once per engine in ENGINES:
//
//   for (const engine of ENGINES) describe(engine, () => {
//     const fx = useCluster({ engine });
//     test('...', async (t) => { const cluster = fx.take(t); if (cluster === null) return; ... });
//   });
//
// Needs `npm run build` first (`npm test` builds before running the tests).
import { AssertionError } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, type TestContext } from 'node:test';
import { startMariaDb, type MariaDbEnv, type MariaDbInstance } from '../mysql/mariadb-harness.js';
import { ReplisqlClient, type ClientOptions, type NodeStatus as ClientNodeStatus, type SqlParam } from '../../src/client/client.js';

/** A node's STATUS as sent on the wire (the client library's NodeStatus leaves lastIndex out). */
export interface NodeStatus extends ClientNodeStatus {
  readonly lastIndex: number;
}

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'replisql.js');
export const DIST_MAIN = join(ROOT, 'dist', 'cli', 'main.js');

export type EngineName = 'sqlite' | 'mysql';

/** The database every node of a mysql cluster uses on its own MariaDB instance. */
export const MYSQL_DATABASE = 'replisql';

/**
 * The engines the cluster suites run on: both by default; REPLISQL_TEST_ENGINES=sqlite (or mysql,
 * or "sqlite,mysql") narrows it for a quick local run.
 */
export const ENGINES: readonly EngineName[] = ((): EngineName[] => {
  const raw = process.env['REPLISQL_TEST_ENGINES'];
  if (raw === undefined || raw.trim() === '') return ['sqlite', 'mysql'];
  const list = raw.split(',').map((x) => x.trim());
  for (const e of list) if (e !== 'sqlite' && e !== 'mysql') throw new Error(`REPLISQL_TEST_ENGINES: unknown engine "${e}" (sqlite, mysql)`);
  return [...new Set(list)] as EngineName[];
})();

/** Column types that mean the same on both engines (SQLite and MySQL/MariaDB spell some differently). */
export interface SqlDialect {
  /** An integer primary key the database assigns when the INSERT leaves it out. */
  readonly autoId: string;
  /** A short string usable as a (unique) key: MySQL cannot index TEXT without a prefix length. */
  readonly key: string;
}

export function dialectOf(engine: EngineName): SqlDialect {
  return engine === 'mysql'
    ? { autoId: 'INTEGER PRIMARY KEY AUTO_INCREMENT', key: 'VARCHAR(191)' }
    : { autoId: 'INTEGER PRIMARY KEY', key: 'VARCHAR(191)' };
}

/** create() could not start the databases this engine needs (MariaDB missing, not root, ...). */
export class EngineUnavailable extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'EngineUnavailable';
  }
}

export interface ClusterOptions {
  /** Storage engine of every node. Default 'sqlite'. */
  readonly engine?: EngineName;
  readonly nodes?: number;
  readonly cluster?: string;
  readonly tickMs?: number;
  readonly heartbeatIntervalMs?: number;
  readonly failureTimeoutMs?: number;
  readonly writeTimeoutMs?: number;
  readonly maxFrameBytes?: number;
  /** Give every node a MySQL protocol port (users: root with no password, app/secret). Default false. */
  readonly mysqlFrontEnd?: boolean;
  readonly transactionIdleTimeoutMs?: number;
  /** The database name MySQL clients use (default: the storage's, or "main" on SQLite). */
  readonly mysqlDatabase?: string;
  /** Start the nodes (and wait for each to print its ready line). Default true. */
  readonly start?: boolean;
  /** Keep the temp dir after shutdown (it is always kept when REPLISQL_KEEP_TEST_DIRS=1). */
  readonly keepDir?: boolean;
}

export interface NodeSpec {
  readonly id: number;
  readonly host: string;
  readonly port: number;
  /** The MySQL protocol port, when the cluster has MySQL front ends. */
  readonly mysqlPort: number | null;
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One started node process (a restart makes a new one). */
export class NodeProcess {
  stdout = '';
  stderr = '';
  exitInfo: ExitInfo | null = null;
  readonly exited: Promise<ExitInfo>;
  readonly startedAt = Date.now();

  constructor(
    readonly id: number,
    readonly child: ChildProcess,
  ) {
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => (this.stdout += d));
    child.stderr?.on('data', (d: string) => {
      if (this.stderr.length < 1_000_000) this.stderr += d;
    });
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      child.once('error', (err) => {
        this.stderr += `\n[harness] spawn error: ${err.message}\n`;
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }
}

/** A parsed JSON line of a node's log file. */
export interface LogLine {
  readonly level: number;
  readonly time: string;
  readonly msg: string;
  readonly [k: string]: unknown;
}

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort: never leave node processes behind, whatever happened to the test.
  const killAll = (): void => {
    for (const c of liveChildren) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  };
  process.on('exit', killAll);
  // 'exit' does not run when the test process is ended by a signal: kill the nodes, then die of it.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAll();
      process.kill(process.pid, sig);
    });
  }
}

/** Fails with a clear message when the CLI has not been built. Warns when dist/ looks older than src/. */
export function ensureBuilt(): void {
  if (!existsSync(DIST_MAIN)) {
    throw new Error(`${relative(process.cwd(), DIST_MAIN) || DIST_MAIN} is missing: the cluster tests run the built CLI; run \`npm run build\` first (\`npm test\` builds before running the tests)`);
  }
  const stale = newestSourceNewerThanDist();
  if (stale !== null) {
    process.stderr.write(`[harness] warning: ${stale} is newer than its compiled file in dist/; run \`npm run build\` to test the current code\n`);
  }
}

function newestSourceNewerThanDist(): string | null {
  const src = join(ROOT, 'src');
  const walk = (dir: string): string | null => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = statSync(p);
      if (st.isDirectory()) {
        const r = walk(p);
        if (r !== null) return r;
      } else if (name.endsWith('.ts')) {
        const out = join(ROOT, 'dist', relative(src, p)).replace(/\.ts$/, '.js');
        if (!existsSync(out) || statSync(out).mtimeMs + 1000 < st.mtimeMs) return relative(ROOT, p);
      }
    }
    return null;
  };
  try {
    return walk(src);
  } catch {
    return null;
  }
}

/** `n` distinct free TCP ports on 127.0.0.1 (bound to port 0 together, then released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer();
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve());
      });
      servers.push(s);
    }
    return servers.map((s) => {
      const a = s.address();
      if (a === null || typeof a !== 'object') throw new Error('no port');
      return a.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `p`, or undefined after `ms` (the timer does not keep the process alive). */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise<T | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      () => {
        clearTimeout(timer);
        resolve(undefined);
      },
    );
  });
}

/**
 * Polls `fn` until it returns a value other than undefined/false, or throws after `timeoutMs`
 * with `what` and the last value/error seen. Errors thrown by `fn` count as "not yet".
 */
export async function waitUntil<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { readonly timeoutMs?: number; readonly intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let last: unknown = undefined;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? `${last.name}: ${last.message}` : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(intervalMs);
  }
}

export class Cluster {
  readonly nodes: readonly NodeSpec[];
  readonly configPath: string;
  readonly logDir: string;
  readonly config: Record<string, unknown>;
  readonly heartbeatIntervalMs: number;
  readonly failureTimeoutMs: number;
  readonly tickMs: number;
  readonly clusterName: string;
  readonly engine: EngineName;
  readonly dialect: SqlDialect;
  private readonly procs = new Map<number, NodeProcess>();
  /** Every process ever started per node, oldest first. */
  private readonly history = new Map<number, NodeProcess[]>();
  private readonly clients = new Set<ReplisqlClient>();
  private readonly statusConns = new Map<number, StatusConnection>();
  private shutDown = false;
  /** Set by check() when a test body failed: shutdown() then keeps the temp dir for inspection. */
  failed = false;

  private constructor(
    readonly dir: string,
    nodes: readonly NodeSpec[],
    config: Record<string, unknown>,
    private readonly keepDir: boolean,
    /** The MariaDB instances of a mysql cluster (instance i belongs to node i + 1); null for sqlite. */
    readonly mariadb: MariaDbEnv | null,
  ) {
    this.engine = mariadb === null ? 'sqlite' : 'mysql';
    this.dialect = dialectOf(this.engine);
    this.nodes = nodes;
    this.config = config;
    this.configPath = join(dir, 'config.json');
    this.logDir = join(dir, 'logs');
    this.heartbeatIntervalMs = config['heartbeatIntervalMs'] as number;
    this.failureTimeoutMs = config['failureTimeoutMs'] as number;
    this.tickMs = config['tickMs'] as number;
    this.clusterName = config['cluster'] as string;
  }

  /** Writes the config and (unless `start: false`) starts every node and waits until each is ready. */
  static async create(opts: ClusterOptions = {}): Promise<Cluster> {
    ensureBuilt();
    installExitHook();
    const n = opts.nodes ?? 3;
    const engine = opts.engine ?? 'sqlite';
    let mariadb: MariaDbEnv | null = null;
    if (engine === 'mysql') {
      // Throws when REPLISQL_REQUIRE_MYSQL=1 and MariaDB cannot be started; otherwise says why not.
      const env = await startMariaDb(n, { bufferPool: '16M', database: MYSQL_DATABASE });
      if (env.skip !== false) throw new EngineUnavailable(env.skip);
      mariadb = env;
    }
    const dir = mkdtempSync(join(tmpdir(), `replisql-cluster-${engine}-`));
    const ports = await freePorts(opts.mysqlFrontEnd === true ? 2 * n : n);
    const nodes = ports.slice(0, n).map((port, i) => ({ id: i + 1, host: '127.0.0.1', port, mysqlPort: opts.mysqlFrontEnd === true ? ports[n + i]! : null }));
    const storage = (id: number): Record<string, unknown> => {
      if (mariadb === null) return { engine: 'sqlite', path: `data/node${id}.db` };
      const inst = mariadb.instances[id - 1]!;
      return { engine: 'mysql', host: '127.0.0.1', port: inst.port, user: 'root', password: '', database: MYSQL_DATABASE };
    };
    const config: Record<string, unknown> = {
      cluster: opts.cluster ?? 'clustertest',
      tickMs: opts.tickMs ?? 50,
      heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 300,
      failureTimeoutMs: opts.failureTimeoutMs ?? 1500,
      writeTimeoutMs: opts.writeTimeoutMs ?? 5000,
      writeAck: 'quorum',
      ...(opts.maxFrameBytes !== undefined ? { maxFrameBytes: opts.maxFrameBytes } : {}),
      logDir: 'logs',
      ...(opts.mysqlFrontEnd === true ? { mysqlUsers: [{ user: 'root', password: '' }, { user: 'app', password: 'secret' }] } : {}),
      ...(opts.mysqlDatabase !== undefined ? { mysqlDatabase: opts.mysqlDatabase } : {}),
      ...(opts.transactionIdleTimeoutMs !== undefined ? { transactionIdleTimeoutMs: opts.transactionIdleTimeoutMs } : {}),
      nodes: nodes.map((x) => ({ id: x.id, host: x.host, port: x.port, storage: storage(x.id), ...(x.mysqlPort !== null ? { mysqlPort: x.mysqlPort } : {}) })),
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
    const cluster = new Cluster(dir, nodes, config, opts.keepDir === true || process.env['REPLISQL_KEEP_TEST_DIRS'] === '1', mariadb);
    if (opts.start !== false) {
      try {
        await Promise.all(nodes.map((x) => cluster.start(x.id)));
      } catch (err) {
        await cluster.shutdown(false);
        throw err;
      }
    }
    return cluster;
  }

  spec(id: number): NodeSpec {
    const s = this.nodes.find((x) => x.id === id);
    if (s === undefined) throw new Error(`no node ${id} in this cluster`);
    return s;
  }

  endpoint(id: number): string {
    const s = this.spec(id);
    return `${s.host}:${s.port}`;
  }

  /** host and MySQL protocol port of node `id` (the cluster must have mysqlFrontEnd). */
  mysqlAddress(id: number): { host: string; port: number } {
    const s = this.spec(id);
    if (s.mysqlPort === null) throw new Error('this cluster has no MySQL front ends (mysqlFrontEnd: true)');
    return { host: s.host, port: s.mysqlPort };
  }

  get ids(): number[] {
    return this.nodes.map((x) => x.id);
  }

  proc(id: number): NodeProcess | undefined {
    return this.procs.get(id);
  }

  isRunning(id: number): boolean {
    return this.procs.get(id)?.alive === true;
  }

  /** Starts node `id` (which must not be running) and waits for its ready line on stdout. */
  async start(id: number, readyTimeoutMs = 30_000): Promise<NodeProcess> {
    if (this.shutDown) throw new Error('cluster is shut down');
    if (this.isRunning(id)) throw new Error(`node ${id} is already running (pid ${this.procs.get(id)!.pid})`);
    this.spec(id);
    const child = spawn(process.execPath, [BIN, 'node', '--config', this.configPath, '--id', String(id)], {
      cwd: this.dir,
      env: { ...process.env, REPLISQL_LOG_ECHO: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    liveChildren.add(child);
    child.once('exit', () => liveChildren.delete(child));
    const p = new NodeProcess(id, child);
    this.procs.set(id, p);
    const list = this.history.get(id) ?? [];
    list.push(p);
    this.history.set(id, list);
    const readyRe = new RegExp(`replisql node ${id} ready on `);
    const deadline = Date.now() + readyTimeoutMs;
    while (!readyRe.test(p.stdout)) {
      if (!p.alive) {
        throw new Error(`node ${id} exited before it was ready (${JSON.stringify(p.exitInfo)})\nstdout:\n${p.stdout}\nstderr:\n${p.stderr}\nlog tail:\n${this.logTail(id)}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`node ${id} did not print its ready line within ${readyTimeoutMs} ms\nstdout:\n${p.stdout}\nstderr:\n${p.stderr}\nlog tail:\n${this.logTail(id)}`);
      }
      await sleep(25);
    }
    return p;
  }

  /** Sends `signal` to node `id`. For SIGKILL/SIGTERM/SIGINT waits for the process to exit. */
  async signal(id: number, signal: NodeJS.Signals): Promise<void> {
    const p = this.procs.get(id);
    if (p === undefined || !p.alive) throw new Error(`node ${id} is not running`);
    p.child.kill(signal);
    if (signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT') {
      const timer = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
      await p.exited;
      clearTimeout(timer);
    }
    this.dropStatusClient(id);
  }

  kill(id: number): Promise<void> {
    return this.signal(id, 'SIGKILL');
  }

  pause(id: number): Promise<void> {
    return this.signal(id, 'SIGSTOP');
  }

  resume(id: number): Promise<void> {
    return this.signal(id, 'SIGCONT');
  }

  /** SIGKILL (if running), then start again with the same config and data. */
  async restart(id: number): Promise<NodeProcess> {
    if (this.isRunning(id)) await this.kill(id);
    return this.start(id);
  }

  /** A client with these endpoints (a node id or a failover list of node ids); closed at shutdown. */
  async client(ids: number | readonly number[], opts: ClientOptions = {}): Promise<ReplisqlClient> {
    const list = typeof ids === 'number' ? [ids] : ids;
    const c = await ReplisqlClient.connect(
      list.map((i) => this.endpoint(i)),
      { timeoutMs: 15_000, connectTimeoutMs: 2000, livenessTimeoutMs: 4000, ...opts },
    );
    this.clients.add(c);
    return c;
  }

  async closeClient(c: ReplisqlClient): Promise<void> {
    this.clients.delete(c);
    await c.close();
  }

  /** STATUS of node `id`, complete as sent (a cached raw connection, replaced after any failure). */
  async status(id: number, timeoutMs = 3000): Promise<NodeStatus> {
    let c = this.statusConns.get(id);
    if (c === undefined || c.closed) {
      const spec = this.spec(id);
      c = await StatusConnection.open(spec.host, spec.port, Math.min(timeoutMs, 2000));
      this.statusConns.set(id, c);
    }
    try {
      return await c.status(timeoutMs);
    } catch (err) {
      this.dropStatusClient(id);
      throw err;
    }
  }

  private dropStatusClient(id: number): void {
    const c = this.statusConns.get(id);
    if (c !== undefined) {
      this.statusConns.delete(id);
      c.close();
    }
  }

  /** STATUS of every running node (nodes that fail to answer are left out). */
  async statuses(ids: readonly number[] = this.ids): Promise<Map<number, NodeStatus>> {
    const out = new Map<number, NodeStatus>();
    await Promise.all(
      ids.filter((i) => this.isRunning(i)).map(async (i) => {
        try {
          out.set(i, await this.status(i));
        } catch {
          /* not answering */
        }
      }),
    );
    return out;
  }

  /**
   * Waits until every node in `ids` reports node `expected` as coordinator (same term) and
   * `expected` itself is leader. Returns the leader's status.
   */
  async waitForCoordinator(expected: number, ids: readonly number[] = this.ids.filter((i) => this.isRunning(i)), timeoutMs = 30_000): Promise<NodeStatus> {
    return waitUntil(
      `node ${expected} to be coordinator as seen by nodes ${ids.join(',')}`,
      async () => {
        const st = await this.statuses(ids);
        if (st.size !== ids.length) return undefined;
        const leader = st.get(expected);
        if (leader === undefined || leader.role !== 'leader') return undefined;
        for (const s of st.values()) if (s.coordinator !== expected || s.term !== leader.term) return undefined;
        return leader;
      },
      { timeoutMs, intervalMs: 50 },
    );
  }

  /**
   * Waits until each node in `ids` has applied at least the current coordinator's commitIndex
   * (read once from `coordinator` when not given). Returns that index.
   */
  async waitCaughtUp(ids: readonly number[], coordinator: number, timeoutMs = 30_000): Promise<number> {
    const target = (await this.status(coordinator)).commitIndex;
    await waitUntil(
      `nodes ${ids.join(',')} to apply up to index ${target}`,
      async () => {
        const st = await this.statuses(ids);
        if (st.size !== ids.length) return undefined;
        return [...st.values()].every((s) => s.appliedIndex >= target) ? true : undefined;
      },
      { timeoutMs, intervalMs: 50 },
    );
    return target;
  }

  /** Runs a read on node `id` only. */
  async query(id: number, sql: string, params: readonly SqlParam[] = []): Promise<unknown[][]> {
    const c = await this.client(id, { timeoutMs: 20_000 });
    try {
      const res = await c.query(sql, params);
      const last = res[res.length - 1];
      return last === undefined ? [] : (last.rows as unknown[][]);
    } finally {
      await this.closeClient(c);
    }
  }

  /** Every row of `table` on node `id`, ordered by `orderBy` (default: every column in order). */
  async dump(id: number, table: string, orderBy?: string): Promise<unknown[][]> {
    const order = orderBy ?? '1';
    return this.query(id, `SELECT * FROM ${table} ORDER BY ${order}`);
  }

  // ---------------------------------------------------------------- MariaDB (mysql clusters)

  /** Node `id`'s MariaDB instance (throws on a sqlite cluster). */
  db(id: number): MariaDbInstance {
    if (this.mariadb === null) throw new Error('this is a sqlite cluster: no MariaDB instances');
    this.spec(id);
    const inst = this.mariadb.instances[id - 1];
    if (inst === undefined) throw new Error(`no MariaDB instance for node ${id}`);
    return inst;
  }

  /** kill -9 node `id`'s MariaDB server (the node keeps running). */
  async killDatabase(id: number): Promise<void> {
    await this.db(id).kill9();
  }

  /** Starts node `id`'s MariaDB server again on its datadir and port (InnoDB recovers). */
  async startDatabase(id: number): Promise<void> {
    await this.db(id).start();
  }

  /**
   * Straight from node `id`'s MariaDB instance, not through the node: `CHECKSUM TABLE` and the row
   * count of each table, as `{ table: "rows=N checksum=C" }`.
   */
  async checksums(id: number, tables: readonly string[]): Promise<Record<string, string>> {
    const c = await this.db(id).connect(MYSQL_DATABASE);
    try {
      const out: Record<string, string> = {};
      const [sums] = await c.query(`CHECKSUM TABLE ${tables.map((t) => `\`${t}\``).join(', ')}`);
      const byName = new Map((sums as { Table: string; Checksum: unknown }[]).map((r) => [r.Table.replace(/^.*\./, ''), String(r.Checksum)]));
      for (const t of tables) {
        const [cnt] = await c.query(`SELECT COUNT(*) AS n FROM \`${t}\``);
        out[t] = `rows=${String((cnt as { n: unknown }[])[0]?.n)} checksum=${byName.get(t) ?? 'missing'}`;
      }
      return out;
    } finally {
      await c.end();
    }
  }

  /**
   * What to compare between nodes `ids` for `tables`: on a mysql cluster the
   * checksums read from each MariaDB instance directly; on a sqlite cluster each table's rows read
   * through the node, ordered by `orderBy` (default column 1).
   */
  async fingerprints(ids: readonly number[], tables: readonly string[], orderBy = '1'): Promise<Map<number, unknown>> {
    const out = new Map<number, unknown>();
    for (const id of ids) {
      if (this.mariadb !== null) out.set(id, await this.checksums(id, tables));
      else {
        const t: Record<string, unknown[][]> = {};
        for (const name of tables) t[name] = await this.dump(id, name, orderBy);
        out.set(id, t);
      }
    }
    return out;
  }

  /**
   * On a mysql cluster: fails unless CHECKSUM TABLE and the row count of every table in `tables` are
   * the same on the MariaDB instances of nodes `ids` (read directly); returns them. On a sqlite
   * cluster: nothing to check at the file level (compare dump()s), returns null.
   */
  async assertSameChecksums(ids: readonly number[], tables: readonly string[]): Promise<Record<string, string> | null> {
    if (this.mariadb === null) return null;
    const sums = await this.fingerprints(ids, tables);
    const first = sums.get(ids[0]!) as Record<string, string>;
    const differing = ids.filter((id) => JSON.stringify(sums.get(id)) !== JSON.stringify(first));
    if (differing.length > 0) {
      const detail = ids.map((id) => `node ${id}: ${JSON.stringify(sums.get(id))}`).join('; ');
      throw new AssertionError({ message: `CHECKSUM TABLE differs between the MariaDB instances of nodes ${ids.join(', ')}: ${detail}`, actual: sums.get(differing[0]!), expected: first, operator: 'deepStrictEqual' });
    }
    return first;
  }

  /** The node's log file (logs/node<ID>.log), '' when it does not exist yet. */
  logText(id: number): string {
    const p = join(this.logDir, `node${id}.log`);
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  }

  /** The log file as parsed JSON lines (unparsable lines, e.g. a torn last line, are skipped). */
  logLines(id: number): LogLine[] {
    const out: LogLine[] = [];
    for (const line of this.logText(id).split('\n')) {
      if (line.trim() === '') continue;
      try {
        out.push(JSON.parse(line) as LogLine);
      } catch {
        /* torn line */
      }
    }
    return out;
  }

  /**
   * Structured log events of node `id`: lines whose `event` field is `type` (a core event type such as
   * 'became-coordinator', or a shell event such as 'database-failed'), after `sinceLine` (an index
   * into logLines()), optionally narrowed by their fields.
   */
  events(id: number, type: string, sinceLine = 0, where: (line: LogLine) => boolean = () => true): LogLine[] {
    return this.logLines(id)
      .slice(sinceLine)
      .filter((l) => l['event'] === type && where(l));
  }

  /** Waits until node `id` logged event `type` (after `sinceLine`, matching `where`); returns the first. */
  waitForEvent(id: number, type: string, opts: { sinceLine?: number; where?: (line: LogLine) => boolean; timeoutMs?: number } = {}): Promise<LogLine> {
    return waitUntil(`event ${type} in node ${id}'s log`, () => this.events(id, type, opts.sinceLine ?? 0, opts.where)[0], { timeoutMs: opts.timeoutMs ?? 10_000, intervalMs: 50 });
  }

  logTail(id: number, lines = 30): string {
    return this.logText(id).split('\n').slice(-lines - 1).join('\n');
  }

  /** Collects every node's log file and process output, for a failure report. */
  collectLogs(): Record<number, { log: string; stdout: string; stderr: string }> {
    const out: Record<number, { log: string; stdout: string; stderr: string }> = {};
    for (const { id } of this.nodes) {
      const procs = this.history.get(id) ?? [];
      out[id] = {
        log: this.logText(id),
        stdout: procs.map((p) => p.stdout).join('\n--- restart ---\n'),
        stderr: procs.map((p) => p.stderr).join('\n--- restart ---\n'),
      };
    }
    return out;
  }

  /** A short diagnostic: each node's pid/state, last stderr and log tail. */
  describe(): string {
    const parts: string[] = [`cluster dir: ${this.dir}`];
    for (const { id } of this.nodes) {
      const p = this.procs.get(id);
      parts.push(`--- node ${id}: ${p === undefined ? 'never started' : p.alive ? `running (pid ${p.pid})` : `exited ${JSON.stringify(p.exitInfo)}`}`);
      if (p !== undefined && p.stderr.trim() !== '') parts.push(`stderr: ${p.stderr.slice(-2000)}`);
      parts.push(this.logTail(id, 15));
    }
    return parts.join('\n');
  }

  /** Runs a test body; on failure prints each node's state and log tail, and keeps the temp dir. */
  async check<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.failed = true;
      process.stderr.write(`\n[harness] test failed; cluster state:\n${this.describe()}\n`);
      throw err;
    }
  }

  /**
   * Kills every node (SIGKILL also ends a SIGSTOPped process), closes every client, and removes the
   * temp dir unless a test failed (see check(); or pass `passed=false`) or keepDir was asked for.
   */
  async shutdown(passed = !this.failed): Promise<void> {
    this.shutDown = true;
    const closing = [...this.clients].map((c) => c.close().catch(() => undefined));
    for (const c of this.statusConns.values()) c.close();
    this.clients.clear();
    this.statusConns.clear();
    const waits: Promise<unknown>[] = [];
    for (const p of this.procs.values()) {
      if (!p.alive) continue;
      try {
        p.child.kill('SIGKILL');
      } catch {
        /* gone */
      }
      waits.push(withTimeout(p.exited, 5000));
    }
    await Promise.all([...waits, ...closing]);
    if (this.mariadb !== null) {
      // kill -9, not a clean stop: the data is thrown away (or kept only for inspection), and
      // MariaDbInstance.stop() leaves a 15 s grace timer behind that holds the test process open.
      await Promise.all(this.mariadb.instances.map((i) => i.kill9()));
      if (passed && !this.keepDir) await this.mariadb.stop();
      else {
        process.stderr.write(`[harness] kept MariaDB dirs ${this.mariadb.instances.map((i) => i.dir).join(', ')}\n`);
      }
    }
    if (passed && !this.keepDir) rmSync(this.dir, { recursive: true, force: true });
    else process.stderr.write(`[harness] kept cluster dir ${this.dir}\n`);
  }
}

/**
 * Registers before/after hooks in the enclosing describe (or file) that create a cluster and shut it
 * down. A test calls take(t): the cluster, or null after marking the test skipped because the
 * engine's databases cannot be started here (REPLISQL_REQUIRE_MYSQL=1 makes that a failure instead).
 */
export function useCluster(opts: ClusterOptions = {}): ClusterFixture {
  const fx = new ClusterFixture();
  before(async () => {
    try {
      fx.cluster = await Cluster.create(opts);
    } catch (err) {
      if (!(err instanceof EngineUnavailable)) throw err;
      fx.skipped = err.reason;
    }
  });
  after(async () => {
    await fx.cluster?.shutdown();
  });
  return fx;
}

export class ClusterFixture {
  cluster: Cluster | null = null;
  skipped: string | null = null;

  /** The cluster; or null, with `t` marked skipped and the reason shown, when the engine is unavailable. */
  take(t: TestContext): Cluster | null {
    if (this.cluster !== null) return this.cluster;
    if (this.skipped !== null) {
      t.skip(`MariaDB unavailable: ${this.skipped}`);
      return null;
    }
    throw new Error('the cluster was not created (see the before hook)');
  }
}

/** A raw client connection used only for STATUS, so that every field the node sends is kept. */
class StatusConnection {
  closed = false;
  private buf = '';
  private nextId = 0;
  private readonly waiting = new Map<string, { resolve: (s: NodeStatus) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => this.onData(d));
    socket.on('error', () => undefined);
    socket.on('close', () => this.fail(new Error('STATUS connection closed')));
  }

  static open(host: string, port: number, timeoutMs: number): Promise<StatusConnection> {
    return new Promise((resolve, reject) => {
      const s = connect({ host, port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(new StatusConnection(s));
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  status(timeoutMs: number): Promise<NodeStatus> {
    if (this.closed) return Promise.reject(new Error('STATUS connection closed'));
    const id = `status-${++this.nextId}`;
    return new Promise<NodeStatus>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`no STATUS answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
      this.socket.write(JSON.stringify({ type: 'STATUS', id }) + '\n');
    });
  }

  close(): void {
    this.fail(new Error('STATUS connection closed'));
    this.socket.destroy();
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) !== -1) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let f: { type?: unknown; id?: unknown; status?: unknown; error?: { message?: unknown } };
      try {
        f = JSON.parse(line) as typeof f;
      } catch {
        continue;
      }
      const w = typeof f.id === 'string' ? this.waiting.get(f.id) : undefined;
      if (w === undefined) continue;
      this.waiting.delete(f.id as string);
      clearTimeout(w.timer);
      if (f.type === 'STATUS' && typeof f.status === 'object' && f.status !== null) w.resolve(f.status as NodeStatus);
      else w.reject(new Error(`unexpected answer to STATUS: ${line.slice(0, 200)}`));
    }
  }

  private fail(err: Error): void {
    this.closed = true;
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiting.clear();
  }
}

/** Runs `tasks` with at most `concurrency` in flight; resolves with their results in order. */
export async function runConcurrently<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<PromiseSettledResult<T>[]> {
  const results: PromiseSettledResult<T>[] = new Array(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      try {
        results[i] = { status: 'fulfilled', value: await task(i) };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, () => worker()));
  return results;
}

/** The code of a ReplisqlError / ClientConnectionError, or the error's name. */
export function errorCode(err: unknown): string {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : err instanceof Error ? err.name : String(err);
}

/** What a finished child process printed. */
export interface ProcessRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs a program to completion (SIGKILL after `timeoutMs`), feeding it `input` on stdin. */
export function runProcess(cmd: string, args: readonly string[], opts: { readonly input?: string; readonly timeoutMs?: number } = {}): Promise<ProcessRun> {
  return new Promise((resolve) => {
    const started = Date.now();
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    p.stdout.setEncoding('utf8');
    p.stderr.setEncoding('utf8');
    p.stdout.on('data', (d: string) => (stdout += d));
    p.stderr.on('data', (d: string) => (stderr += d));
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
    p.stdin.on('error', () => undefined);
    p.stdin.end(opts.input ?? '');
  });
}
