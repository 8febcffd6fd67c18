// The resolved config a node runs with (absolute paths, defaults filled in, passwords read from the
// environment), and small helpers on it.
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import type { AckLevel } from '../core/types.js';
import type { ReadConsistency } from '../core/types.js';
import { redactConfig } from './redact.js';

/** Where `passwordEnv` values are read from (process.env unless a test gives another). */
export type ConfigEnv = Readonly<Record<string, string | undefined>>;

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
  /** Default read level of sessions and requests that name none (docs/consistency.md). */
  readonly readConsistency: ReadConsistency;
  /** The bound of the `bounded` level when a session or request names none. */
  readonly maxReadStalenessMs: number;
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

export function assertNever(x: never): never {
  throw new Error(`unexpected storage ${JSON.stringify(redactConfig(x))}`);
}
