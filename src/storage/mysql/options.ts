// The MySQL engine's options, checked and with their defaults filled in.
import { ConfigError } from '../../errors.js';
import type { MysqlLexOptions } from '../../sql/index.js';
import { intOption } from '../engine-lifecycle.js';

export interface MysqlEngineOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 3306. */
  readonly port?: number;
  /** Unix socket instead of host/port. */
  readonly socketPath?: string;
  readonly user: string;
  readonly password?: string;
  /** The database holding the replicated tables and replisql's fencing row. */
  readonly database: string;
  /** CREATE DATABASE IF NOT EXISTS (utf8mb4) on open. Needs the CREATE privilege on the server. Default false. */
  readonly createDatabase?: boolean;
  /** Read connections in the pool. Default 4, at most 64. */
  readonly readConnections?: number;
  /** Default 5000. */
  readonly connectTimeoutMs?: number;
  /** A read statement running longer is stopped by the server (max_statement_time / max_execution_time). 0 = no limit. Default 60000. */
  readonly readTimeoutMs?: number;
  /**
   * Bound on one write statement (not schema changes) and on commits, enforced by the client: when it
   * expires the connection is dropped and the engine is unhealthy until it reconnects. 0 = none. Default 60000.
   */
  readonly writeTimeoutMs?: number;
  /** Bound on requests waiting for the write connection; more are rejected with OVERLOADED. Default 10000. */
  readonly maxQueuedRequests?: number;
  /** Bound on the rows one statement may return. Default 1000000. */
  readonly maxResultRows?: number;
  /** How often a lost database is probed. Default 1000. */
  readonly reconnectIntervalMs?: number;
  /**
   * sql_mode pinned on every connection (it must be the same on every replica). Default
   * 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION' (valid on MariaDB and MySQL 8).
   */
  readonly sqlMode?: string;
  /** The coordinator's clock for SET TIMESTAMP, in milliseconds (fractions are microseconds). Default: the system clock. */
  readonly nowMs?: () => number;
  /** Fault injection for tests (crash windows). A hook that throws fails the operation as an environment failure would. */
  readonly faults?: MysqlFaultHooks;
}

export interface MysqlFaultHooks {
  /** After the "pending" marker of a schema change is committed, before the statement runs. */
  beforeDdl?(entryIndex: number, statementIndex: number): void | Promise<void>;
  /** After a schema change ran (it is committed), before the fencing row records it. */
  afterDdl?(entryIndex: number, statementIndex: number): void | Promise<void>;
  /** installSnapshot: after the atomic swap of the tables, before views/triggers/foreign keys are restored. */
  afterSwap?(): void | Promise<void>;
}

/** The options with defaults applied, as every part of the engine reads them. */
export interface MysqlSettings {
  readonly opts: MysqlEngineOptions;
  readonly readConnections: number;
  readonly connectTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly writeTimeoutMs: number;
  readonly maxQueuedRequests: number;
  readonly maxResultRows: number;
  readonly reconnectIntervalMs: number;
  readonly sqlMode: string;
  /** How the lexer must read statements under sqlMode. */
  readonly lex: MysqlLexOptions;
}

const DEFAULT_SQL_MODE = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';

const positiveInt = (name: string, v: number | undefined, dflt: number, min: number, max: number): number => intOption('mysql engine', name, v, dflt, min, max);

export function mysqlSettings(opts: MysqlEngineOptions): MysqlSettings {
  if (opts === null || typeof opts !== 'object') throw new ConfigError('mysql engine: options are required');
  if (typeof opts.user !== 'string' || opts.user === '') throw new ConfigError('mysql engine: user must be a non-empty string');
  if (typeof opts.database !== 'string' || !/^[A-Za-z0-9_$]{1,64}$/.test(opts.database)) {
    throw new ConfigError('mysql engine: database must be 1-64 characters of A-Z, a-z, 0-9, _ and $');
  }
  if (opts.socketPath === undefined && opts.host !== undefined && (typeof opts.host !== 'string' || opts.host === '')) {
    throw new ConfigError('mysql engine: host must be a non-empty string');
  }
  positiveInt('port', opts.port, 3306, 1, 65535);
  const readConnections = positiveInt('readConnections', opts.readConnections, 4, 1, 64);
  const connectTimeoutMs = positiveInt('connectTimeoutMs', opts.connectTimeoutMs, 5000, 100, 600_000);
  const readTimeoutMs = positiveInt('readTimeoutMs', opts.readTimeoutMs, 60_000, 0, 86_400_000);
  const writeTimeoutMs = positiveInt('writeTimeoutMs', opts.writeTimeoutMs, 60_000, 0, 86_400_000);
  const maxQueuedRequests = positiveInt('maxQueuedRequests', opts.maxQueuedRequests, 10_000, 1, 1_000_000);
  const maxResultRows = positiveInt('maxResultRows', opts.maxResultRows, 1_000_000, 1, 100_000_000);
  const reconnectIntervalMs = positiveInt('reconnectIntervalMs', opts.reconnectIntervalMs, 1000, 10, 600_000);
  const sqlMode = opts.sqlMode ?? DEFAULT_SQL_MODE;
  if (!/^[A-Za-z_,]*$/.test(sqlMode)) throw new ConfigError('mysql engine: sqlMode must be a comma-separated list of mode names');
  return {
    opts,
    readConnections,
    connectTimeoutMs,
    readTimeoutMs,
    writeTimeoutMs,
    maxQueuedRequests,
    maxResultRows,
    reconnectIntervalMs,
    sqlMode,
    lex: lexOptionsFor(sqlMode),
  };
}

function lexOptionsFor(sqlMode: string): MysqlLexOptions {
  const modes = new Set(sqlMode.toUpperCase().split(',').map((m) => m.trim()));
  return { noBackslashEscapes: modes.has('NO_BACKSLASH_ESCAPES'), ansiQuotes: modes.has('ANSI_QUOTES') || modes.has('ANSI') };
}
