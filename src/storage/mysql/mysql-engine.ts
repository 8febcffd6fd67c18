// SqlEngine on MySQL/MariaDB (mysql2): one write connection, a pool of read connections.
//   - The write connection runs, one request at a time in arrival order, the coordinator's speculative
//     batch (one open transaction, a SAVEPOINT per command), follower applies and snapshot installs.
//     The fencing row _replisql_state is written in the same InnoDB transaction as the entry's effects.
//   - Every write statement runs after one SET that pins what would differ between replicas, the way
//     MySQL's statement-based binlog does: SET TIMESTAMP, INSERT_ID, LAST_INSERT_ID, rand seeds. The
//     coordinator records the values in each statement's `context`; followers replay them.
//   - Schema changes (DDL) commit implicitly: they never run speculatively, and a follower applies them
//     one statement at a time behind a "pending" marker in the fencing row, so a crash between a DDL
//     and the fencing row is recognised and resumed.
//   - Reads run on pooled connections that are read-only for the session, all statements of one read()
//     in one consistent snapshot; they never see the open batch.
//   - A lost connection makes the engine unhealthy: every call rejects with UNHEALTHY until a
//     background probe reconnects (or close()+open(), which is required when a batch was lost).
// Why, and what the server must provide: docs/mysql.md.
//
// This class only composes the parts, one concept each:
//   options.ts      the options, checked, with defaults
//   connections.ts  write connection (FIFO), read pool, health, reconnect probe
//   query.ts        one statement on a mysql2 connection; values and column types
//   fence.ts        the fencing row and its markers
//   execute.ts      write statements: analysis, replay context, execution
//   apply.ts        follower applies (atomic, stepwise for DDL, bursts)
//   batch.ts        the coordinator's speculative batch
//   reads.ts        read(), describeStatement(), dump()
//   catalog.ts      tables, views, triggers of the database
//   snapshot.ts     snapshotTo(), installSnapshot(), recovery of an interrupted install
//   snapshot-file.ts  the snapshot file format
//   mysql-context.ts  statement checks, replay context, error classes
import { FollowerApply } from './apply.js';
import { CoordinatorBatch } from './batch.js';
import { MysqlConnections } from './connections.js';
import { WriteStatements } from './execute.js';
import { createFence, publicState } from './fence.js';
import { ContextClock } from './mysql-context.js';
import { mysqlSettings, type MysqlEngineOptions } from './options.js';
import { MysqlReads } from './reads.js';
import { MysqlSnapshots } from './snapshot.js';
import type {
  AppliedState,
  ApplyResult,
  BatchExecResult,
  EntryToApply,
  SqlEngine,
  Statement,
  StatementDescription,
  StatementResult,
} from '../sql-engine.js';

export { MysqlEngineCode } from './mysql-context.js';
export type { MysqlEngineOptions, MysqlFaultHooks } from './options.js';

export class MysqlEngine implements SqlEngine {
  private readonly conn: MysqlConnections;
  private readonly reads: MysqlReads;
  private readonly follower: FollowerApply;
  private readonly batch: CoordinatorBatch;
  private readonly snapshots: MysqlSnapshots;

  constructor(opts: MysqlEngineOptions) {
    const s = mysqlSettings(opts);
    const clock = new ContextClock(opts.nowMs);
    this.conn = new MysqlConnections(s, (w) => this.snapshots.recover(w));
    const exec = new WriteStatements(s, this.conn);
    this.reads = new MysqlReads(s, this.conn);
    this.follower = new FollowerApply(s, this.conn, exec);
    this.batch = new CoordinatorBatch(s, this.conn, exec, clock);
    this.snapshots = new MysqlSnapshots(s, this.conn);
  }

  // ================================================================ lifecycle

  /** Connects; creates the fencing row if needed, finishes an interrupted snapshot install, drops what one left. */
  open(): Promise<void> {
    return this.conn.open(async (w) => {
      await createFence(w);
      const fence = await this.snapshots.recover(w);
      await this.snapshots.dropLeftovers(w);
      return fence;
    });
  }

  close(): Promise<void> {
    return this.conn.close();
  }

  isHealthy(): boolean {
    return this.conn.isHealthy();
  }

  /** Why the engine is unhealthy (null when healthy). */
  unhealthyReason(): string | null {
    return this.conn.unhealthyReason();
  }

  /** `host:port/database` (or the socket), for messages. */
  describe(): string {
    return this.conn.describe();
  }

  // ================================================================ reads

  read(statements: readonly Statement[]): Promise<StatementResult[]> {
    return this.reads.read(statements);
  }

  describeStatement(sql: string): Promise<StatementDescription> {
    return this.reads.describeStatement(sql);
  }

  async appliedState(): Promise<AppliedState> {
    this.conn.ready();
    return publicState(this.conn.state!);
  }

  dump(): Promise<string> {
    return this.reads.dump();
  }

  // ================================================================ writes

  applyEntry(e: EntryToApply): Promise<ApplyResult> {
    return this.follower.applyEntry(e);
  }

  applyEntries(entries: readonly EntryToApply[]): Promise<ApplyResult[]> {
    return this.follower.applyEntries(entries);
  }

  beginBatch(): Promise<void> {
    return this.batch.beginBatch();
  }

  execInBatch(statements: readonly Statement[]): Promise<BatchExecResult> {
    return this.batch.execInBatch(statements);
  }

  commitBatch(fence: AppliedState): Promise<void> {
    return this.batch.commitBatch(fence);
  }

  rollbackBatch(): Promise<void> {
    return this.batch.rollbackBatch();
  }

  // ================================================================ snapshots

  snapshotTo(path: string): Promise<AppliedState> {
    return this.snapshots.snapshotTo(path);
  }

  installSnapshot(path: string): Promise<AppliedState> {
    return this.snapshots.installSnapshot(path);
  }
}
