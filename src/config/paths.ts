// Paths in the config: relative ones resolve against the config file's folder; default dataDirs.
import { isAbsolute, resolve, dirname, join } from 'node:path';

export function resolvePath(baseDir: string, p: string): string {
  return isAbsolute(p) ? resolve(p) : resolve(baseDir, p);
}

export function defaultDataDir(storagePathAbs: string, id: number): string {
  return join(dirname(storagePathAbs), `node${id}`);
}

/** A MySQL node has no database file to put its log beside: `<config folder>/data/node<ID>`. */
export function defaultMysqlDataDir(configDir: string, id: number): string {
  return join(configDir, 'data', `node${id}`);
}
