// Reading config.json from disk (bounded, with JSON errors given as line:column) and writing the
// demo cluster's config.
import { readFileSync, writeFileSync, mkdirSync, statSync, renameSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { ConfigError } from '../errors.js';
import { parseConfig } from './config.js';
import { CONFIG_DEFAULTS, MAX_NODES, type ConfigInput } from './schema.js';
import type { ConfigEnv, ResolvedConfig } from './resolved.js';

// The config API other modules and scripts use (scripts import dist/config/load.js).
export { parseConfig } from './config.js';
export { CONFIG_DEFAULTS, type ConfigInput } from './schema.js';
export {
  msToTicks,
  findNode,
  describeStorage,
  type ResolvedConfig,
  type ResolvedNode,
  type ResolvedStorage,
  type ResolvedSqliteStorage,
  type ResolvedMysqlStorage,
  type ConfigEnv,
} from './resolved.js';
export { isLoopbackHost } from './hosts.js';
export { redactConfig, redactUrl } from './redact.js';

/** A config file larger than this is certainly a mistake (15 nodes fit in a few KiB). */
export const MAX_CONFIG_FILE_BYTES = 1 << 20;

function lineColumn(text: string, position: number): string {
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `line ${line}, column ${column}`;
}

/**
 * Reads, validates and resolves a config file. Relative paths inside it resolve against the file's
 * folder; `passwordEnv` variables are read from `opts.env` (default process.env). Throws ConfigError
 * naming the file, every invalid field and how to fix it (never a password).
 */
export function loadConfig(path: string, opts: { readonly env?: ConfigEnv } = {}): ResolvedConfig {
  const label = path;
  const abs = resolve(path);
  let text: string;
  try {
    const st = statSync(abs);
    if (!st.isFile()) throw new ConfigError(`${label}: not a regular file`);
    if (st.size > MAX_CONFIG_FILE_BYTES) {
      throw new ConfigError(`${label}: file is ${st.size} bytes; a config larger than ${MAX_CONFIG_FILE_BYTES} bytes is refused`);
    }
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const e = err as NodeJS.ErrnoException;
    const hint = e.code === 'ENOENT' ? ' (write one as described in docs/configuration.md, or run `replisql demo` to get an example)' : '';
    throw new ConfigError(`${label}: cannot read the config file: ${e.message}${hint}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    const msg = (err as Error).message;
    const pos = /position (\d+)/.exec(msg);
    const where = pos !== null ? ` at ${lineColumn(text, Number(pos[1]))}` : '';
    throw new ConfigError(`${label}: not valid JSON${where}: ${msg} (comments and trailing commas are not allowed in JSON)`);
  }
  return parseConfig(raw, opts.env !== undefined ? { configPath: abs, label, env: opts.env } : { configPath: abs, label });
}

/** A demo node's MySQL port is its port plus this (7001 -> 7101). */
export const DEMO_MYSQL_PORT_OFFSET = 100;

/** The config.json content for a local demo cluster of `nodes` nodes on 127.0.0.1 from `basePort`. */
export function demoConfig(nodes: number, basePort: number): ConfigInput {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) {
    throw new ConfigError(`demo: --nodes must be an integer between 1 and ${MAX_NODES}, got ${nodes}`);
  }
  if (!Number.isInteger(basePort) || basePort < 1 || basePort + DEMO_MYSQL_PORT_OFFSET + nodes - 1 > 65535) {
    throw new ConfigError(`demo: --base-port must leave room for ${nodes} ports, and ${nodes} MySQL ports ${DEMO_MYSQL_PORT_OFFSET} above them, below 65536; got ${basePort}`);
  }
  return {
    cluster: 'demo',
    ...CONFIG_DEFAULTS,
    // The demo listens on loopback only: root without a password is for trying it out, not for production.
    mysqlUsers: [{ user: 'root', password: '' }],
    nodes: Array.from({ length: nodes }, (_, i) => ({
      id: i + 1,
      host: '127.0.0.1',
      port: basePort + i,
      mysqlPort: basePort + DEMO_MYSQL_PORT_OFFSET + i,
      storage: { engine: 'sqlite' as const, path: `data/node${i + 1}.db` },
      dataDir: `data/node${i + 1}`,
    })),
  };
}

/**
 * Writes `<dir>/config.json` for a local demo cluster (creating `dir`), atomically, and returns
 * the config file's absolute path. Data and logs go to `<dir>/data` and `<dir>/logs`.
 */
export function writeDemoConfig(dir: string, nodes: number, basePort: number): string {
  const content = demoConfig(nodes, basePort);
  const absDir = resolve(dir);
  mkdirSync(absDir, { recursive: true });
  const path = join(absDir, 'config.json');
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(content, null, 2) + '\n', 'utf8');
  renameSync(tmp, path);
  // Validate what we wrote, so a demo never starts from a config the nodes would refuse.
  loadConfig(path);
  return path;
}
