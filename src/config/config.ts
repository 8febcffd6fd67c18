// config.json: validation (schema.ts, checks.ts) and resolution to absolute paths (resolved.ts).
// Every problem is reported as `<file>: <field path>: <what is wrong and how to fix it>`, and all of
// them are reported at once, so a bad config costs one edit, not one edit per problem.
// See docs/configuration.md for each field and why each rule exists.
// See docs/design-config.md for how the pieces fit.
import { resolve, dirname } from 'node:path';
import { ConfigError } from '../errors.js';
import { ConfigSchema } from './schema.js';
import { crossFieldChecks } from './checks.js';
import { preview, zodIssueMessages } from './issues.js';
import { defaultDataDir, defaultMysqlDataDir, resolvePath } from './paths.js';
import { isRecord } from './raw.js';
import { assertNever, msToTicks, type ConfigEnv, type ResolvedConfig, type ResolvedNode } from './resolved.js';

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
    readConsistency: c.readConsistency,
    maxReadStalenessMs: c.maxReadStalenessMs,
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
