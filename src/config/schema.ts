// config.json's shape as zod 4 sees it: bounds, defaults, and one schema per object. Each field
// checks only its own type and range, with a message that says what is expected; rules that relate
// several fields are in checks.ts (and mysql-storage.ts), so they can run even when zod fails.
import { z } from 'zod';
import { MAX_STALENESS_LIMIT_MS, READ_CONSISTENCY_LEVELS, type ReadConsistency } from '../core/types.js';
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
  readConsistency: 'session',
  maxReadStalenessMs: 1000,
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

export const SqliteStorageSchema = z.strictObject({
  engine: z.literal('sqlite'),
  /** SQLite database file; relative paths resolve against the config file's folder. */
  path: pathString,
});

export const DEFAULT_MYSQL_PORT = 3306;
/** Environment variable names as POSIX shells accept them. */
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,254}$/;
/** Database names the engine can use unquoted: MySQL's identifier limit is 64 characters. */
export const DATABASE_NAME_RE = /^[A-Za-z0-9_$]{1,64}$/;
export const DATABASE_NAME_RULE = '1-64 characters among A-Z a-z 0-9 _ $';
export const MAX_MYSQL_USER_CHARS = 80;
export const MAX_PASSWORD_CHARS = 1024;
export const MAX_URL_CHARS = 2048;

const hostString = z
  .string({ error: 'expected a host name or IP address (string)' })
  .min(1, { error: 'expected a non-empty host name or IP address' })
  .max(253, { error: 'expected a host name of at most 253 characters' });

/**
 * MySQL/MariaDB. Either `url` or the separate fields; exactly one of `password` / `passwordEnv` /
 * a password inside `url`. Those either/or rules live in `resolveMysqlStorage` (mysql-storage.ts;
 * zod checks types).
 */
export const MysqlStorageSchema = z.strictObject({
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
  readConsistency: z
    .enum(READ_CONSISTENCY_LEVELS as unknown as [ReadConsistency, ...ReadConsistency[]], { error: `expected one of ${READ_CONSISTENCY_LEVELS.map((a) => `"${a}"`).join(', ')}` })
    .default(CONFIG_DEFAULTS.readConsistency),
  maxReadStalenessMs: intBetween(0, MAX_STALENESS_LIMIT_MS).default(CONFIG_DEFAULTS.maxReadStalenessMs),
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
