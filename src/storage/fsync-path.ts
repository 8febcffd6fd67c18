// fsync of a file or a folder by path (a folder after a rename or a new file in it, so the entry
// itself survives a crash). Shared by the SQLite worker and the MySQL engine's snapshots.
import fs from 'node:fs';

export function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
