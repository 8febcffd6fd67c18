// config.json: schema (zod 4), cross-field rules and resolution to absolute paths.
// Every problem is reported as `<file>: <field path>: <what is wrong and how to fix it>`, and all of
// them are reported at once, so a bad config costs one edit, not one edit per problem.
// See docs/configuration.md for each field and why each rule exists.
import { isAbsolute, resolve, dirname, join } from 'node:path';
import { isIP } from 'node:net';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { ACK_LEVELS, type AckLevel } from '../core/types.js';

// ---------------------------------------------------------------- bounds

export const MAX_NODES = 15;
export const MIN_TICK_MS = 1;
export const MAX_TICK_MS = 10_000;
/** Upper bound for every millisecond duration (one hour). */
export const MAX_DURATION_MS = 3_600_000;
export const MIN_FRAME_BYTES = 1 << 20;
export const MAX_FRAME_BYTES = 256 << 20;
export const MAX_NODE_ID = 2_147_483_647;

export const CONFIG_DEFAULTS = {
  heartbeatIntervalMs: 2000,
  failureTimeoutMs: 10_000,
  writeAck: 'quorum',
  tickMs: 100,
  writeTimeoutMs: 15_000,
  maxFrameBytes: 16 * 1024 * 1024,
  logDir: 'logs',
} as const;

// ---------------------------------------------------------------- schema

function intBetween(min: number, max: number) {
  const error = `expected an integer between ${min} and ${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

const pathString = z
  .string({ error: 'expected a path (string)' })
  .min(1, { error: 'expected a non-empty path' })
  .max(4096, { error: 'expected a path of at most 4096 characters' });

const SqliteStorageSchema = z.strictObject({
  engine: z.literal('sqlite'),
  /** SQLite database file; relative paths resolve against the config file's folder. */
  path: pathString,
});

/** Discriminated on `engine`. Only SQLite exists for now; MySQL/MariaDB joins the union later. */
export const StorageSchema = z.discriminatedUnion('engine', [SqliteStorageSchema]);
export const STORAGE_ENGINES = ['sqlite'] as const;

export const NodeSchema = z.strictObject({
  id: intBetween(1, MAX_NODE_ID),
  host: z
    .string({ error: 'expected a host name or IP address (string)' })
    .min(1, { error: 'expected a non-empty host name or IP address' })
    .max(253, { error: 'expected a host name of at most 253 characters' }),
  port: intBetween(1, 65535),
  storage: StorageSchema,
  /** Folder for this node's operation log; default `<folder of storage path>/node<ID>`. */
  dataDir: pathString.optional(),
});

export const ConfigSchema = z.strictObject({
  cluster: z
    .string({ error: 'expected the cluster name (string), e.g. "demo"' })
    .regex(/^[A-Za-z0-9._-]{1,64}$/, { error: 'expected 1-64 characters among A-Z a-z 0-9 . _ -' }),
  heartbeatIntervalMs: intBetween(1, MAX_DURATION_MS).default(CONFIG_DEFAULTS.heartbeatIntervalMs),
  failureTimeoutMs: intBetween(1, MAX_DURATION_MS).default(CONFIG_DEFAULTS.failureTimeoutMs),
  writeAck: z
    .enum(ACK_LEVELS as unknown as [AckLevel, ...AckLevel[]], { error: `expected one of ${ACK_LEVELS.map((a) => `"${a}"`).join(', ')}` })
    .default(CONFIG_DEFAULTS.writeAck),
  tickMs: intBetween(MIN_TICK_MS, MAX_TICK_MS).default(CONFIG_DEFAULTS.tickMs),
  writeTimeoutMs: intBetween(1, MAX_DURATION_MS).default(CONFIG_DEFAULTS.writeTimeoutMs),
  maxFrameBytes: intBetween(MIN_FRAME_BYTES, MAX_FRAME_BYTES).default(CONFIG_DEFAULTS.maxFrameBytes),
  logDir: pathString.default(CONFIG_DEFAULTS.logDir),
  nodes: z
    .array(NodeSchema, { error: 'expected an array of nodes' })
    .min(1, { error: `expected between 1 and ${MAX_NODES} nodes` })
    .max(MAX_NODES, { error: `expected between 1 and ${MAX_NODES} nodes` }),
});

/** config.json as written by the user (before defaults). */
export type ConfigInput = z.input<typeof ConfigSchema>;

// ---------------------------------------------------------------- resolved form

export interface ResolvedSqliteStorage {
  readonly engine: 'sqlite';
  /** Absolute path of the database file. */
  readonly path: string;
}
export type ResolvedStorage = ResolvedSqliteStorage;

export interface ResolvedNode {
  readonly id: number;
  readonly host: string;
  readonly port: number;
  readonly storage: ResolvedStorage;
  /** Absolute folder holding this node's operation log and hard state. */
  readonly dataDir: string;
}

export interface ResolvedConfig {
  /** Absolute path of the file the config was read from. */
  readonly configPath: string;
  /** Folder relative paths were resolved against. */
  readonly configDir: string;
  readonly cluster: string;
  readonly heartbeatIntervalMs: number;
  readonly failureTimeoutMs: number;
  readonly writeAck: AckLevel;
  readonly tickMs: number;
  readonly writeTimeoutMs: number;
  readonly maxFrameBytes: number;
  /** Absolute folder for the per-node log files (`node<ID>.log`). */
  readonly logDir: string;
  readonly nodes: readonly ResolvedNode[];
  /** The durations in core ticks (ms rounded up to whole ticks). */
  readonly heartbeatIntervalTicks: number;
  readonly failureTimeoutTicks: number;
  readonly writeTimeoutTicks: number;
  /** Non-fatal notes (e.g. a duration rounded up to whole ticks), for the node to log at start. */
  readonly warnings: readonly string[];
}

/** Milliseconds to core ticks, rounded up, at least 1 tick. */
export function msToTicks(ms: number, tickMs: number): number {
  if (!Number.isFinite(ms) || !Number.isFinite(tickMs) || tickMs <= 0) {
    throw new RangeError(`msToTicks: invalid arguments ms=${ms} tickMs=${tickMs}`);
  }
  return Math.max(1, Math.ceil(ms / tickMs));
}

/** The node with this id, or a ConfigError listing the ids that exist. */
export function findNode(config: ResolvedConfig, id: number): ResolvedNode {
  const node = config.nodes.find((n) => n.id === id);
  if (node === undefined) {
    throw new ConfigError(
      `${config.configPath}: node id ${id} is not configured (configured ids: ${config.nodes.map((n) => n.id).join(', ')})`,
    );
  }
  return node;
}

// ---------------------------------------------------------------- hosts

/** True for 127.0.0.0/8, ::1, localhost and *.localhost (and IPv4-mapped loopback). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost') || h === 'localhost.') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) {
    if (h === '::1' || /^0{0,4}(:0{0,4}){6}:0{0,3}1$/.test(h)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

const HOSTNAME_RE = /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** Null when `host` is usable as an address peers and clients connect to; otherwise the reason. */
function hostProblem(host: string): string | null {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === '0.0.0.0' || h === '::' || h === '0:0:0:0:0:0:0:0') {
    return `"${host}" means "listen on every interface", it is not an address other nodes can connect to; use this machine's real address (or 127.0.0.1 when every node runs on this machine)`;
  }
  if (isIP(h) !== 0) return null;
  const hostPort = /^(.+):(\d+)$/.exec(host);
  if (hostPort !== null && isIP(hostPort[1]!) !== 6) {
    return `"${host}" contains a port; put only the address in "host" and the port in "port"`;
  }
  if (!HOSTNAME_RE.test(host)) {
    return `"${host}" is neither an IP address nor a valid host name`;
  }
  return null;
}

/** Loopback hosts collide with each other on one machine: compare them as one address. */
function addressKey(host: string, port: number): string {
  return `${isLoopbackHost(host) ? 'loopback' : host.toLowerCase().replace(/\.$/, '')}:${port}`;
}

// ---------------------------------------------------------------- suggestions

/** Levenshtein distance, case-insensitive. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const cur = [i];
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      cur.push(Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost));
    }
    prev = cur;
  }
  return prev[t.length]!;
}

function isSubsequence(short: string, long: string): boolean {
  let i = 0;
  for (const ch of long) if (i < short.length && ch === short[i]) i++;
  return i === short.length;
}

/** The known name closest to `name`, when one is close enough to be a plausible typo. */
export function suggestName(name: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(name, k);
    const a = name.toLowerCase();
    const b = k.toLowerCase();
    const threshold = Math.max(2, Math.ceil(Math.max(a.length, b.length) / 2));
    const plausible = d <= threshold || (Math.min(a.length, b.length) >= 3 && (isSubsequence(a, b) || isSubsequence(b, a)));
    if (plausible && d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

// ---------------------------------------------------------------- validation

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(top level)' : out;
}

function preview(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  if (text.length > 60) text = `${text.slice(0, 57)}...`;
  if (typeof value === 'string') return `${text} (a string)`;
  if (Array.isArray(value)) return `${text} (an array)`;
  return text;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function knownKeysAt(path: readonly PropertyKey[], raw: unknown): readonly string[] {
  if (path.length === 0) return Object.keys(ConfigSchema.shape);
  if (path.length === 2 && path[0] === 'nodes') return Object.keys(NodeSchema.shape);
  if (path.length === 3 && path[0] === 'nodes' && path[2] === 'storage') {
    // Keys for the engine the user chose (only sqlite exists today).
    void raw;
    return Object.keys(SqliteStorageSchema.shape);
  }
  return [];
}

function zodIssueMessages(issues: readonly z.core.$ZodIssue[], raw: unknown): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    const where = formatPath(issue.path);
    const input = (issue as { input?: unknown }).input;
    switch (issue.code) {
      case 'unrecognized_keys': {
        const known = knownKeysAt(issue.path, raw);
        for (const key of issue.keys) {
          const prefix = issue.path.length === 0 ? '' : `${where}: `;
          const hint = suggestName(key, known);
          out.push(
            `${prefix}unknown field '${key}'; ` +
              (hint !== null ? `did you mean '${hint}'?` : `known fields: ${known.join(', ')}`),
          );
        }
        break;
      }
      case 'invalid_union': {
        const disc = (issue as { discriminator?: string }).discriminator;
        if (disc !== undefined) {
          const got = isRecord(input) ? input[disc] : undefined;
          const options = STORAGE_ENGINES.map((e) => `"${e}"`).join(', ');
          out.push(
            got === undefined
              ? `${where}: missing; expected one of ${options}`
              : `${where}: expected one of ${options}, got ${preview(got)}` +
                  (got === 'mysql' || got === 'mariadb' ? ' (MySQL/MariaDB storage is not available yet)' : ''),
          );
        } else {
          out.push(`${where}: ${issue.message}`);
        }
        break;
      }
      default: {
        if (input === undefined && issue.code === 'invalid_type') {
          out.push(`${where}: missing; ${issue.message}`);
        } else {
          out.push(`${where}: ${issue.message}, got ${preview(input)}`);
        }
      }
    }
  }
  return out;
}

/** Rules across fields, run on the raw input so they are reported together with schema problems. */
function crossFieldMessages(raw: unknown, baseDir: string): string[] {
  const out: string[] = [];
  if (!isRecord(raw)) return out;
  const posInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

  const hb = raw.heartbeatIntervalMs ?? CONFIG_DEFAULTS.heartbeatIntervalMs;
  const ft = raw.failureTimeoutMs ?? CONFIG_DEFAULTS.failureTimeoutMs;
  const tick = raw.tickMs ?? CONFIG_DEFAULTS.tickMs;
  if (posInt(hb) && posInt(ft) && ft < 2 * hb) {
    out.push(
      `failureTimeoutMs: must be at least 2 x heartbeatIntervalMs (2 x ${hb} = ${2 * hb}), got ${ft}; ` +
        `with less than two heartbeat intervals one late heartbeat marks a healthy node offline and starts a needless election`,
    );
  }
  if (posInt(hb) && posInt(tick) && tick <= MAX_TICK_MS && hb % tick !== 0) {
    const lower = Math.floor(hb / tick) * tick;
    const upper = lower + tick;
    out.push(
      `heartbeatIntervalMs: must be a multiple of tickMs (${tick}), got ${hb}; use ` +
        (lower > 0 ? `${lower} or ${upper}` : `${upper}`) +
        ` (the protocol core counts time in ticks, so the interval would otherwise be silently changed)`,
    );
  }

  if (!Array.isArray(raw.nodes)) return out;
  const nodes = raw.nodes as unknown[];
  const ids = new Map<number, number>();
  const addresses = new Map<string, number>();
  const files = new Map<string, number>();
  const dirs = new Map<string, number>();
  const loopback: string[] = [];
  const remote: string[] = [];
  nodes.forEach((node, i) => {
    if (!isRecord(node)) return;
    const { id, host, port, storage, dataDir } = node;
    if (posInt(id)) {
      const first = ids.get(id);
      if (first !== undefined) out.push(`nodes[${i}].id: duplicate node id ${id} (also nodes[${first}]); every node needs its own id`);
      else ids.set(id, i);
    }
    if (typeof host === 'string' && host.length > 0) {
      const problem = hostProblem(host);
      if (problem !== null) out.push(`nodes[${i}].host: ${problem}`);
      else (isLoopbackHost(host) ? loopback : remote).push(`nodes[${i}].host "${host}"`);
      if (posInt(port) && port <= 65535) {
        const key = addressKey(host, port);
        const first = addresses.get(key);
        if (first !== undefined) {
          out.push(
            `nodes[${i}]: duplicate address ${host}:${port} (also nodes[${first}]); every node needs its own host:port`,
          );
        } else addresses.set(key, i);
      }
      // Two nodes on the same machine must not share a database file or a log folder.
      // (On different machines the same relative path names different disks, which is fine.)
      const hostKey = isLoopbackHost(host) ? 'loopback' : host.toLowerCase();
      let storageAbs: string | null = null;
      if (isRecord(storage) && typeof storage.path === 'string' && storage.path.length > 0) {
        storageAbs = resolvePath(baseDir, storage.path);
        const key = `${hostKey}|${storageAbs}`;
        const first = files.get(key);
        if (first !== undefined) {
          out.push(
            `nodes[${i}].storage.path: same database file as nodes[${first}] on the same host (${storageAbs}); each node needs its own database`,
          );
        } else files.set(key, i);
      }
      const dataAbs =
        typeof dataDir === 'string' && dataDir.length > 0
          ? resolvePath(baseDir, dataDir)
          : storageAbs !== null && posInt(id)
            ? defaultDataDir(storageAbs, id)
            : null;
      if (dataAbs !== null) {
        const key = `${hostKey}|${dataAbs}`;
        const first = dirs.get(key);
        if (first !== undefined) {
          out.push(
            `nodes[${i}].dataDir: same log folder as nodes[${first}] on the same host (${dataAbs}); each node needs its own dataDir`,
          );
        } else dirs.set(key, i);
      }
    }
    for (const [field, value] of [
      ['storage.path', isRecord(storage) ? storage.path : undefined],
      ['dataDir', dataDir],
    ] as const) {
      if (typeof value === 'string' && /^~(\/|$)/.test(value)) {
        out.push(`nodes[${i}].${field}: "~" is not expanded; write an absolute path or one relative to the config file's folder`);
      }
    }
  });
  if (typeof raw.logDir === 'string' && /^~(\/|$)/.test(raw.logDir)) {
    out.push(`logDir: "~" is not expanded; write an absolute path or one relative to the config file's folder`);
  }
  if (loopback.length > 0 && remote.length > 0) {
    out.push(
      `nodes: mixes loopback addresses (${loopback.join(', ')}) with non-loopback addresses (${remote.join(', ')}). ` +
        `On several machines a node told to reach 127.0.0.1 or localhost talks to itself instead of its peer ` +
        `(the original system's documented pitfall, section 7): use each machine's real address for every node, ` +
        `or loopback for all of them when the whole cluster runs on one machine`,
    );
  }
  return out;
}

function resolvePath(baseDir: string, p: string): string {
  return isAbsolute(p) ? resolve(p) : resolve(baseDir, p);
}

function defaultDataDir(storagePathAbs: string, id: number): string {
  return join(dirname(storagePathAbs), `node${id}`);
}

export interface ParseConfigOptions {
  /** Absolute path of the config file (relative paths inside resolve against its folder). */
  readonly configPath: string;
  /** How the file is named in messages; defaults to configPath. */
  readonly label?: string;
}

/**
 * Validates already-parsed JSON and resolves it. Throws ConfigError listing every problem,
 * one per line, each as `<label>: <field>: <problem and fix>`.
 */
export function parseConfig(raw: unknown, opts: ParseConfigOptions): ResolvedConfig {
  const label = opts.label ?? opts.configPath;
  const configPath = resolve(opts.configPath);
  const configDir = dirname(configPath);
  if (!isRecord(raw)) {
    throw new ConfigError(`${label}: expected a JSON object at the top level, got ${preview(raw)}`);
  }
  const parsed = ConfigSchema.safeParse(raw, { reportInput: true });
  const problems = [
    ...(parsed.success ? [] : zodIssueMessages(parsed.error.issues, raw)),
    ...crossFieldMessages(raw, configDir),
  ];
  if (!parsed.success || problems.length > 0) {
    throw new ConfigError(problems.map((p) => `${label}: ${p}`).join('\n'));
  }
  const c = parsed.data;
  const warnings: string[] = [];
  for (const field of ['failureTimeoutMs', 'writeTimeoutMs'] as const) {
    if (c[field] % c.tickMs !== 0) {
      warnings.push(
        `${label}: ${field}: ${c[field]} is not a multiple of tickMs (${c.tickMs}); rounded up to ${msToTicks(c[field], c.tickMs) * c.tickMs} ms`,
      );
    }
  }
  return {
    configPath,
    configDir,
    cluster: c.cluster,
    heartbeatIntervalMs: c.heartbeatIntervalMs,
    failureTimeoutMs: c.failureTimeoutMs,
    writeAck: c.writeAck,
    tickMs: c.tickMs,
    writeTimeoutMs: c.writeTimeoutMs,
    maxFrameBytes: c.maxFrameBytes,
    logDir: resolvePath(configDir, c.logDir),
    nodes: c.nodes.map((n) => {
      const storagePath = resolvePath(configDir, n.storage.path);
      return {
        id: n.id,
        host: n.host,
        port: n.port,
        storage: { engine: n.storage.engine, path: storagePath },
        dataDir: n.dataDir !== undefined ? resolvePath(configDir, n.dataDir) : defaultDataDir(storagePath, n.id),
      };
    }),
    heartbeatIntervalTicks: msToTicks(c.heartbeatIntervalMs, c.tickMs),
    failureTimeoutTicks: msToTicks(c.failureTimeoutMs, c.tickMs),
    writeTimeoutTicks: msToTicks(c.writeTimeoutMs, c.tickMs),
    warnings,
  };
}
