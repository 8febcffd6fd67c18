// The I/O shell around the protocol core: turns timers into ticks, peer frames into Receive
// inputs, and carries out each Ready in the order the core requires (persist + fsync, send,
// apply, answer). One node process runs one NodeRuntime.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreNode } from '../core/node.js';
import { defaultCoreConfig, type Entry, type Input, type Message, type NodeId, type Outcome, type Ready, type SnapshotMeta } from '../core/types.js';
import { ErrorCode, ReplisqlError } from '../errors.js';
import { validateMessage } from '../core/validate.js';
import type { CoreEvent } from '../core/types.js';
import { findNode, type ResolvedConfig, type ResolvedNode } from '../config/config.js';
import { loadConfig, describeStorage } from '../config/load.js';
import { SqliteEngine } from '../storage/sqlite/sqlite-engine.js';
import { MysqlEngine } from '../storage/mysql/mysql-engine.js';
import type { SqlEngine } from '../storage/sql-engine.js';
import { ClientServer } from '../frontends/json/client-server.js';
import { decodeReplicatedCommand, type WriteResult } from '../apply/command.js';
import { NodeListener } from '../net/listener.js';
import { FileLogStore } from '../durability/log-store.js';
import { LogRateLimiter, type Logger } from '../util/logger-port.js';
import { createNodeLogger } from './node-logger.js';
import { SerialQueue } from '../util/serial-queue.js';
import { TcpTransport } from '../net/tcp-transport.js';
import { WriteExecutor } from '../apply/write-executor.js';
import { isTxnFrame, TxnRelay } from '../sessions/txn-relay.js';
import { SqlSession, type SessionHost } from '../sessions/sql-session.js';
import { MysqlServer } from '../frontends/mysql/server.js';
import { SERVER_VERSION } from '../frontends/mysql/handshake.js';

/** At most this many entries, or about this many payload bytes, per database transaction when applying. */
const MAX_APPLY_BATCH_ENTRIES = 256;
const MAX_APPLY_BATCH_BYTES = 4 * 1024 * 1024;

export interface RunNodeOptions {
  readonly configPath: string;
  readonly nodeId: number;
}

export interface NodeRuntimeOptions {
  readonly config: ResolvedConfig;
  readonly nodeId: number;
  readonly logger: Logger;
}

export class NodeRuntime {
  readonly self: ResolvedNode;
  private readonly config: ResolvedConfig;
  private readonly logger: Logger;
  private core!: CoreNode;
  private store!: FileLogStore;
  private engine!: SqlEngine;
  private transport!: TcpTransport;
  private listener!: NodeListener;
  private clients!: ClientServer;
  private executor!: WriteExecutor;
  private txnRelay!: TxnRelay;
  private mysqlServer: MysqlServer | null = null;
  /** Writes submitted by client sessions (sql-session.ts), by request id. */
  private readonly sessionWrites = new Map<string, (outcome: Outcome) => void>();
  private sessionWriteCount = 0;
  /** Makes session request ids unique across restarts (the coordinator de-duplicates by id). */
  private readonly bootNonce = randomBytes(6).toString('hex');
  private nextSessionId = 1;
  /** Sessions waiting until the database has applied their last write (read-your-writes). */
  private appliedWaiters: { readonly index: number; readonly resolve: () => void; readonly timer: NodeJS.Timeout }[] = [];
  private readonly dbQueue: SerialQueue;
  /** Committed entries not yet handed to the database (see queueApplies). */
  private readonly applyBacklog: Entry[] = [];
  private applyScheduled = false;
  private tickTimer: NodeJS.Timeout | null = null;
  private readonly inputs: Input[] = [];
  private stepping = false;
  private engineApplied = 0;
  private healthy = true;
  private stopped = false;
  private lastTickAt = 0;
  /** A TAKEOVER that arrived before the database applied everything committed (see onPeerFrame). */
  private heldTakeover: { readonly from: NodeId; readonly msg: Message; readonly untilMs: number } | null = null;
  private takeoverHoldMs = 0;
  private readonly invalidPeerLog = new LogRateLimiter(5000);
  /** The one database recovery that is scheduled (a timer) or queued/running (see onDatabaseFailure). */
  private recovery: NodeJS.Timeout | 'queued' | null = null;
  private readonly dbFailureLog = new LogRateLimiter(5000);

  constructor(opts: NodeRuntimeOptions) {
    this.config = opts.config;
    this.self = findNode(opts.config, opts.nodeId);
    this.logger = opts.logger;
    this.dbQueue = new SerialQueue((err) => this.onDatabaseFailure(err));
  }

  async start(): Promise<void> {
    const cfg = this.config;
    const storage = this.self.storage;
    mkdirSync(this.self.dataDir, { recursive: true });
    this.store = FileLogStore.open(join(this.self.dataDir, 'log'), { onWarning: (m) => this.logger.warn({}, m) });
    const loaded = this.store.load();
    this.engine =
      storage.engine === 'sqlite'
        ? new SqliteEngine({ path: storage.path })
        : new MysqlEngine({
            ...(storage.socketPath !== null ? { socketPath: storage.socketPath } : { host: storage.host, port: storage.port }),
            user: storage.user,
            password: storage.password,
            database: storage.database,
          });
    await this.engine.open();
    const applied = await this.engine.appliedState();
    this.checkLogMatchesDatabase(loaded.base, loaded.entries, applied);
    this.engineApplied = applied.appliedIndex;
    const ids = cfg.nodes.map((n) => n.id);
    const coreConfig = defaultCoreConfig(this.self.id, ids, {
      heartbeatIntervalTicks: cfg.heartbeatIntervalTicks,
      failureTimeoutTicks: cfg.failureTimeoutTicks,
      electionStaggerTicks: Math.max(2, Math.round(cfg.heartbeatIntervalTicks / 2)),
      electionJitterTicks: Math.max(1, Math.round(cfg.heartbeatIntervalTicks / 4)),
      electionTimeoutTicks: Math.max(5, cfg.heartbeatIntervalTicks * 2),
      writeTimeoutTicks: cfg.writeTimeoutTicks,
      coordinatorWaitTicks: Math.max(cfg.failureTimeoutTicks + cfg.heartbeatIntervalTicks * 4, 10),
      defaultAck: cfg.writeAck,
      seed: (this.self.id * 7919) ^ (Date.now() & 0x7fffffff),
    });
    // The coordinator waits electionTimeoutTicks (+ jitter) for a requested takeover; a TAKEOVER held
    // longer than half of that is dropped, and the coordinator asks again later.
    this.takeoverHoldMs = Math.floor((coreConfig.electionTimeoutTicks * cfg.tickMs) / 2);
    this.core = new CoreNode(coreConfig, { hardState: loaded.hardState, base: loaded.base, entries: loaded.entries, appliedIndex: applied.appliedIndex });
    this.executor = new WriteExecutor({
      engine: this.engine,
      dialect: storage.engine,
      queue: this.dbQueue,
      logger: this.logger,
      transactionIdleTimeoutMs: cfg.transactionIdleTimeoutMs,
      host: {
        lastLogIndex: () => this.core.status().lastIndex,
        appliedIndex: () => this.engineApplied,
        isCoordinatorReady: () => this.core.status().coordinatorReady,
        proposeAll: (items) => {
          const before = this.core.status().lastIndex;
          this.feed({ type: 'ProposeBatch', items });
          const log = this.core.logView();
          return items.map((item, i) => (log.entry(before + 1 + i)?.requestId === item.requestId ? before + 1 + i : null));
        },
        prepareFailed: (requestId, origin, error) => this.feed({ type: 'PrepareFailed', requestId, origin, error }),
        applied: (index, result) => this.markApplied(index, result),
      },
    });
    this.clients = new ClientServer({
      engine: this.engine,
      logger: this.logger,
      submitWrite: (requestId, command) => this.feed({ type: 'ClientWrite', requestId, command }),
      status: () => this.status(),
      isHealthy: () => this.healthy && this.engine.isHealthy(),
      maxSqlBytes: Math.floor(cfg.maxFrameBytes / 2),
      dialect: storage.engine,
      createSession: () => this.newSession('json', null),
    });
    this.transport = new TcpTransport({
      selfId: this.self.id,
      cluster: cfg.cluster,
      peers: cfg.nodes.map((n) => ({ id: n.id, host: n.host, port: n.port })),
      maxFrameBytes: cfg.maxFrameBytes,
      logger: this.logger,
      onMessage: (from, raw) => this.onPeerFrame(from, raw),
    });
    this.txnRelay = new TxnRelay({
      selfId: this.self.id,
      runner: this.executor,
      send: (to, frame) => this.transport.send(to, frame),
      logger: this.logger,
      callTimeoutMs: cfg.writeTimeoutMs,
      maxSqlBytes: Math.floor(cfg.maxFrameBytes / 2),
    });
    this.listener = new NodeListener({
      host: this.self.host,
      port: this.self.port,
      maxFrameBytes: cfg.maxFrameBytes,
      logger: this.logger,
      onPeerConnection: (hello, conn) => this.transport.acceptInbound(hello, conn),
      onClientConnection: (first, conn) => this.clients.accept(first, conn),
    });
    await this.listener.listen();
    if (this.self.mysqlPort !== null) {
      this.mysqlServer = new MysqlServer({
        host: this.self.host,
        port: this.self.mysqlPort,
        users: cfg.mysqlUsers,
        logger: this.logger,
        maxPacketBytes: Math.floor(cfg.maxFrameBytes / 2),
        createSession: (info) => {
          if (info.database !== null && info.database !== this.mysqlDatabase()) {
            return { code: 'ER_BAD_DB_ERROR', errno: 1049, sqlState: '42000', message: `Unknown database '${info.database}' (this node serves '${this.mysqlDatabase()}')` };
          }
          return this.newSession(info.user, info.connectionId);
        },
      });
      await this.mysqlServer.listen();
      this.logger.info({ mysqlPort: this.self.mysqlPort }, `MySQL protocol on ${this.self.host}:${this.self.mysqlPort} (database '${this.mysqlDatabase()}')`);
    }
    this.lastTickAt = Date.now();
    this.tickTimer = setInterval(() => this.onTimer(), cfg.tickMs);
    this.logger.info(
      { host: this.self.host, port: this.self.port, term: loaded.hardState.term, lastIndex: this.core.status().lastIndex, appliedIndex: applied.appliedIndex },
      `node ${this.self.id} listening on ${this.self.host}:${this.self.port} (cluster '${cfg.cluster}', ${cfg.nodes.length} nodes, log ${loaded.base.index}+${loaded.entries.length} entries, database applied up to ${applied.appliedIndex})`,
    );
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.recovery !== null && this.recovery !== 'queued') clearTimeout(this.recovery);
    await this.mysqlServer?.close().catch(() => undefined);
    this.txnRelay?.close();
    for (const w of this.appliedWaiters) clearTimeout(w.timer);
    this.appliedWaiters = [];
    await this.listener?.close().catch(() => undefined);
    await this.transport?.close().catch(() => undefined);
    this.clients?.close();
    await this.dbQueue.drain().catch(() => undefined);
    await this.engine?.close().catch(() => undefined);
    this.store?.close();
    this.logger.info({}, `node ${this.self.id} stopped`);
  }

  status(): Record<string, unknown> {
    const s = this.core.status();
    return {
      nodeId: s.nodeId,
      role: s.role,
      coordinator: s.coordinator,
      term: s.term,
      commitIndex: s.commitIndex,
      appliedIndex: this.engineApplied,
      lastIndex: s.lastIndex,
      healthy: this.healthy && this.engine.isHealthy(),
      nodes: s.nodes.map((n) => ({
        id: n.id,
        online: n.online,
        lastHeartbeatMsAgo: n.lastHeardTicksAgo === null ? null : n.lastHeardTicksAgo * this.config.tickMs,
        matchIndex: n.matchIndex,
      })),
    };
  }

  // ------------------------------------------------------------------ client sessions

  /** The database name MySQL clients use on this node. */
  private mysqlDatabase(): string {
    const storage = this.self.storage;
    return this.config.mysqlDatabase ?? (storage.engine === 'mysql' ? storage.database : 'main');
  }

  private newSession(user: string, connectionId: number | null): SqlSession {
    return new SqlSession({ host: this.sessionHost(), database: this.mysqlDatabase(), user, connectionId: connectionId ?? this.nextSessionId++ });
  }

  private sessionHost(): SessionHost {
    return {
      dialect: this.self.storage.engine,
      serverVersion: SERVER_VERSION,
      maxAllowedPacketBytes: Math.floor(this.config.maxFrameBytes / 2),
      isHealthy: () => this.healthy && this.engine.isHealthy(),
      read: (statements) => this.engine.read(statements),
      describe: (sql) => this.engine.describeStatement(sql),
      submitWrite: (command, requestId) => this.submitSessionWrite(command, requestId),
      coordinator: () => this.core.status().coordinator,
      txnExec: (at, key, first, sql, params) => this.txnRelay.exec(at, key, first, sql, params),
      txnRollback: (at, key) => this.txnRelay.rollback(at, key),
      waitApplied: (index) => this.waitApplied(index),
    };
  }

  /** A write from a session: the ordinary write path, answered through a promise. */
  private submitSessionWrite(command: string, clientRequestId?: string): Promise<Outcome> {
    const requestId = clientRequestId ?? `s${this.self.id}-${this.bootNonce}-${++this.sessionWriteCount}`;
    if (this.sessionWrites.has(requestId)) {
      return Promise.resolve({ ok: false, error: { code: ErrorCode.BAD_REQUEST, message: `request id ${requestId} is already in flight on this node` } });
    }
    return new Promise<Outcome>((resolve) => {
      this.sessionWrites.set(requestId, resolve);
      this.feed({ type: 'ClientWrite', requestId, command });
    });
  }

  private deliverReply(requestId: string, outcome: Outcome): void {
    const session = this.sessionWrites.get(requestId);
    if (session !== undefined) {
      this.sessionWrites.delete(requestId);
      session(outcome);
      return;
    }
    this.clients.complete(requestId, outcome);
  }

  /** Resolves once the database has applied `index`; rejects after writeTimeoutMs (the node is lagging). */
  private waitApplied(index: number): Promise<void> {
    if (this.engineApplied >= index) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.appliedWaiters = this.appliedWaiters.filter((w) => w.timer !== timer);
        reject(
          new ReplisqlError(
            ErrorCode.UNHEALTHY,
            `this node has not applied the session's last write (log index ${index}, applied ${this.engineApplied}) within ${this.config.writeTimeoutMs} ms; retry, or connect to another node`,
          ),
        );
      }, this.config.writeTimeoutMs);
      timer.unref();
      this.appliedWaiters.push({ index, resolve, timer });
    });
  }

  private releaseAppliedWaiters(): void {
    if (this.appliedWaiters.length === 0) return;
    const ready = this.appliedWaiters.filter((w) => w.index <= this.engineApplied);
    if (ready.length === 0) return;
    this.appliedWaiters = this.appliedWaiters.filter((w) => w.index > this.engineApplied);
    for (const w of ready) {
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  // ------------------------------------------------------------------ inputs

  /** Steps the core with an input and carries out the Ready; re-entrant calls are queued. */
  private feed(input: Input): void {
    this.inputs.push(input);
    this.run();
  }

  /**
   * Steps the core with every queued input, then carries out the resulting Readys together: all
   * persistence first with a single fsync, then sends, applies and answers in Ready order. One
   * fsync per burst of inputs (group commit) instead of one per input.
   */
  private run(): void {
    if (this.stepping) return;
    this.stepping = true;
    try {
      while (this.inputs.length > 0) {
        const readys: Ready[] = [];
        while (this.inputs.length > 0) readys.push(this.core.step(this.inputs.shift() as Input));
        this.carryOut(readys);
      }
    } finally {
      this.stepping = false;
    }
  }

  private onTimer(): void {
    if (this.stopped) return;
    // Turn elapsed wall time into ticks; a long event-loop stall yields several ticks at once,
    // capped so a suspended process does not replay minutes of ticks.
    const now = Date.now();
    const ticks = Math.min(Math.floor((now - this.lastTickAt) / this.config.tickMs), 50);
    if (ticks <= 0) return;
    this.lastTickAt += ticks * this.config.tickMs;
    if (now - this.lastTickAt > this.config.tickMs * 50) this.lastTickAt = now;
    for (let i = 0; i < ticks; i++) this.feed({ type: 'Tick' });
    this.releaseTakeover();
  }

  private onPeerFrame(from: NodeId, raw: unknown): void {
    if (isTxnFrame(raw)) {
      this.txnRelay.onFrame(from, raw);
      return;
    }
    const v = validateMessage(raw);
    if (!v.ok) {
      const suppressed = this.invalidPeerLog.take(String(from));
      if (suppressed !== null) {
        this.logger.warn({ from, reason: v.reason, suppressed }, `dropped a message from node ${from}: ${v.reason}${suppressed > 0 ? ` (${suppressed} more since the last such line)` : ''}`);
      }
      return;
    }
    // The coordinator asks a higher-id node to take over once its log has caught up, but the
    // database may still be applying the last entries. A coordinator executes writes on its own
    // database, so it must not take over before it has applied everything committed: hold the
    // TAKEOVER (as a network delay would) until the database has caught up.
    if (v.msg.type === 'TAKEOVER') {
      const commitIndex = this.core.status().commitIndex;
      if (this.engineApplied < commitIndex) {
        this.heldTakeover = { from, msg: v.msg, untilMs: Date.now() + this.takeoverHoldMs };
        this.logger.info(
          { from, appliedIndex: this.engineApplied, commitIndex },
          `asked by node ${from} to take over; waiting until the database has applied up to ${commitIndex} (applied ${this.engineApplied})`,
        );
        return;
      }
    }
    this.feed({ type: 'Receive', from, msg: v.msg });
  }

  /** Delivers a held TAKEOVER once the database has caught up, or drops it when it is too old. */
  private releaseTakeover(): void {
    const held = this.heldTakeover;
    if (held === null) return;
    if (Date.now() > held.untilMs) {
      this.heldTakeover = null;
      this.logger.info({ from: held.from, appliedIndex: this.engineApplied }, `not taking over from node ${held.from}: the database did not catch up in time (applied ${this.engineApplied}); it will ask again`);
      return;
    }
    if (this.engineApplied < this.core.status().commitIndex) return;
    this.heldTakeover = null;
    this.feed({ type: 'Receive', from: held.from, msg: held.msg });
  }

  // ------------------------------------------------------------------ carrying out a Ready

  private carryOut(readys: readonly Ready[]): void {
    // 1. persist and fsync before anything that depends on it leaves the node
    let changed = false;
    let lastAppended: Entry | null = null;
    for (const ready of readys) {
      if (ready.hardState !== null) this.store.saveHardState(ready.hardState);
      if (ready.truncateFrom !== null) this.store.truncateFrom(ready.truncateFrom);
      if (ready.entriesToAppend.length > 0) {
        this.store.append(ready.entriesToAppend);
        lastAppended = ready.entriesToAppend[ready.entriesToAppend.length - 1] as Entry;
      }
      changed ||= ready.hardState !== null || ready.truncateFrom !== null || ready.entriesToAppend.length > 0;
    }
    // A coordinator's REPLICATE may leave before its own fsync (as etcd's leader does): it only
    // carries entries, and the core counts the coordinator towards a quorum only once `Persisted`
    // says they are on its disk, so the disk write and the followers' work overlap. Not when the
    // term, the vote or a truncation is being persisted: then everything waits for the fsync.
    const replicateEarly = changed && readys.every((r) => r.hardState === null && r.truncateFrom === null);
    if (replicateEarly) {
      for (const ready of readys) for (const m of ready.messages) if (m.msg.type === 'REPLICATE') this.transport.send(m.to, m.msg as unknown as object);
    }
    if (changed) this.store.sync();
    if (lastAppended !== null) this.inputs.push({ type: 'Persisted', index: lastAppended.index, term: lastAppended.term });
    for (const ready of readys) {
      // 2. send
      for (const m of ready.messages) if (!(replicateEarly && m.msg.type === 'REPLICATE')) this.transport.send(m.to, m.msg as unknown as object);
      // 3. install a snapshot / apply committed entries, in order, on the database queue
      if (ready.snapshotToInstall !== null) this.installSnapshot(ready.snapshotToInstall.meta, ready.snapshotToInstall.data);
      if (ready.committed.length > 0) this.queueApplies(ready.committed);
      if (ready.compactUpTo !== null) {
        const meta = ready.compactUpTo;
        this.dbQueue.push(async () => this.store.compact(meta));
      }
      // 4. answer clients, start prepare work, build snapshots
      for (const r of ready.replies) this.deliverReply(r.requestId, r.outcome);
      for (const ev of ready.events) this.logEvent(ev);
      if (ready.events.some((e) => e.type === 'stepped-down')) this.executor.abort((e) => this.applyNormally(e));
      if (ready.prepare.length > 0) this.executor.enqueue(ready.prepare);
      for (const to of ready.snapshotRequests) this.buildSnapshot(to);
    }
  }

  /**
   * Committed entries wait in `applyBacklog`; one task on the database queue applies everything
   * waiting when it runs, consecutive entries together (engine.applyEntries: one database commit per
   * burst), entries of the coordinator's own open batch through the executor.
   */
  private queueApplies(entries: readonly Entry[]): void {
    this.applyBacklog.push(...entries);
    if (this.applyScheduled) return;
    this.applyScheduled = true;
    this.dbQueue.push(() => this.applyBacklogged());
  }

  private async applyBacklogged(): Promise<void> {
    this.applyScheduled = false;
    while (this.applyBacklog.length > 0) {
      const e = this.applyBacklog[0] as Entry;
      if (e.index <= this.engineApplied) {
        this.applyBacklog.shift();
        continue;
      }
      if (this.executor.ownsEntry(e.index)) {
        this.applyBacklog.shift();
        await this.executor.commitEntry(e);
        continue;
      }
      const run: Entry[] = [];
      let bytes = 0;
      while (run.length < MAX_APPLY_BATCH_ENTRIES && bytes < MAX_APPLY_BATCH_BYTES && this.applyBacklog.length > 0) {
        const next = this.applyBacklog[0] as Entry;
        if (this.executor.ownsEntry(next.index)) break;
        this.applyBacklog.shift();
        if (next.index <= this.engineApplied) continue;
        run.push(next);
        bytes += next.payload.length;
      }
      try {
        await this.applyManyNormally(run);
      } catch (err) {
        // Not applied: recovery re-applies from the log (and skips what the database has).
        this.applyBacklog.length = 0;
        throw err;
      }
    }
  }

  /** Applies consecutive entries that are not in the coordinator's open batch, in one engine call. */
  private async applyManyNormally(entries: readonly Entry[]): Promise<void> {
    if (entries.length === 1) {
      await this.applyNormally(entries[0] as Entry);
      return;
    }
    if (entries.length === 0) return;
    const results = await this.engine.applyEntries(
      entries.map((e) => ({ index: e.index, term: e.term, chainHash: e.chainHash, statements: e.kind === 'noop' ? [] : decodeReplicatedCommand(e.payload).stmts })),
    );
    entries.forEach((e, i) => {
      const res = results[i];
      const result: WriteResult =
        res === undefined || res.skipped ? { ok: true, results: [] } : res.ok ? { ok: true, results: res.results } : { ok: false, error: { code: res.error.code, message: res.error.message } };
      this.markApplied(e.index, result);
    });
  }

  private async applyNormally(e: Entry): Promise<void> {
    if (e.index <= this.engineApplied) return;
    const statements = e.kind === 'noop' ? [] : decodeReplicatedCommand(e.payload).stmts;
    const res = await this.engine.applyEntry({ index: e.index, term: e.term, chainHash: e.chainHash, statements });
    const result: WriteResult = res.skipped ? { ok: true, results: [] } : res.ok ? { ok: true, results: res.results } : { ok: false, error: { code: res.error.code, message: res.error.message } };
    this.markApplied(e.index, result);
  }

  private markApplied(index: number, result: WriteResult): void {
    if (index > this.engineApplied) this.engineApplied = index;
    this.releaseAppliedWaiters();
    if (!this.healthy) {
      this.healthy = true;
      this.logger.info({}, 'database healthy again');
      this.feed({ type: 'SetHealthy', healthy: true });
    }
    this.feed({ type: 'Applied', index, result });
    this.executor.pump();
    this.releaseTakeover();
  }

  /**
   * A database task failed. While the database is down every queued task fails (one per committed
   * entry), so: the first failure of an outage is logged, later ones at most once per 5 s, and one
   * recovery at a time is scheduled (a recovery per failure made concurrent close()/open() calls on
   * the engine and thousands of reconnect attempts and log lines per second).
   */
  private onDatabaseFailure(err: unknown): void {
    const message = (err as Error)?.message ?? String(err);
    const outageStarts = this.healthy;
    this.healthy = false;
    // A coordinator without its database hands over; an unhealthy node does not run for coordinator.
    if (outageStarts) this.feed({ type: 'SetHealthy', healthy: false });
    const suppressed = this.dbFailureLog.take('database');
    if (outageStarts || suppressed !== null) {
      this.logger.error(
        { err: message, ...(suppressed !== null && suppressed > 0 ? { suppressed } : {}) },
        `database operation failed: ${message}; the node keeps its place in the log and acknowledges nothing until the database recovers${suppressed !== null && suppressed > 0 ? ` (${suppressed} more failures since the last such line)` : ''}`,
      );
    }
    this.scheduleRecovery();
  }

  private scheduleRecovery(): void {
    if (this.stopped || this.recovery !== null) return;
    const timer = setTimeout(() => {
      this.recovery = 'queued';
      this.dbQueue.push(() => this.recoverDatabase());
    }, 1000);
    timer.unref();
    this.recovery = timer;
  }

  /**
   * Runs on the database queue, so nothing else uses the engine meanwhile: reopens it if needed,
   * re-reads its applied state and applies, here and in order, every entry committed since (entries
   * queued behind this task are then skipped as applied). A failure goes back to onDatabaseFailure,
   * which schedules the next attempt.
   */
  private async recoverDatabase(): Promise<void> {
    if (this.stopped) {
      this.recovery = null;
      return;
    }
    try {
      if (!this.engine.isHealthy()) {
        await this.engine.close().catch(() => undefined);
        await this.engine.open();
        this.executor.forgetBatch();
      }
      const state = await this.engine.appliedState();
      this.engineApplied = state.appliedIndex;
      for (let i = state.appliedIndex + 1; i <= this.core.status().commitIndex; i++) {
        const e = this.core.logView().entry(i);
        if (e === undefined) break;
        await this.applyNormally(e);
      }
    } finally {
      this.recovery = null;
    }
    // Healthy again even when there was nothing to apply (markApplied says so otherwise).
    if (!this.healthy) {
      this.healthy = true;
      this.logger.info({ appliedIndex: this.engineApplied }, 'database healthy again');
      this.feed({ type: 'SetHealthy', healthy: true });
    }
    this.executor.pump();
  }

  // ------------------------------------------------------------------ snapshots

  private buildSnapshot(to: NodeId): void {
    this.dbQueue.push(async () => {
      const path = join(this.self.dataDir, `snapshot-for-${to}.db`);
      rmSync(path, { force: true });
      let state;
      try {
        state = await this.engine.snapshotTo(path);
      } catch (err) {
        this.logger.warn({ to, err: (err as Error).message }, `could not build a snapshot for node ${to}: ${(err as Error).message}; will retry`);
        return;
      }
      const bytes = readFileSync(path);
      rmSync(path, { force: true });
      const data = bytes.toString('base64');
      if (data.length > this.config.maxFrameBytes - 4096) {
        this.logger.error({ to, bytes: bytes.length }, `cannot send a snapshot of ${bytes.length} bytes to node ${to}: larger than maxFrameBytes; raise maxFrameBytes or rebuild that node from a copy of this database`);
        return;
      }
      this.logger.info({ to, index: state.appliedIndex, bytes: bytes.length }, `sending a snapshot at index ${state.appliedIndex} (${bytes.length} bytes) to node ${to}`);
      this.feed({ type: 'SnapshotReady', to, index: state.appliedIndex, data });
    });
  }

  private installSnapshot(meta: SnapshotMeta, data: string): void {
    this.dbQueue.push(async () => {
      const path = join(this.self.dataDir, 'incoming-snapshot.db');
      writeFileSync(path, Buffer.from(data, 'base64'));
      await this.engine.installSnapshot(path);
      rmSync(path, { force: true });
      this.store.resetTo(meta);
      this.store.sync();
      this.engineApplied = meta.index;
      this.releaseAppliedWaiters();
      this.feed({ type: 'SnapshotInstalled', meta });
    });
  }

  // ------------------------------------------------------------------ checks and logging

  private checkLogMatchesDatabase(base: SnapshotMeta, entries: readonly Entry[], applied: { appliedIndex: number; chainHash: string }): void {
    const last = base.index + entries.length;
    if (applied.appliedIndex > last) {
      throw new Error(
        `database ${describeStorage(this.self.storage)} has applied index ${applied.appliedIndex} but the log in ${this.self.dataDir} ends at ${last}: the log was lost or belongs to another database; move the database aside to rebuild this node from its peers`,
      );
    }
    if (applied.appliedIndex > 0 && applied.appliedIndex >= base.index) {
      const hash = applied.appliedIndex === base.index ? base.chainHash : entries[applied.appliedIndex - base.index - 1]?.chainHash;
      if (hash !== undefined && hash !== applied.chainHash) {
        throw new Error(`database ${describeStorage(this.self.storage)} and log ${this.self.dataDir} disagree at index ${applied.appliedIndex} (chain hash): refusing to start`);
      }
    } else if (applied.appliedIndex < base.index) {
      throw new Error(`the log starts after index ${base.index} but the database has applied only ${applied.appliedIndex}: refusing to start`);
    }
  }

  private logEvent(ev: CoreEvent): void {
    const l = this.logger;
    switch (ev.type) {
      case 'election-started':
        l.info(ev, ev.prevote ? `starting an election (pre-vote for term ${ev.term})` : `election for term ${ev.term}${ev.takeover ? ' (taking over from a lower id)' : ''}`);
        break;
      case 'became-coordinator': {
        const s = this.core.status();
        l.info({ ...ev, lastIndex: s.lastIndex, commitIndex: s.commitIndex, appliedIndex: this.engineApplied }, `became coordinator for term ${ev.term}`);
        break;
      }
      case 'coordinator-changed':
        this.txnRelay.coordinatorChanged(ev.coordinator);
        l.info(ev, ev.coordinator === null ? `no coordinator (term ${ev.term})` : `coordinator is node ${ev.coordinator} (term ${ev.term})`);
        break;
      case 'stepped-down':
        l.warn(ev, `stepped down as coordinator in term ${ev.term}: ${ev.reason}`);
        break;
      case 'peer-online':
        l.info(ev, `node ${ev.peer} is online`);
        break;
      case 'peer-offline':
        l.warn(ev, `node ${ev.peer} is offline (no heartbeat for ${(ev.silentTicks * this.config.tickMs) / 1000} s)`);
        break;
      case 'checksum-mismatch':
        l.error(ev, `checksum mismatch in REPLICATE from node ${ev.from} at index ${ev.index}: ${ev.detail}; entry rejected, asking for it again`);
        break;
      case 'replication-rejected':
        l.debug(ev, `node ${ev.peer} rejected REPLICATE: ${ev.reason}`);
        break;
      case 'takeover-requested':
        l.info(ev, ev.target === this.self.id ? `asked by the coordinator to take over (higher id, caught up)` : `handing the coordinator role to node ${ev.target} (higher id, caught up)`);
        break;
      case 'catch-up':
        l.info(ev, `node ${ev.peer} catching up: ${ev.matchIndex}/${ev.lastIndex}`);
        break;
      case 'snapshot-sent':
        l.info(ev, `snapshot at index ${ev.index} sent to node ${ev.peer}`);
        break;
      case 'snapshot-installed':
        l.info(ev, `installed a snapshot at index ${ev.index}`);
        break;
      case 'message-rejected':
        l.warn(ev, `rejected a message from node ${ev.from}: ${ev.reason}`);
        break;
    }
  }
}

/** `replisql node --config F --id N`: runs until SIGINT/SIGTERM. */
export async function runNode(opts: RunNodeOptions): Promise<void> {
  const config = loadConfig(opts.configPath);
  const node = findNode(config, opts.nodeId);
  const log = createNodeLogger({ logDir: config.logDir, nodeId: node.id, echo: process.stderr.isTTY === true || process.env['REPLISQL_LOG_ECHO'] === '1' });
  for (const w of config.warnings) log.logger.warn({}, `config: ${w}`);
  const runtime = new NodeRuntime({ config, nodeId: opts.nodeId, logger: log.logger });
  try {
    await runtime.start();
  } catch (err) {
    log.logger.error({ err: (err as Error).message }, `node ${opts.nodeId} failed to start: ${(err as Error).message}`);
    log.close();
    throw err;
  }
  process.stdout.write(`replisql node ${node.id} ready on ${node.host}:${node.port} (log: ${log.path})\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void runtime.stop().finally(() => {
        log.close();
        resolve();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
