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
  transactionIdleTimeoutMs: 10_000,
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

export const DEFAULT_MYSQL_PORT = 3306;
/** Environment variable names as POSIX shells accept them. */
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,254}$/;
/** Database names the engine can use unquoted: MySQL's identifier limit is 64 characters. */
const DATABASE_NAME_RE = /^[A-Za-z0-9_$]{1,64}$/;
const DATABASE_NAME_RULE = '1-64 characters among A-Z a-z 0-9 _ $';
const MAX_MYSQL_USER_CHARS = 80;
const MAX_PASSWORD_CHARS = 1024;
const MAX_URL_CHARS = 2048;

const hostString = z
  .string({ error: 'expected a host name or IP address (string)' })
  .min(1, { error: 'expected a non-empty host name or IP address' })
  .max(253, { error: 'expected a host name of at most 253 characters' });

/**
 * MySQL/MariaDB. Either `url` or the separate fields; exactly one of `password` / `passwordEnv` /
 * a password inside `url`. Those either/or rules live in `resolveMysqlStorage` (zod checks types).
 */
const MysqlStorageSchema = z.strictObject({
  engine: z.literal('mysql'),
  /** `mysql://user:password@host:3306/database`, instead of the fields below. */
  url: z
    .string({ error: 'expected a URL (string) like "mysql://user:password@host:3306/database"' })
    .min(1, { error: 'expected a non-empty URL like "mysql://user:password@host:3306/database"' })
    .max(MAX_URL_CHARS, { error: `expected a URL of at most ${MAX_URL_CHARS} characters` })
    .optional(),
  host: hostString.optional(),
  port: intBetween(1, 65535).optional(),
  /**
   * The server's Unix socket, when it runs on the node's machine: the node connects through it
   * instead of TCP (cheaper per query). host and port still name the server in messages and checks.
   */
  socketPath: pathString.optional(),
  user: z
    .string({ error: 'expected the MySQL user name (string)' })
    .min(1, { error: 'expected a non-empty MySQL user name' })
    .max(MAX_MYSQL_USER_CHARS, { error: `expected a MySQL user name of at most ${MAX_MYSQL_USER_CHARS} characters` })
    .regex(/^[^\u0000-\u001f\u007f]*$/, { error: 'expected a MySQL user name without control characters' })
    .optional(),
  password: z
    .string({ error: 'expected the password (string); better, put it in an environment variable and name it in "passwordEnv"' })
    .max(MAX_PASSWORD_CHARS, { error: `expected a password of at most ${MAX_PASSWORD_CHARS} characters` })
    .optional(),
  passwordEnv: z
    .string({ error: 'expected the name of an environment variable (string), e.g. "REPLISQL_DB_PASSWORD"' })
    .regex(ENV_NAME_RE, { error: 'expected an environment variable name: a letter or _ followed by letters, digits or _ (e.g. "REPLISQL_DB_PASSWORD")' })
    .optional(),
  database: z
    .string({ error: `expected the database name (string), ${DATABASE_NAME_RULE}` })
    .regex(DATABASE_NAME_RE, { error: `expected a database name of ${DATABASE_NAME_RULE} (names that need quoting are refused)` })
    .optional(),
});

/** Discriminated on `engine`. */
export const StorageSchema = z.discriminatedUnion('engine', [SqliteStorageSchema, MysqlStorageSchema]);
export const STORAGE_ENGINES = ['sqlite', 'mysql'] as const;

export const NodeSchema = z.strictObject({
  id: intBetween(1, MAX_NODE_ID),
  host: hostString,
  port: intBetween(1, 65535),
  storage: StorageSchema,
  /**
   * Folder for this node's operation log; default `<folder of storage path>/node<ID>` for SQLite,
   * `<config folder>/data/node<ID>` for MySQL.
   */
  dataDir: pathString.optional(),
  /** Port of this node's MySQL protocol front end (src/mysql-protocol); absent: none. */
  mysqlPort: intBetween(1, 65535).optional(),
});

/** A user of the MySQL front end: exactly one of password / passwordEnv. */
const MysqlUserSchema = z.strictObject({
  user: z
    .string({ error: 'expected a user name (string)' })
    .min(1, { error: 'expected a non-empty user name' })
    .max(MAX_MYSQL_USER_CHARS, { error: `expected a user name of at most ${MAX_MYSQL_USER_CHARS} characters` }),
  password: z.string({ error: 'expected a password (string; "" for none)' }).max(MAX_PASSWORD_CHARS, { error: `expected at most ${MAX_PASSWORD_CHARS} characters` }).optional(),
  passwordEnv: z.string({ error: 'expected an environment variable name (string)' }).regex(ENV_NAME_RE, { error: 'expected an environment variable name like REPLISQL_MYSQL_PASSWORD' }).optional(),
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
  /** Who may log in to the MySQL front ends (nodes with mysqlPort). */
  mysqlUsers: z.array(MysqlUserSchema, { error: 'expected an array of { "user", "password" | "passwordEnv" }' }).max(100, { error: 'expected at most 100 users' }).optional(),
  /** The database name MySQL clients use; default: the node's MySQL database, or "main" on SQLite. */
  mysqlDatabase: z.string({ error: 'expected a database name (string)' }).regex(DATABASE_NAME_RE, { error: `expected ${DATABASE_NAME_RULE}` }).optional(),
  /** An interactive transaction idle this long is rolled back (it holds the coordinator's writer). */
  transactionIdleTimeoutMs: intBetween(1, MAX_DURATION_MS).default(CONFIG_DEFAULTS.transactionIdleTimeoutMs),
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
export interface ResolvedMysqlStorage {
  readonly engine: 'mysql';
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** The password itself (read from `passwordEnv` at load time when given that way). Never log it: see redactConfig. */
  readonly password: string;
  readonly database: string;
  /** Absolute path of the server's Unix socket, or null to connect over TCP to host:port. */
  readonly socketPath: string | null;
}
export type ResolvedStorage = ResolvedSqliteStorage | ResolvedMysqlStorage;

export interface ResolvedNode {
  readonly id: number;
  readonly host: string;
  readonly port: number;
  readonly storage: ResolvedStorage;
  /** Absolute folder holding this node's operation log and hard state. */
  readonly dataDir: string;
  /** Port of the MySQL protocol front end, or null for none. */
  readonly mysqlPort: number | null;
}

/** A MySQL front-end user, its password resolved (never log it). */
export interface ResolvedMysqlUser {
  readonly user: string;
  readonly password: string;
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
  readonly mysqlUsers: readonly ResolvedMysqlUser[];
  /** The database name MySQL clients use, when set for the whole cluster. */
  readonly mysqlDatabase: string | null;
  readonly transactionIdleTimeoutMs: number;
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

/**
 * Null when `host` is usable as an address to connect to; otherwise the reason. `what` says who
 * connects: a node's host is dialled by its peers and clients, a database host by its node.
 */
function hostProblem(rawHost: string, what: 'node' | 'database' = 'node'): string | null {
  const h = rawHost.replace(/^\[|\]$/g, '');
  const host = withoutCredentials(rawHost); // for messages: "user:secret@db1" pasted as a host
  if (h === '0.0.0.0' || h === '::' || h === '0:0:0:0:0:0:0:0') {
    return what === 'node'
      ? `"${host}" means "listen on every interface", it is not an address other nodes can connect to; use this machine's real address (or 127.0.0.1 when every node runs on this machine)`
      : `"${host}" means "listen on every interface", it is not an address a node can connect to; use the database server's address (127.0.0.1 when it runs on the node's machine)`;
  }
  if (isIP(h) !== 0) return null;
  const hostPort = /^(.+):(\d+)$/.exec(rawHost);
  if (hostPort !== null && isIP(hostPort[1]!) !== 6) {
    return `"${host}" contains a port; put only the address in "host" and the port in "port"`;
  }
  if (!HOSTNAME_RE.test(rawHost)) {
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

// ---------------------------------------------------------------- secrets

/** What a password is replaced with by redactConfig / redactUrl. */
export const REDACTED = '<redacted>';

/** A string quoted in a message: anything that may carry `user:password@` loses the password. */
function withoutCredentials(s: string): string {
  return s.includes('@') ? redactUrl(s) : s;
}

/**
 * `mysql://user:secret@host/db` -> `mysql://user:<redacted>@host/db`. Works on strings that are not
 * valid URLs too (everything between the first ':' of the user part and the last '@' is hidden), so
 * a mistyped URL can be quoted in an error message without its password.
 */
export function redactUrl(url: string): string {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([\s\S]*)$/.exec(url);
  if (scheme === null) return url.includes('@') ? REDACTED : url;
  const rest = scheme[2]!;
  const at = rest.lastIndexOf('@');
  if (at < 0) return url;
  const userinfo = rest.slice(0, at);
  const colon = userinfo.indexOf(':');
  if (colon < 0) return url;
  return `${scheme[1]}${userinfo.slice(0, colon)}:${REDACTED}${rest.slice(at)}`;
}

/**
 * A deep copy of a config (resolved or as written) with every `password` replaced by REDACTED and
 * the password inside every `url` hidden. Use it wherever a config, a node or a storage entry is
 * printed or logged. `passwordEnv` (a variable's name, not a secret) is kept.
 */
export function redactConfig<T>(config: T): T {
  return redactValue(config, undefined, 0) as T;
}

function redactValue(value: unknown, key: string | undefined, depth: number): unknown {
  if (key === 'password' && value !== undefined) return REDACTED;
  if (key === 'url' && typeof value === 'string') return redactUrl(value);
  if (depth > 32) return value; // configs are shallow; do not recurse forever on a cycle
  if (Array.isArray(value)) return value.map((v) => redactValue(v, undefined, depth + 1));
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v, k, depth + 1);
    return out;
  }
  return value;
}

/** One line naming a node's database, for logs and messages; never contains the password. */
export function describeStorage(storage: ResolvedStorage): string {
  switch (storage.engine) {
    case 'sqlite':
      return `sqlite ${storage.path}`;
    case 'mysql': {
      const host = isIP(storage.host) === 6 ? `[${storage.host}]` : storage.host;
      return `mysql ${storage.user}@${host}:${storage.port}/${storage.database}`;
    }
    default:
      return assertNever(storage);
  }
}

function assertNever(x: never): never {
  throw new Error(`unexpected storage ${JSON.stringify(redactConfig(x))}`);
}

// ---------------------------------------------------------------- MySQL storage

const URL_EXAMPLE = 'mysql://user:password@host:3306/database';

interface ParsedMysqlUrl {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Null when the URL holds no password (then `passwordEnv` gives it). */
  readonly password: string | null;
  readonly database: string;
}

/** Parses `mysql://user[:password]@host[:port]/database`; a list of problems when it is not one. */
export function parseMysqlUrl(text: string): ParsedMysqlUrl | { readonly problems: readonly string[] } {
  const shown = JSON.stringify(redactUrl(text));
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return {
      problems: [
        `${shown} is not a valid URL; expected ${URL_EXAMPLE} (percent-encode special characters in the user and password, e.g. "@" as %40, "/" as %2F, ":" as %3A; the port must be 1-65535)`,
      ],
    };
  }
  if (url.protocol !== 'mysql:') {
    return { problems: [`expected a URL starting with mysql:// (also for MariaDB), got ${JSON.stringify(url.protocol)} in ${shown}`] };
  }
  const problems: string[] = [];
  let user = '';
  let password: string | null = null;
  let database = '';
  try {
    user = decodeURIComponent(url.username);
    password = url.password === '' ? null : decodeURIComponent(url.password);
    database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  } catch {
    problems.push(`${shown} has an invalid percent-encoding ("%" must be followed by two hex digits; write a literal "%" as %25)`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === '') problems.push(`${shown} has no host; expected ${URL_EXAMPLE}`);
  else {
    const problem = hostProblem(host, 'database');
    if (problem !== null) problems.push(`host ${problem}`);
  }
  const port = url.port === '' ? DEFAULT_MYSQL_PORT : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`${shown} has port ${url.port}; expected 1-65535`);
  if (url.username === '') problems.push(`${shown} has no user; expected ${URL_EXAMPLE}`);
  else if (user.length > MAX_MYSQL_USER_CHARS || /[\u0000-\u001f\u007f]/.test(user)) {
    problems.push(`the user in ${shown} must be 1-${MAX_MYSQL_USER_CHARS} characters without control characters`);
  }
  if (password !== null && password.length > MAX_PASSWORD_CHARS) problems.push(`the password in the URL is longer than ${MAX_PASSWORD_CHARS} characters`);
  if (database === '') problems.push(`${shown} names no database; expected ${URL_EXAMPLE}`);
  else if (database !== '' && !DATABASE_NAME_RE.test(database)) {
    problems.push(`the database ${JSON.stringify(database)} in ${shown} is not ${DATABASE_NAME_RULE} (one path segment; names that need quoting are refused)`);
  }
  if (url.search !== '') problems.push(`options after "?" are not supported (${JSON.stringify(url.search)}); remove them`);
  if (url.hash !== '') problems.push(`a "#" fragment is not allowed in ${shown}; if it is part of the password, percent-encode it as %23`);
  if (problems.length > 0) return { problems };
  return { host, port, user, password, database };
}

/** Where `passwordEnv` values are read from (process.env unless a test gives another). */
export type ConfigEnv = Readonly<Record<string, string | undefined>>;

/**
 * The either/or rules of a mysql storage entry and its resolution (URL parsed, port defaulted,
 * password read from the environment). Type errors of single fields are zod's: a field of the wrong
 * type is skipped here, neither reported twice nor called missing.
 */
function resolveMysqlStorage(
  s: Record<string, unknown>,
  where: string,
  env: ConfigEnv,
  baseDir: string,
): { readonly problems: readonly string[]; readonly value: ResolvedMysqlStorage | null } {
  const problems: string[] = [];
  const str = (k: string): string | undefined => (typeof s[k] === 'string' ? (s[k] as string) : undefined);
  const present = (k: string): boolean => s[k] !== undefined;
  let valid = true; // false once a field is unusable (reported here or by zod)
  let urlFailed = false; // the URL is unusable, so whether it holds a password is unknown

  let host: string | undefined;
  let port: number | undefined;
  let user: string | undefined;
  let database: string | undefined;
  let literalPassword: string | undefined = str('password');
  let passwordSource: 'password' | 'url' | null = present('password') ? 'password' : null;

  if (present('url')) {
    const inUrl = ['host', 'port', 'user', 'database'].filter(present);
    if (present('password')) inUrl.push('password');
    if (inUrl.length > 0) {
      problems.push(
        `${where}: ${inUrl.map((k) => `"${k}"`).join(', ')} given together with "url"; give the connection either as "url" or as separate fields, not both` +
          (inUrl.includes('password') ? ' (to keep the password out of the URL, leave it out and use "passwordEnv")' : ''),
      );
      valid = false;
    }
    const url = str('url');
    if (url === undefined || url === '' || url.length > MAX_URL_CHARS) {
      valid = false;
      urlFailed = true;
    }
    else {
      const parsed = parseMysqlUrl(url);
      if ('problems' in parsed) {
        for (const p of parsed.problems) problems.push(`${where}.url: ${p}`);
        valid = false;
        urlFailed = true;
      } else {
        ({ host, port, user, database } = parsed);
        if (parsed.password !== null) {
          literalPassword = parsed.password;
          passwordSource = 'url';
        }
      }
    }
  } else {
    let hinted = false;
    const missing = (field: string, what: string): void => {
      problems.push(`${where}.${field}: missing; expected ${what}` + (hinted ? '' : ` (or give the whole connection as "url": "${URL_EXAMPLE}")`));
      hinted = true;
      valid = false;
    };
    if (!present('host')) missing('host', "the database server's host name or IP address (127.0.0.1 when it runs on the node's machine)");
    if (!present('user')) missing('user', 'the MySQL user name');
    if (!present('database')) missing('database', `the name of this node's database (${DATABASE_NAME_RULE})`);
    host = str('host');
    port = present('port') ? (typeof s.port === 'number' ? s.port : undefined) : DEFAULT_MYSQL_PORT;
    user = str('user');
    database = str('database');
    if (host !== undefined && host.length > 0 && host.length <= 253) {
      const problem = hostProblem(host, 'database');
      if (problem !== null) {
        problems.push(`${where}.host: ${problem}`);
        valid = false;
      }
    }
  }

  let password: string | undefined;
  if (present('passwordEnv')) {
    if (passwordSource !== null) {
      problems.push(
        `${where}: both ${passwordSource === 'url' ? 'a password in "url"' : '"password"'} and "passwordEnv" are given; keep exactly one ` +
          `("passwordEnv" keeps the secret out of the config file)`,
      );
      valid = false;
    } else {
      const name = str('passwordEnv');
      if (name !== undefined && ENV_NAME_RE.test(name)) {
        const value = env[name];
        if (value === undefined) {
          problems.push(
            `${where}.passwordEnv: environment variable ${name} is not set; set it to this node's database password in the environment of the node process ` +
              `(systemd: EnvironmentFile=, docker compose: environment:/.env) or give "password" instead`,
          );
          valid = false;
        } else if (value === '') {
          problems.push(
            `${where}.passwordEnv: environment variable ${name} is set but empty; set it to the database password ` +
              `(an empty value usually means a missing entry in .env or in the EnvironmentFile)`,
          );
          valid = false;
        } else if (value.length > MAX_PASSWORD_CHARS) {
          problems.push(`${where}.passwordEnv: environment variable ${name} holds more than ${MAX_PASSWORD_CHARS} characters; is it the right variable?`);
          valid = false;
        } else password = value;
      } else valid = false;
    }
  } else if (passwordSource !== null) {
    password = literalPassword;
  } else if (!urlFailed) {
    problems.push(
      `${where}: missing the password; give "passwordEnv" (the name of an environment variable holding it; keeps the secret out of the file) or "password"` +
        (present('url') ? ', or put it in the URL' : ''),
    );
    valid = false;
  }

  if (!valid || host === undefined || port === undefined || user === undefined || database === undefined || password === undefined) {
    return { problems, value: null };
  }
  const socketPath = typeof s['socketPath'] === 'string' && s['socketPath'].length > 0 ? resolvePath(baseDir, s['socketPath']) : null;
  return { problems, value: { engine: 'mysql', host, port, user, password, database, socketPath } };
}

/**
 * The machine a database is on, as a comparable key: a loopback database host means "the node's own
 * machine", so it takes the node's host (two nodes on different machines may both use
 * 127.0.0.1:3306/replisql; two on one machine may not).
 */
function databaseHostKey(dbHost: string, nodeHost: unknown, nodeIndex: number): string {
  if (!isLoopbackHost(dbHost)) return dbHost.toLowerCase().replace(/\.$/, '');
  if (typeof nodeHost !== 'string' || nodeHost === '' || hostProblem(nodeHost) !== null) return `?node${nodeIndex}`;
  return isLoopbackHost(nodeHost) ? 'loopback' : nodeHost.toLowerCase().replace(/\.$/, '');
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
    text = typeof value === 'string' ? JSON.stringify(withoutCredentials(value)) : (JSON.stringify(value) ?? String(value));
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

const SQLITE_KEYS: readonly string[] = Object.keys(SqliteStorageSchema.shape);
const MYSQL_KEYS: readonly string[] = Object.keys(MysqlStorageSchema.shape);

/** The `engine` the user wrote for nodes[index].storage, if any. */
function rawEngineAt(raw: unknown, index: PropertyKey | undefined): unknown {
  if (!isRecord(raw) || !Array.isArray(raw.nodes) || typeof index !== 'number') return undefined;
  const node: unknown = raw.nodes[index];
  return isRecord(node) && isRecord(node.storage) ? node.storage.engine : undefined;
}

function knownKeysAt(path: readonly PropertyKey[], raw: unknown): readonly string[] {
  if (path.length === 0) return Object.keys(ConfigSchema.shape);
  if (path.length === 2 && path[0] === 'nodes') return Object.keys(NodeSchema.shape);
  if (path.length === 3 && path[0] === 'nodes' && path[2] === 'storage') {
    return rawEngineAt(raw, path[1]) === 'mysql' ? MYSQL_KEYS : SQLITE_KEYS;
  }
  return [];
}

/** For a field that belongs to the other storage engine, what to do instead of a did-you-mean. */
function otherEngineHint(path: readonly PropertyKey[], key: string, raw: unknown): string | null {
  if (!(path.length === 3 && path[0] === 'nodes' && path[2] === 'storage')) return null;
  const engine = rawEngineAt(raw, path[1]);
  if (engine === 'mysql' && SQLITE_KEYS.includes(key) && !MYSQL_KEYS.includes(key)) {
    return `a "mysql" storage has no "${key}"; give host, port, user, passwordEnv (or password) and database, or url`;
  }
  if (engine === 'sqlite' && MYSQL_KEYS.includes(key) && !SQLITE_KEYS.includes(key)) {
    return `a "sqlite" storage takes only "path"; for a MySQL/MariaDB server write "engine": "mysql"`;
  }
  return null;
}

/** Fields whose values are secret (or may hold one) and must never appear in a message. */
function secretPreview(path: readonly PropertyKey[], value: unknown): string | null {
  const last = path[path.length - 1];
  if (last === 'password') {
    return typeof value === 'string' ? `a string of ${value.length} characters (not shown)` : `a value of type ${value === null ? 'null' : typeof value} (not shown)`;
  }
  if (last === 'url' && typeof value === 'string') return preview(redactUrl(value));
  return null;
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
          const other = otherEngineHint(issue.path, key, raw);
          const hint = suggestName(key, known);
          out.push(
            `${prefix}unknown field '${key}'; ` +
              (other ?? (hint !== null ? `did you mean '${hint}'?` : `known fields: ${known.join(', ')}`)),
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
                  (typeof got === 'string' && /^(mariadb|mysql)$/i.test(got) ? ' (write "mysql", in lower case, for MySQL and MariaDB alike)' : ''),
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
          out.push(`${where}: ${issue.message}, got ${secretPreview(issue.path, input) ?? preview(input)}`);
        }
      }
    }
  }
  return out;
}

interface CrossFieldResult {
  readonly problems: string[];
  /** The resolved mysql storage of each node (by index) whose entry is valid. */
  readonly mysql: Map<number, ResolvedMysqlStorage>;
  readonly mysqlUsers: ResolvedMysqlUser[];
}

/** mysqlUsers: either/or password rules, env lookup, duplicates; and a front end needs a user. */
function mysqlFrontEndChecks(raw: Record<string, unknown>, env: ConfigEnv, out: string[]): ResolvedMysqlUser[] {
  const users: ResolvedMysqlUser[] = [];
  const seen = new Map<string, number>();
  if (Array.isArray(raw.mysqlUsers)) {
    raw.mysqlUsers.forEach((u, i) => {
      if (!isRecord(u) || typeof u.user !== 'string') return;
      const where = `mysqlUsers[${i}]`;
      const first = seen.get(u.user);
      if (first !== undefined) out.push(`${where}.user: duplicate user "${u.user}" (also mysqlUsers[${first}])`);
      else seen.set(u.user, i);
      const hasPassword = u.password !== undefined;
      const hasEnv = u.passwordEnv !== undefined;
      if (hasPassword === hasEnv) {
        out.push(`${where}: give exactly one of "password" ("" for none) or "passwordEnv" (the name of an environment variable holding it)`);
        return;
      }
      if (hasEnv) {
        if (typeof u.passwordEnv !== 'string') return;
        const value = env[u.passwordEnv];
        if (value === undefined) {
          out.push(`${where}.passwordEnv: environment variable ${u.passwordEnv} is not set`);
          return;
        }
        users.push({ user: u.user, password: value });
      } else if (typeof u.password === 'string') users.push({ user: u.user, password: u.password });
    });
  }
  if (!Array.isArray(raw.nodes)) return users;
  const withFrontEnd = (raw.nodes as unknown[]).flatMap((n, i) => (isRecord(n) && n.mysqlPort !== undefined ? [i] : []));
  if (withFrontEnd.length > 0 && (!Array.isArray(raw.mysqlUsers) || raw.mysqlUsers.length === 0)) {
    out.push(
      `mysqlUsers: missing; ${withFrontEnd.map((i) => `nodes[${i}].mysqlPort`).join(', ')} open${withFrontEnd.length === 1 ? 's' : ''} a MySQL front end, ` +
        `which needs at least one user, e.g. "mysqlUsers": [{ "user": "app", "passwordEnv": "REPLISQL_MYSQL_PASSWORD" }]`,
    );
  }
  const ports = new Map<string, string>();
  (raw.nodes as unknown[]).forEach((n, i) => {
    if (!isRecord(n) || typeof n.host !== 'string') return;
    for (const field of ['port', 'mysqlPort'] as const) {
      const port = n[field];
      if (typeof port !== 'number' || !Number.isInteger(port)) continue;
      const key = addressKey(n.host, port);
      const first = ports.get(key);
      const here = `nodes[${i}].${field}`;
      // Duplicate node addresses are reported elsewhere; only collisions involving a MySQL port here.
      if (first !== undefined && (field === 'mysqlPort' || first.endsWith('.mysqlPort'))) {
        out.push(`${here}: ${n.host}:${port} is also ${first}; the MySQL front end needs a port of its own`);
      } else if (first === undefined) ports.set(key, here);
    }
  });
  return users;
}

/** Rules across fields, run on the raw input so they are reported together with schema problems. */
function crossFieldChecks(raw: unknown, baseDir: string, env: ConfigEnv): CrossFieldResult {
  const out: string[] = [];
  const mysql = new Map<number, ResolvedMysqlStorage>();
  if (!isRecord(raw)) return { problems: out, mysql, mysqlUsers: [] };
  const mysqlUsers = mysqlFrontEndChecks(raw, env, out);
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

  if (!Array.isArray(raw.nodes)) return { problems: out, mysql, mysqlUsers };
  const nodes = raw.nodes as unknown[];
  const ids = new Map<number, number>();
  const addresses = new Map<string, number>();
  const files = new Map<string, number>();
  const dirs = new Map<string, number>();
  const databases = new Map<string, number>();
  /** Database address (host key:port) -> where it is used, checked against node addresses below. */
  const databaseAddresses: { key: string; shown: string; index: number }[] = [];
  const loopback: string[] = [];
  const remote: string[] = [];
  nodes.forEach((node, i) => {
    if (!isRecord(node)) return;
    const { id, host, port, storage, dataDir } = node;
    const isMysql = isRecord(storage) && storage.engine === 'mysql';
    if (isMysql) {
      const resolved = resolveMysqlStorage(storage, `nodes[${i}].storage`, env, baseDir);
      out.push(...resolved.problems);
      const db = resolved.value;
      if (db !== null) {
        mysql.set(i, db);
        // Two nodes sharing one database would each apply every write (twice in one database) and
        // overwrite each other's fencing row: refuse. Loopback means the node's own machine.
        const hostKey = databaseHostKey(db.host, host, i);
        const key = `${hostKey}:${db.port}/${db.database.toLowerCase()}`;
        const shown = `${db.host}:${db.port}/${db.database}`;
        const first = databases.get(key);
        if (first !== undefined) {
          out.push(
            `nodes[${i}].storage: same MySQL database as nodes[${first}] (${shown}` +
              (isLoopbackHost(db.host) ? `, on the machine of ${typeof host === 'string' ? host : 'this node'}` : '') +
              `); each node needs its own database (another database name, or another server)`,
          );
        } else databases.set(key, i);
        databaseAddresses.push({ key: hostKey === 'loopback' ? `loopback:${db.port}` : `${hostKey}:${db.port}`, shown: `${db.host}:${db.port}`, index: i });
      }
    }
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
      if (!isMysql && isRecord(storage) && typeof storage.path === 'string' && storage.path.length > 0) {
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
            : isMysql && posInt(id)
              ? defaultMysqlDataDir(baseDir, id)
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
  const engines = new Map<string, number[]>();
  nodes.forEach((node, i) => {
    const engine = isRecord(node) && isRecord(node.storage) ? node.storage.engine : undefined;
    if (typeof engine === 'string' && (STORAGE_ENGINES as readonly string[]).includes(engine)) {
      engines.set(engine, [...(engines.get(engine) ?? []), i]);
    }
  });
  if (engines.size > 1) {
    const list = [...engines].map(([e, idx]) => `"${e}" in ${idx.map((i) => `nodes[${i}]`).join(', ')}`).join('; ');
    out.push(
      `nodes: mixes storage engines (${list}); every node must use the same engine, because writes are replicated as SQL ` +
        `statements and SQLite and MySQL accept different SQL and compute different results`,
    );
  }
  for (const db of databaseAddresses) {
    const node = addresses.get(db.key);
    if (node !== undefined) {
      out.push(
        `nodes[${db.index}].storage: the database address ${db.shown} is also the address of nodes[${node}] (a replisql node, not a MySQL server); ` +
          `use the MySQL server's port (usually 3306) or give the node another port`,
      );
    }
  }
  if (typeof raw.logDir === 'string' && /^~(\/|$)/.test(raw.logDir)) {
    out.push(`logDir: "~" is not expanded; write an absolute path or one relative to the config file's folder`);
  }
  if (loopback.length > 0 && remote.length > 0) {
    out.push(
      `nodes: mixes loopback addresses (${loopback.join(', ')}) with non-loopback addresses (${remote.join(', ')}). ` +
        `On several machines a node told to reach 127.0.0.1 or localhost talks to itself instead of its peer ` +
        `(the original system's documented pitfall, section 7): use each machine's real address for every node, ` +
        `or loopback for all of them when the whole cluster runs on one machine ` +
        `(database hosts are not part of this rule: a node's database is usually on its own machine, at 127.0.0.1)`,
    );
  }
  return { problems: out, mysql, mysqlUsers };
}

function resolvePath(baseDir: string, p: string): string {
  return isAbsolute(p) ? resolve(p) : resolve(baseDir, p);
}

function defaultDataDir(storagePathAbs: string, id: number): string {
  return join(dirname(storagePathAbs), `node${id}`);
}

/** A MySQL node has no database file to put its log beside: `<config folder>/data/node<ID>`. */
function defaultMysqlDataDir(configDir: string, id: number): string {
  return join(configDir, 'data', `node${id}`);
}

export interface ParseConfigOptions {
  /** Absolute path of the config file (relative paths inside resolve against its folder). */
  readonly configPath: string;
  /** How the file is named in messages; defaults to configPath. */
  readonly label?: string;
  /** Where `passwordEnv` variables are read; default process.env. */
  readonly env?: ConfigEnv;
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
  const cross = crossFieldChecks(raw, configDir, opts.env ?? process.env);
  const problems = [...(parsed.success ? [] : zodIssueMessages(parsed.error.issues, raw)), ...cross.problems];
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
    nodes: c.nodes.map((n, i): ResolvedNode => {
      const dataDir = n.dataDir !== undefined ? resolvePath(configDir, n.dataDir) : null;
      switch (n.storage.engine) {
        case 'sqlite': {
          const storagePath = resolvePath(configDir, n.storage.path);
          return {
            id: n.id,
            host: n.host,
            port: n.port,
            storage: { engine: 'sqlite', path: storagePath },
            dataDir: dataDir ?? defaultDataDir(storagePath, n.id),
            mysqlPort: n.mysqlPort ?? null,
          };
        }
        case 'mysql': {
          const storage = cross.mysql.get(i);
          // Every way a mysql entry can fail to resolve is reported as a problem above.
          if (storage === undefined) throw new ConfigError(`${label}: nodes[${i}].storage: could not be resolved (internal error)`);
          return { id: n.id, host: n.host, port: n.port, storage, dataDir: dataDir ?? defaultMysqlDataDir(configDir, n.id), mysqlPort: n.mysqlPort ?? null };
        }
        default:
          return assertNever(n.storage);
      }
    }),
    mysqlUsers: cross.mysqlUsers,
    mysqlDatabase: c.mysqlDatabase ?? null,
    transactionIdleTimeoutMs: c.transactionIdleTimeoutMs,
    heartbeatIntervalTicks: msToTicks(c.heartbeatIntervalMs, c.tickMs),
    failureTimeoutTicks: msToTicks(c.failureTimeoutMs, c.tickMs),
    writeTimeoutTicks: msToTicks(c.writeTimeoutMs, c.tickMs),
    warnings,
  };
}
