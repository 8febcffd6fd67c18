// `replisql node`: composes one node from its parts and runs it. The protocol core is stepped by
// the node driver (driver.ts, the same module the simulator runs) through real ports: the file
// log, TCP to the peers, the database applier and the coordinator's write executor. Around it:
// the tick timer, the peer listener, the two client front ends (JSON and MySQL) and their sessions.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CoreNode } from '../core/node.js';
import type { Entry, NodeId, Outcome, SnapshotMeta } from '../core/types.js';
import { validateMessage } from '../core/validate.js';
import { findNode, type ResolvedConfig, type ResolvedNode } from '../config/resolved.js';
import { loadConfig, describeStorage } from '../config/load.js';
import { SqliteEngine } from '../storage/sqlite/sqlite-engine.js';
import { MysqlEngine } from '../storage/mysql/mysql-engine.js';
import type { SqlEngine } from '../storage/sql-engine.js';
import { ClientServer } from '../frontends/json/client-server.js';
import { MysqlServer } from '../frontends/mysql/server.js';
import { SERVER_VERSION } from '../frontends/mysql/handshake.js';
import { NodeListener } from '../net/listener.js';
import { TcpTransport, parseTestPeerDelay, TEST_PEER_DELAY_ENV } from '../net/tcp-transport.js';
import { FileLogStore } from '../durability/log-store.js';
import { DatabaseApplier } from '../apply/applier.js';
import { WriteExecutor } from '../apply/write-executor.js';
import { isTxnFrame, TxnRelay } from '../sessions/txn-relay.js';
import { SqlSession, unknownDatabase, type SessionHost } from '../sessions/sql-session.js';
import { ReadBarrier, UNSAFE_LOCAL_READS_ENV, type ReadLevel } from '../sessions/read-levels.js';
import { AppliedWaiters } from '../sessions/applied-waiters.js';
import { SessionWrites } from '../sessions/session-writes.js';
import { LogRateLimiter, type Logger } from '../util/logger-port.js';
import { SerialQueue } from '../util/serial-queue.js';
import { deriveCoreConfig } from './core-config.js';
import { NodeDriver } from './driver.js';
import { logCoreEvent } from './event-log.js';
import { createNodeLogger } from './node-logger.js';
import type { LogWriter } from './ports.js';

/** A long event-loop stall yields at most this many ticks at once (a suspended process does not replay minutes). */
const MAX_CATCH_UP_TICKS = 50;

export interface RunNodeOptions {
  readonly configPath: string;
  readonly nodeId: number;
}

export interface NodeRuntimeOptions {
  readonly config: ResolvedConfig;
  readonly nodeId: number;
  readonly logger: Logger;
  /** TEST ONLY (REPLISQL_TEST_PEER_DELAY_MS): delay every outgoing peer frame by this much. */
  readonly testPeerDelayMs?: number | null;
}

export class NodeRuntime {
  readonly self: ResolvedNode;
  private readonly config: ResolvedConfig;
  private readonly logger: Logger;
  private driver!: NodeDriver;
  private store!: FileLogStore;
  private engine!: SqlEngine;
  private applier!: DatabaseApplier;
  private transport!: TcpTransport;
  private readonly testPeerDelayMs: number | null;
  private listener!: NodeListener;
  private clients!: ClientServer;
  private executor!: WriteExecutor;
  private txnRelay!: TxnRelay;
  private mysqlServer: MysqlServer | null = null;
  private sessionWrites!: SessionWrites;
  private appliedWaiters!: AppliedWaiters;
  private readBarrier!: ReadBarrier;
  private nextSessionId = 1;
  private readonly dbQueue: SerialQueue;
  private tickTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private lastTickAt = 0;
  private readonly invalidPeerLog = new LogRateLimiter(5000);

  constructor(opts: NodeRuntimeOptions) {
    this.config = opts.config;
    this.self = findNode(opts.config, opts.nodeId);
    this.logger = opts.logger;
    this.testPeerDelayMs = opts.testPeerDelayMs ?? null;
    this.dbQueue = new SerialQueue((err) => this.applier.onDatabaseFailure(err));
  }

  private get core(): CoreNode {
    return this.driver.core;
  }

  async start(): Promise<void> {
    const cfg = this.config;
    const storage = this.self.storage;
    mkdirSync(this.self.dataDir, { recursive: true });
    this.store = FileLogStore.open(join(this.self.dataDir, 'log'), { onWarning: (m) => this.logger.warn({ event: 'log-store-warning' }, m) });
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
    const coreConfig = deriveCoreConfig(
      this.self.id,
      cfg.nodes.map((n) => n.id),
      {
        heartbeatIntervalTicks: cfg.heartbeatIntervalTicks,
        failureTimeoutTicks: cfg.failureTimeoutTicks,
        writeTimeoutTicks: cfg.writeTimeoutTicks,
        defaultAck: cfg.writeAck,
        seed: (this.self.id * 7919) ^ (Date.now() & 0x7fffffff),
      },
    );
    const core = new CoreNode(coreConfig, { hardState: loaded.hardState, base: loaded.base, entries: loaded.entries, appliedIndex: applied.appliedIndex });
    this.appliedWaiters = new AppliedWaiters(applied.appliedIndex, cfg.writeTimeoutMs);
    const unsafeLocalReads = process.env[UNSAFE_LOCAL_READS_ENV] === '1';
    if (unsafeLocalReads) {
      this.logger.warn({ event: 'unsafe-local-reads' }, `${UNSAFE_LOCAL_READS_ENV}=1: every read level is served locally (a weakened build for fault tests; NOT linearizable)`);
    }
    this.readBarrier = new ReadBarrier(
      {
        waitApplied: (index) => this.appliedWaiters.wait(index),
        requestReadIndex: (requestId) => this.driver.feed({ type: 'ReadIndex', requestId }),
        now: () => performance.now(),
      },
      unsafeLocalReads,
    );
    this.applier = new DatabaseApplier({
      engine: this.engine,
      queue: this.dbQueue,
      logger: this.logger,
      dataDir: this.self.dataDir,
      maxFrameBytes: cfg.maxFrameBytes,
      appliedIndex: applied.appliedIndex,
      log: () => this.core.logView(),
      commitIndex: () => this.core.status().commitIndex,
      onApplied: (index) => this.appliedWaiters.advance(index),
    });
    this.executor = new WriteExecutor({
      engine: this.engine,
      dialect: storage.engine,
      queue: this.dbQueue,
      logger: this.logger,
      transactionIdleTimeoutMs: cfg.transactionIdleTimeoutMs,
      host: {
        lastLogIndex: () => this.core.status().lastIndex,
        appliedIndex: () => this.applier.appliedIndex(),
        isCoordinatorReady: () => this.core.status().coordinatorReady,
        proposeAll: (items) => {
          const before = this.core.status().lastIndex;
          this.driver.feed({ type: 'ProposeBatch', items });
          const log = this.core.logView();
          return items.map((item, i) => (log.entry(before + 1 + i)?.requestId === item.requestId ? before + 1 + i : null));
        },
        prepareFailed: (requestId, origin, error) => this.driver.feed({ type: 'PrepareFailed', requestId, origin, error }),
        applied: (index, result) => this.applier.markApplied(index, result),
      },
    });
    this.transport = new TcpTransport({
      selfId: this.self.id,
      cluster: cfg.cluster,
      peers: cfg.nodes.map((n) => ({ id: n.id, host: n.host, port: n.port })),
      maxFrameBytes: cfg.maxFrameBytes,
      logger: this.logger,
      heartbeatIntervalMs: cfg.heartbeatIntervalMs,
      onMessage: (from, raw) => this.onPeerFrame(from, raw),
    });
    const delayMs = this.testPeerDelayMs;
    if (delayMs !== null && delayMs > 0) {
      this.transport.setSendFilter(() => ({ delayMs }));
      this.logger.warn({ event: 'test-peer-delay', delayMs }, `TEST ONLY: every outgoing peer frame is delayed by ${delayMs} ms (${TEST_PEER_DELAY_ENV})`);
    }
    const eventContext = { selfId: this.self.id, tickMs: cfg.tickMs, positions: () => this.positions() };
    this.driver = new NodeDriver(core, {
      log: this.logWriter(),
      transport: { send: (to, msg) => this.transport.send(to, msg as unknown as object) },
      stateMachine: this.applier,
      writes: {
        prepare: (requests) => this.executor.enqueue(requests),
        reply: (r) => {
          if (!this.sessionWrites.deliver(r.requestId, r.outcome)) this.clients.complete(r.requestId, r.outcome);
        },
        readIndex: (answer) => this.readBarrier.deliver(answer),
      },
      events: (ev) => {
        if (ev.type === 'coordinator-changed') this.txnRelay.coordinatorChanged(ev.coordinator);
        if (ev.type === 'stepped-down') this.executor.abort(this.applier.applyOne);
        logCoreEvent(this.logger, eventContext, ev);
      },
    });
    this.applier.connect(this.driver.feed, this.executor);
    this.sessionWrites = new SessionWrites(this.self.id, (requestId, command, ack) => this.driver.feed({ type: 'ClientWrite', requestId, command, ...(ack === undefined ? {} : { ack }) }));
    this.clients = new ClientServer({
      engine: this.engine,
      logger: this.logger,
      submitWrite: (requestId, command, ack) => this.driver.feed({ type: 'ClientWrite', requestId, command, ...(ack === undefined ? {} : { ack }) }),
      status: () => this.status(),
      isHealthy: () => this.applier.isHealthy(),
      maxSqlBytes: Math.floor(cfg.maxFrameBytes / 2),
      dialect: storage.engine,
      createSession: () => this.newSession('json', null),
      reads: { barrier: this.readBarrier, defaultLevel: this.defaultReadLevel() },
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
            return unknownDatabase(info.database, this.mysqlDatabase());
          }
          return this.newSession(info.user, info.connectionId);
        },
      });
      await this.mysqlServer.listen();
      this.logger.info({ event: 'mysql-listening', mysqlPort: this.self.mysqlPort }, `MySQL protocol on ${this.self.host}:${this.self.mysqlPort} (database '${this.mysqlDatabase()}')`);
    }
    this.lastTickAt = Date.now();
    this.tickTimer = setInterval(() => this.onTimer(), cfg.tickMs);
    this.logger.info(
      { event: 'node-started', host: this.self.host, port: this.self.port, term: loaded.hardState.term, lastIndex: this.core.status().lastIndex, appliedIndex: applied.appliedIndex },
      `node ${this.self.id} listening on ${this.self.host}:${this.self.port} (cluster '${cfg.cluster}', ${cfg.nodes.length} nodes, log ${loaded.base.index}+${loaded.entries.length} entries, database applied up to ${applied.appliedIndex})`,
    );
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.applier?.stop();
    await this.mysqlServer?.close().catch(() => undefined);
    this.txnRelay?.close();
    this.appliedWaiters?.close();
    await this.listener?.close().catch(() => undefined);
    await this.transport?.close().catch(() => undefined);
    this.clients?.close();
    await this.dbQueue.drain().catch(() => undefined);
    await this.engine?.close().catch(() => undefined);
    this.store?.close();
    this.logger.info({ event: 'node-stopped' }, `node ${this.self.id} stopped`);
  }

  status(): Record<string, unknown> {
    const s = this.core.status();
    return {
      nodeId: s.nodeId,
      role: s.role,
      coordinator: s.coordinator,
      term: s.term,
      commitIndex: s.commitIndex,
      appliedIndex: this.applier.appliedIndex(),
      lastIndex: s.lastIndex,
      healthy: this.applier.isHealthy(),
      nodes: s.nodes.map((n) => ({
        id: n.id,
        online: n.online,
        lastHeartbeatMsAgo: n.lastHeardTicksAgo === null ? null : n.lastHeardTicksAgo * this.config.tickMs,
        matchIndex: n.matchIndex,
      })),
    };
  }

  /** The file log as the driver's LogWriter. Compaction deletes segment files: it runs on the database queue, off the step path. */
  private logWriter(): LogWriter {
    const store = this.store;
    return {
      saveHardState: (hs) => store.saveHardState(hs),
      truncateFrom: (index) => store.truncateFrom(index),
      append: (entries) => store.append(entries),
      sync: () => store.sync(),
      compact: (meta) => this.dbQueue.push(async () => store.compact(meta)),
      resetTo: (meta) => {
        store.resetTo(meta);
        store.sync();
      },
    };
  }

  private positions(): Record<string, number> {
    const s = this.core.status();
    return { lastIndex: s.lastIndex, commitIndex: s.commitIndex, appliedIndex: this.applier.appliedIndex() };
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
      isHealthy: () => this.applier.isHealthy(),
      read: (statements) => this.engine.read(statements),
      describe: (sql) => this.engine.describeStatement(sql),
      submitWrite: (command, requestId, ack): Promise<Outcome> => this.sessionWrites.write(command, requestId, ack),
      coordinator: () => this.core.status().coordinator,
      txnExec: (at, key, first, sql, params) => this.txnRelay.exec(at, key, first, sql, params),
      txnRollback: (at, key) => this.txnRelay.rollback(at, key),
      waitApplied: (index) => this.appliedWaiters.wait(index),
      reads: this.readBarrier,
      defaultReadLevel: this.defaultReadLevel(),
      defaultAck: this.config.writeAck,
    };
  }

  private defaultReadLevel(): ReadLevel {
    return { consistency: this.config.readConsistency, maxStalenessMs: this.config.maxReadStalenessMs };
  }

  // ------------------------------------------------------------------ inputs

  private onTimer(): void {
    if (this.stopped) return;
    // Turn elapsed wall time into ticks; a long event-loop stall yields several ticks at once.
    const now = Date.now();
    const tickMs = this.config.tickMs;
    const ticks = Math.min(Math.floor((now - this.lastTickAt) / tickMs), MAX_CATCH_UP_TICKS);
    if (ticks <= 0) return;
    this.lastTickAt += ticks * tickMs;
    if (now - this.lastTickAt > tickMs * MAX_CATCH_UP_TICKS) this.lastTickAt = now;
    for (let i = 0; i < ticks; i++) this.driver.feed({ type: 'Tick' });
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
        this.logger.warn(
          { event: 'peer-message-invalid', from, reason: v.reason, suppressed },
          `dropped a message from node ${from}: ${v.reason}${suppressed > 0 ? ` (${suppressed} more since the last such line)` : ''}`,
        );
      }
      return;
    }
    this.driver.feed({ type: 'Receive', from, msg: v.msg });
  }

  // ------------------------------------------------------------------ checks

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
}

/** `replisql node --config F --id N`: runs until SIGINT/SIGTERM. */
export async function runNode(opts: RunNodeOptions): Promise<void> {
  const config = loadConfig(opts.configPath);
  const node = findNode(config, opts.nodeId);
  const testPeerDelayMs = parseTestPeerDelay(process.env); // read once, at start; a bad value stops here
  const log = createNodeLogger({ logDir: config.logDir, nodeId: node.id, echo: process.stderr.isTTY === true || process.env['REPLISQL_LOG_ECHO'] === '1' });
  for (const w of config.warnings) log.logger.warn({}, `config: ${w}`);
  const runtime = new NodeRuntime({ config, nodeId: opts.nodeId, logger: log.logger, testPeerDelayMs });
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
