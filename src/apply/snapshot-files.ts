// Snapshots as files in the node's data directory: built from the database for a peer (and
// shipped inline, base64, in one SNAPSHOT frame), and installed from a peer's.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeId } from '../core/types.js';
import type { SqlEngine } from '../storage/sql-engine.js';
import type { Logger } from '../util/logger-port.js';

/** Room left in a frame for the SNAPSHOT message around the data. */
const FRAME_OVERHEAD_BYTES = 4096;

export interface SnapshotFilesOptions {
  readonly engine: SqlEngine;
  readonly dataDir: string;
  readonly maxFrameBytes: number;
  readonly logger: Logger;
}

export class SnapshotFiles {
  constructor(private readonly opts: SnapshotFilesOptions) {}

  /** A snapshot of the database for peer `to`, or null when it cannot be built or sent (logged). */
  async build(to: NodeId): Promise<{ index: number; data: string } | null> {
    const { engine, dataDir, logger, maxFrameBytes } = this.opts;
    const path = join(dataDir, `snapshot-for-${to}.db`);
    rmSync(path, { force: true });
    let state;
    try {
      state = await engine.snapshotTo(path);
    } catch (err) {
      logger.warn({ event: 'snapshot-build-failed', to, err: (err as Error).message }, `could not build a snapshot for node ${to}: ${(err as Error).message}; will retry`);
      return null;
    }
    const bytes = readFileSync(path);
    rmSync(path, { force: true });
    const data = bytes.toString('base64');
    if (data.length > maxFrameBytes - FRAME_OVERHEAD_BYTES) {
      logger.error(
        { event: 'snapshot-too-large', to, bytes: bytes.length },
        `cannot send a snapshot of ${bytes.length} bytes to node ${to}: larger than maxFrameBytes; raise maxFrameBytes or rebuild that node from a copy of this database`,
      );
      return null;
    }
    logger.info({ event: 'snapshot-built', to, index: state.appliedIndex, bytes: bytes.length }, `sending a snapshot at index ${state.appliedIndex} (${bytes.length} bytes) to node ${to}`);
    return { index: state.appliedIndex, data };
  }

  /** Replaces the database with the snapshot in `data` (base64). */
  async install(data: string): Promise<void> {
    const path = join(this.opts.dataDir, 'incoming-snapshot.db');
    writeFileSync(path, Buffer.from(data, 'base64'));
    await this.opts.engine.installSnapshot(path);
    rmSync(path, { force: true });
  }
}
