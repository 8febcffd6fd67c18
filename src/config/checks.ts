// Rules across fields (durations against each other, unique ids, addresses, files and databases,
// one storage engine, loopback not mixed with real addresses). They run on the raw input, next to
// zod rather than after it, so every problem of a config is reported at once.
import { CONFIG_DEFAULTS, MAX_TICK_MS, STORAGE_ENGINES } from './schema.js';
import { addressKey, databaseHostKey, hostProblem, isLoopbackHost } from './hosts.js';
import { resolveMysqlStorage } from './mysql-storage.js';
import { defaultDataDir, defaultMysqlDataDir, resolvePath } from './paths.js';
import { isRecord } from './raw.js';
import type { ConfigEnv, ResolvedMysqlStorage, ResolvedMysqlUser } from './resolved.js';

export interface CrossFieldResult {
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
export function crossFieldChecks(raw: unknown, baseDir: string, env: ConfigEnv): CrossFieldResult {
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
