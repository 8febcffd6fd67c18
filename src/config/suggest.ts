// "Did you mean" for unknown fields: the closest known field name at that place in the config, or,
// for a field of the other storage engine, what to write instead.
import { ConfigSchema, NodeSchema, SqliteStorageSchema, MysqlStorageSchema } from './schema.js';
import { isRecord } from './raw.js';

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

const SQLITE_KEYS: readonly string[] = Object.keys(SqliteStorageSchema.shape);
const MYSQL_KEYS: readonly string[] = Object.keys(MysqlStorageSchema.shape);

/** The `engine` the user wrote for nodes[index].storage, if any. */
function rawEngineAt(raw: unknown, index: PropertyKey | undefined): unknown {
  if (!isRecord(raw) || !Array.isArray(raw.nodes) || typeof index !== 'number') return undefined;
  const node: unknown = raw.nodes[index];
  return isRecord(node) && isRecord(node.storage) ? node.storage.engine : undefined;
}

export function knownKeysAt(path: readonly PropertyKey[], raw: unknown): readonly string[] {
  if (path.length === 0) return Object.keys(ConfigSchema.shape);
  if (path.length === 2 && path[0] === 'nodes') return Object.keys(NodeSchema.shape);
  if (path.length === 3 && path[0] === 'nodes' && path[2] === 'storage') {
    return rawEngineAt(raw, path[1]) === 'mysql' ? MYSQL_KEYS : SQLITE_KEYS;
  }
  return [];
}

/** For a field that belongs to the other storage engine, what to do instead of a did-you-mean. */
export function otherEngineHint(path: readonly PropertyKey[], key: string, raw: unknown): string | null {
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
