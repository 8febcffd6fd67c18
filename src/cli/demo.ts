// `replisql demo`: a local cluster of N nodes on 127.0.0.1, each a child process. Nothing is
// restarted automatically (killing a node and watching the others is the point of a demo);
// Ctrl-C / SIGTERM stops every node and waits for them.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, relative, resolve, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { ConfigError } from '../errors.js';
import { loadConfig, writeDemoConfig, describeStorage, type ResolvedConfig } from '../config/load.js';

export interface DemoOptions {
  readonly nodes: number;
  readonly dir: string;
  readonly basePort: number;
  /**
   * Arguments for `process.execPath` that start node `id`; default
   * `[bin/replisql.js, 'node', '--config', configPath, '--id', id]`. Tests replace the node program.
   */
  readonly nodeArgs?: (configPath: string, id: number) => string[];
}

/** A node that ignores SIGTERM this long gets SIGKILL. */
const STOP_GRACE_MS = 10_000;

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root: src/cli/ or dist/cli/ are two levels below it. */
const root = resolve(here, '..', '..');

function portInUse(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => res(err.code === 'EADDRINUSE' || err.code === 'EACCES'));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => res(false)));
  });
}

function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/** Refuses to reuse a demo folder whose existing cluster has a different shape. */
function checkExisting(dir: string, opts: DemoOptions): void {
  const path = join(resolve(dir), 'config.json');
  if (!existsSync(path)) return;
  let existing: ResolvedConfig;
  try {
    existing = loadConfig(path);
  } catch {
    return; // unreadable: overwritten below
  }
  const wanted = Array.from({ length: opts.nodes }, (_, i) => `${i + 1}@${opts.basePort + i}`).join(',');
  const have = existing.nodes.map((n) => `${n.id}@${n.port}`).join(',');
  const dataDir = join(resolve(dir), 'data');
  if (wanted !== have && existsSync(dataDir)) {
    throw new ConfigError(
      `${shown(dir)} already holds a ${existing.nodes.length}-node demo cluster (ports ${existing.nodes.map((n) => n.port).join(', ')}) ` +
        `with data in ${shown(dataDir)}; starting ${opts.nodes} nodes from port ${opts.basePort} over that data would not be the same cluster. ` +
        `Use the same --nodes/--base-port, another --dir, or delete ${shown(dir)}.`,
    );
  }
}

/** Runs the demo until every node has exited; returns the exit code. */
export async function runDemo(opts: DemoOptions, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const say = (line: string) => out.write(`${line}\n`);
  const binPath = join(root, 'bin', 'replisql.js');
  if (opts.nodeArgs === undefined && !existsSync(join(root, 'dist', 'cli', 'main.js'))) {
    say(`replisql demo: ${shown(join(root, 'dist'))} is missing; run \`npm run build\` first (npm start does it)`);
    return 1;
  }
  checkExisting(opts.dir, opts);
  const configPath = writeDemoConfig(opts.dir, opts.nodes, opts.basePort);
  const config = loadConfig(configPath);
  for (const n of config.nodes) {
    for (const port of n.mysqlPort === null ? [n.port] : [n.port, n.mysqlPort]) {
      if (await portInUse(n.host, port)) {
        say(
          `replisql demo: port ${port} on ${n.host} is already in use (is another demo still running?); ` +
            `stop it or choose another --base-port`,
        );
        return 1;
      }
    }
  }

  const cli = `node ${shown(binPath)}`;
  const endpoints = config.nodes.map((n) => `${n.host}:${n.port}`).join(',');
  say(`replisql demo: ${config.nodes.length} node(s), cluster "${config.cluster}", config ${shown(configPath)}`);

  const children = new Map<number, ChildProcess>();
  let stopping = false;
  let finished: (code: number) => void = () => {};
  const done = new Promise<number>((res) => (finished = res));
  let unexpectedExits = 0;

  const prefixLines = (id: number, stream: NodeJS.ReadableStream | null) => {
    if (stream === null) return;
    const rl = createInterface({ input: stream });
    rl.on('line', (line) => say(`[node ${id}] ${line}`));
  };

  for (const n of config.nodes) {
    const args = opts.nodeArgs?.(configPath, n.id) ?? [binPath, 'node', '--config', configPath, '--id', String(n.id)];
    // detached: the node is in its own process group, so the terminal's Ctrl-C reaches only the
    // demo, which then stops each node once, in order, and waits for it.
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.set(n.id, child);
    prefixLines(n.id, child.stdout);
    prefixLines(n.id, child.stderr);
    child.on('error', (err) => say(`[demo] node ${n.id}: could not start: ${err.message}`));
    child.on('exit', (code, signal) => {
      children.delete(n.id);
      const how = signal !== null ? `signal ${signal}` : `code ${code}`;
      if (!stopping) {
        unexpectedExits++;
        const others = children.size === 0 ? 'no node is running any more' : `${children.size} other node(s) keep running`;
        say(
          `[demo] node ${n.id} (pid ${child.pid}) exited unexpectedly (${how}); ${others}. ` +
            `Start it again in another terminal with: ${cli} node --config ${shown(configPath)} --id ${n.id}`,
        );
      } else {
        say(`[demo] node ${n.id} stopped (${how})`);
      }
      if (children.size === 0) finished(stopping && unexpectedExits === 0 ? 0 : 1);
    });
  }

  say('');
  for (const n of config.nodes) {
    say(
      `  node ${n.id}  ${n.host}:${n.port}${n.mysqlPort === null ? '' : `  mysql ${n.host}:${n.mysqlPort}`}  pid ${children.get(n.id)?.pid ?? '?'}  database ${n.storage.engine === 'sqlite' ? shown(n.storage.path) : describeStorage(n.storage)}`,
    );
  }
  say('');
  say(`Logs: ${shown(config.logDir)}/node<ID>.log (and each node's output below, prefixed [node N])`);
  say('Try, in another terminal:');
  say(`  ${cli} client --connect ${endpoints}`);
  say(`  ${cli} client --connect ${endpoints} -e "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('hello'); SELECT * FROM t;"`);
  say(`  ${cli} status --connect ${endpoints}`);
  const firstMysql = config.nodes.find((n) => n.mysqlPort !== null);
  if (firstMysql !== undefined) {
    say(`  mariadb -h ${firstMysql.host} -P ${firstMysql.mysqlPort} -u root main   (any MySQL client or driver; SQL is SQLite's)`);
  }
  say(`  kill -9 <pid of a node>   (then run status again; nothing restarts it automatically)`);
  say('Press Ctrl-C to stop every node.');
  say('');

  const killAll = (signal: NodeJS.Signals) => {
    for (const child of children.values()) {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    }
  };
  let forceTimer: NodeJS.Timeout | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) {
      say(`[demo] ${sig} again: killing ${children.size} node(s) now`);
      killAll('SIGKILL');
      return;
    }
    stopping = true;
    if (children.size === 0) {
      finished(0);
      return;
    }
    say(`[demo] ${sig}: stopping ${children.size} node(s) (again to force)...`);
    killAll('SIGTERM');
    forceTimer = setTimeout(() => {
      say(`[demo] node(s) ${[...children.keys()].join(', ')} did not stop within ${STOP_GRACE_MS / 1000} s: SIGKILL`);
      killAll('SIGKILL');
    }, STOP_GRACE_MS);
    forceTimer.unref();
  };
  const onExit = () => killAll('SIGKILL'); // never leave detached nodes behind if the demo dies
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);
  try {
    return await done;
  } finally {
    if (forceTimer !== null) clearTimeout(forceTimer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  }
}
