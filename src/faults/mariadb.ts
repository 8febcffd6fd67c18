// Real MariaDB servers for tests and for the fault suite's MySQL runs: N independent instances, each with its own datadir, port, socket and
// pid file, run as the `mysql` user, small enough for a 2-core machine. One datadir is initialised with
// mariadb-install-db and copied for every instance (initialising takes ~4 s, copying ~0.1 s).
//
//   const env = await startMariaDb(3);            // never throws when MariaDB is simply unavailable
//   describe('...', { skip: env.skip }, () => { ... env.instances[0].port ... });
//   after(() => env.stop());
//
// When MariaDB cannot be started (binaries missing, not root, no `mysql` user, the server does not
// come up, or REPLISQL_NO_MYSQL=1), `skip` holds the reason and the tests are reported as skipped with
// it, unless REPLISQL_REQUIRE_MYSQL=1 is set: then startMariaDb throws, so the test file fails.
// Every server is killed when the test process exits, even after a failure.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';

export const REQUIRE_MYSQL = process.env.REPLISQL_REQUIRE_MYSQL === '1';

export interface MariaDbOptions {
  /** Buffer pool per instance. Default '32M'. */
  readonly bufferPool?: string;
  /** Database created on every instance (utf8mb4). Default 'replisql'. */
  readonly database?: string;
  /** How long a server may take to accept connections. Default 60000. */
  readonly startTimeoutMs?: number;
}

const INSTALL_DB = 'mariadb-install-db';
const SERVER_CANDIDATES = ['/usr/sbin/mariadbd', '/usr/bin/mariadbd', '/usr/local/bin/mariadbd', '/usr/sbin/mysqld'];

/** One MariaDB server: its files, its port, its process. */
export class MariaDbInstance {
  child: ChildProcess | null = null;
  private exitPromise: Promise<void> | null = null;

  constructor(
    readonly id: number,
    readonly dir: string,
    readonly port: number,
    private readonly serverBin: string,
    private readonly bufferPool: string,
  ) {}

  get datadir(): string {
    return path.join(this.dir, 'data');
  }
  get socket(): string {
    return path.join(this.dir, 'mysqld.sock');
  }
  get pidFile(): string {
    return path.join(this.dir, 'mysqld.pid');
  }
  get errorLog(): string {
    return path.join(this.dir, 'error.log');
  }
  get pid(): number | null {
    return this.child?.pid ?? null;
  }
  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Connection settings for root over TCP. */
  connection(database?: string): { host: string; port: number; user: string; password: string; database?: string } {
    return { host: '127.0.0.1', port: this.port, user: 'root', password: '', ...(database === undefined ? {} : { database }) };
  }

  /** Starts the server on its datadir and port and waits until it accepts connections. */
  async start(timeoutMs = 60_000): Promise<void> {
    if (this.running) throw new Error(`mariadb #${this.id} is already running`);
    fs.rmSync(this.socket, { force: true });
    fs.rmSync(this.pidFile, { force: true });
    fs.mkdirSync(path.join(this.dir, 'tmp'), { recursive: true });
    execFileSync('chown', ['mysql:mysql', path.join(this.dir, 'tmp')]);
    const args = [
      '--no-defaults',
      '--user=mysql',
      `--datadir=${this.datadir}`,
      `--port=${this.port}`,
      '--bind-address=127.0.0.1',
      `--socket=${this.socket}`,
      `--pid-file=${this.pidFile}`,
      `--log-error=${this.errorLog}`,
      `--tmpdir=${path.join(this.dir, 'tmp')}`,
      `--innodb-buffer-pool-size=${this.bufferPool}`,
      '--innodb-log-file-size=16M',
      '--innodb-log-buffer-size=2M',
      '--skip-log-bin',
      '--skip-name-resolve',
      '--performance-schema=OFF',
      '--max-connections=60',
      '--key-buffer-size=1M',
      '--aria-pagecache-buffer-size=2M',
      '--table-open-cache=200',
      '--innodb-read-io-threads=1',
      '--innodb-write-io-threads=1',
      '--skip-innodb-adaptive-hash-index',
      '--character-set-server=utf8mb4',
      '--collation-server=utf8mb4_general_ci',
    ];
    const child = spawn(this.serverBin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    this.child = child;
    this.exitPromise = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    live.add(this);
    // A watchdog kills the server if this test process dies without cleaning up (kill -9, a crash).
    if (child.pid !== undefined) {
      spawn('sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${child.pid} 2>/dev/null; do sleep 1; done; kill -9 ${child.pid} 2>/dev/null`], {
        detached: true,
        stdio: 'ignore',
      }).unref();
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) {
        throw new Error(`mariadb #${this.id} exited during startup (port ${this.port}): ${stderr.trim()} ${this.errorTail()}`);
      }
      try {
        const c = await mysql.createConnection({ ...this.connection(), connectTimeout: 1000 });
        await c.end();
        return;
      } catch {
        if (Date.now() > deadline) {
          await this.kill9();
          throw new Error(`mariadb #${this.id} did not accept connections within ${timeoutMs} ms: ${this.errorTail()}`);
        }
        await sleep(100);
      }
    }
  }

  /** kill -9: the server dies without flushing anything (InnoDB recovers on the next start). */
  async kill9(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    if (this.running) child.kill('SIGKILL');
    await this.exitPromise;
    this.child = null;
    live.delete(this);
  }

  /** A clean shutdown (SIGTERM), kill -9 after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    const child = this.child;
    if (child === null) return;
    if (this.running) {
      child.kill('SIGTERM');
      const done = await Promise.race([this.exitPromise!.then(() => true), sleep(graceMs).then(() => false)]);
      if (!done) child.kill('SIGKILL');
    }
    await this.exitPromise;
    this.child = null;
    live.delete(this);
  }

  /** kill -9, then start again on the same datadir and port. */
  async restart(timeoutMs?: number): Promise<void> {
    await this.kill9();
    await this.start(timeoutMs);
  }

  /** A root connection (mysql2/promise); the caller ends it. */
  async connect(database?: string): Promise<mysql.Connection> {
    return mysql.createConnection({ ...this.connection(database), connectTimeout: 2000 });
  }

  /** Runs statements as root and returns the rows of the last one. */
  async sql(database: string | undefined, ...statements: string[]): Promise<unknown[]> {
    const c = await this.connect(database);
    try {
      let last: unknown[] = [];
      for (const s of statements) {
        const [rows] = await c.query(s);
        last = Array.isArray(rows) ? rows : [];
      }
      return last;
    } finally {
      await c.end();
    }
  }

  private errorTail(): string {
    try {
      return fs.readFileSync(this.errorLog, 'utf8').split('\n').slice(-8).join('\n');
    } catch {
      return '(no error log)';
    }
  }
}

export interface MariaDbEnv {
  /** Why the MariaDB tests are skipped; false when the instances run. */
  readonly skip: string | false;
  readonly instances: MariaDbInstance[];
  /** Kills every instance and removes their files. */
  stop(): Promise<void>;
}

const live = new Set<MariaDbInstance>();
/** Base directories to remove if the process is interrupted before stop(). */
const baseDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = (): void => {
    for (const inst of live) {
      try {
        inst.child?.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.once('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAll();
      if (process.env.REPLISQL_KEEP_TEST_DIRS !== '1') {
        // The servers may still hold their files for a moment; removal is best effort.
        for (const d of baseDirs) fs.rmSync(d, { recursive: true, force: true, maxRetries: 3 });
      }
      process.exit(130);
    });
  }
}

/** A sleep that does not keep the process alive (stop() races one against the server's exit). */
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** A port that was free a moment ago (the server is retried on another one if it is taken meanwhile). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function which(cmd: string): string | null {
  for (const d of (process.env.PATH ?? '').split(path.delimiter)) {
    if (d === '') continue;
    const p = path.join(d, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** Why MariaDB cannot run here, or null when it can. */
function unavailableReason(): { reason: string | null; serverBin: string; installDb: string } {
  const installDb = which(INSTALL_DB) ?? '';
  const serverBin = which('mariadbd') ?? SERVER_CANDIDATES.find((p) => fs.existsSync(p)) ?? '';
  if (process.env.REPLISQL_NO_MYSQL === '1') return { reason: 'REPLISQL_NO_MYSQL=1', serverBin, installDb };
  if (process.platform !== 'linux') return { reason: `MariaDB tests run on Linux only (this is ${process.platform})`, serverBin, installDb };
  if (installDb === '' || serverBin === '') return { reason: 'MariaDB is not installed (mariadbd / mariadb-install-db not found)', serverBin, installDb };
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return { reason: 'MariaDB tests must run as root (the servers are started as the mysql user)', serverBin, installDb };
  }
  const passwd = fs.existsSync('/etc/passwd') ? fs.readFileSync('/etc/passwd', 'utf8') : '';
  const hasUser = /^mysql:/m.test(passwd) || spawnSync('id', ['-u', 'mysql']).status === 0;
  if (!hasUser) return { reason: 'there is no mysql user to run MariaDB as', serverBin, installDb };
  return { reason: null, serverBin, installDb };
}

/**
 * Starts `n` MariaDB instances and creates `database` on each. Resolves with `skip` set when MariaDB
 * cannot run here (and REPLISQL_REQUIRE_MYSQL is not 1).
 */
export async function startMariaDb(n: number, opts: MariaDbOptions = {}): Promise<MariaDbEnv> {
  const database = opts.database ?? 'replisql';
  const { reason, serverBin, installDb } = unavailableReason();
  const skipped = (why: string): MariaDbEnv => {
    if (REQUIRE_MYSQL) throw new Error(`REPLISQL_REQUIRE_MYSQL=1 but MariaDB cannot be used: ${why}`);
    console.log(`# MariaDB tests skipped: ${why}`);
    return { skip: why, instances: [], stop: async () => undefined };
  };
  if (reason !== null) return skipped(reason);
  installExitHook();
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'replisql-mariadb-'));
  baseDirs.add(base);
  fs.chmodSync(base, 0o755);
  const instances: MariaDbInstance[] = [];
  const stop = async (): Promise<void> => {
    // The files are deleted right after: no need for a clean shutdown.
    await Promise.all(instances.map((i) => i.kill9()));
    if (process.env.REPLISQL_KEEP_TEST_DIRS !== '1') fs.rmSync(base, { recursive: true, force: true });
    baseDirs.delete(base);
  };
  try {
    const template = path.join(base, 'template');
    fs.mkdirSync(template);
    execFileSync('chown', ['mysql:mysql', template]);
    const installTmp = path.join(template, 'tmp');
    fs.mkdirSync(installTmp);
    execFileSync('chown', ['mysql:mysql', installTmp]);
    const install = spawnSync(
      installDb,
      [
        '--no-defaults',
        '--user=mysql',
        `--datadir=${path.join(template, 'data')}`,
        `--tmpdir=${installTmp}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        '--skip-name-resolve',
        '--innodb-log-file-size=16M',
        `--innodb-buffer-pool-size=${opts.bufferPool ?? '32M'}`,
        '--skip-log-bin',
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    if (install.status !== 0) throw new Error(`mariadb-install-db failed (${install.status}): ${(install.stderr || install.stdout).slice(-2000)}`);
    for (let i = 0; i < n; i++) {
      const dir = path.join(base, `m${i + 1}`);
      execFileSync('cp', ['-a', template, dir]);
      let started = false;
      for (let attempt = 0; attempt < 3 && !started; attempt++) {
        const inst = new MariaDbInstance(i + 1, dir, await freePort(), serverBin, opts.bufferPool ?? '32M');
        try {
          await inst.start(opts.startTimeoutMs);
          instances.push(inst);
          started = true;
        } catch (e) {
          await inst.kill9();
          if (attempt === 2 || !/Can't start server|Address already in use|exited during startup/i.test(String(e))) throw e;
        }
      }
    }
    fs.rmSync(template, { recursive: true, force: true });
    await Promise.all(instances.map((inst) => inst.sql(undefined, `CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`)));
    return { skip: false, instances, stop };
  } catch (e) {
    await stop().catch(() => undefined);
    return skipped(`MariaDB could not be started: ${(e as Error).message}`);
  }
}
