// Small state files (the node's hard state, the log's base snapshot meta) written atomically:
// write `<name>.tmp`, fsync it, rename it over `<name>`, fsync the directory. A reader sees the
// old or the new content, never a mix. The content carries its own CRC-32 so that a damaged
// file is reported instead of being read as a different term or vote.
//
// File format (one line, human readable): `<crc32 as 8 hex digits> <JSON>\n`, the CRC covering
// the UTF-8 bytes of the JSON text.
import { closeSync, fdatasyncSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from './crc32.js';

export const TMP_SUFFIX = '.tmp';

/** Upper bound on a state file's size: these files hold a few numbers and a hash. */
export const MAX_STATE_FILE_BYTES = 64 * 1024;

export class StateFileError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'StateFileError';
  }
}

export function encodeStateFile(value: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(value), 'utf8');
  const crc = crc32(body).toString(16).padStart(8, '0');
  return Buffer.concat([Buffer.from(`${crc} `, 'utf8'), body, Buffer.from('\n', 'utf8')]);
}

/** Parses a state file's bytes; throws StateFileError (naming `path`) if it is damaged. */
export function decodeStateFile(path: string, bytes: Buffer): unknown {
  if (bytes.length > MAX_STATE_FILE_BYTES) {
    throw new StateFileError(path, `${path}: ${bytes.length} bytes, more than the ${MAX_STATE_FILE_BYTES} a state file may hold`);
  }
  const text = bytes.toString('utf8');
  const m = /^([0-9a-f]{8}) (.*)\n$/s.exec(text);
  if (m === null) throw new StateFileError(path, `${path}: not a replisql state file (expected "<crc32 hex> <json>\\n")`);
  const body = Buffer.from(m[2]!, 'utf8');
  const want = parseInt(m[1]!, 16);
  const got = crc32(body);
  if (want !== got) {
    throw new StateFileError(path, `${path}: checksum mismatch (file says ${m[1]}, content has ${got.toString(16).padStart(8, '0')}); the file is damaged`);
  }
  try {
    return JSON.parse(m[2]!) as unknown;
  } catch (e) {
    throw new StateFileError(path, `${path}: checksum is valid but the JSON is not (${(e as Error).message})`);
  }
}

/** Reads and verifies a state file; returns null if it does not exist. */
export function readStateFile(path: string): unknown {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return decodeStateFile(path, bytes);
}

/**
 * Replaces `dir/name` atomically with `value`. The temporary file is fsynced before the rename.
 * The rename itself becomes durable when the directory is fsynced: here if `dirFd` is given with
 * `syncDir` true, otherwise it is the caller's job (FileLogStore defers it to its next sync()).
 */
export function writeStateFileAtomic(dir: string, name: string, value: unknown, dirFd: number | null, syncDir: boolean): void {
  const target = join(dir, name);
  const tmp = target + TMP_SUFFIX;
  const bytes = encodeStateFile(value);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, target);
  if (syncDir && dirFd !== null) fsyncSync(dirFd);
}
