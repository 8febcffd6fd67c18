// The ports the node driver carries a Ready out through, declared here by their user. Each has a
// real implementation (composed in node-runtime.ts) and a simulated one (src/sim/sim-ports.ts);
// the driver cannot tell them apart, so the simulator exercises the production ordering rules.
import type { ClientReply, CoreEvent, Entry, HardState, Input, Message, NodeId, PrepareRequest, ReadIndexAnswer, SnapshotMeta } from '../core/types.js';

/** The node's log on disk. Writes are buffered until `sync`, which makes all of them durable. */
export interface LogWriter {
  saveHardState(hardState: HardState): void;
  truncateFrom(index: number): void;
  append(entries: readonly Entry[]): void;
  /** Every write so far is durable when it returns. */
  sync(): void;
  /** Drops entries up to `meta.index` (they are applied and folded into the database). */
  compact(meta: SnapshotMeta): void;
  /**
   * The log now starts after an installed snapshot: entries that continue it (same term and chain
   * hash at `meta.index`) are kept, any other entry is dropped. Durable when it returns.
   */
  resetTo(meta: SnapshotMeta): void;
}

/** Sends one message to a peer; delivery is best effort (the core retries what matters). */
export interface MessageSender {
  send(to: NodeId, msg: Message): void;
}

/**
 * The database side. Work is asynchronous and strictly in call order; results come back as core
 * inputs through the `feed` function the implementation was given (`Applied`, `SnapshotReady`,
 * `SetHealthy`).
 */
export interface StateMachinePort {
  /** Applies committed entries, in order, after everything handed over before. */
  apply(entries: readonly Entry[]): void;
  /** Replaces the database with a snapshot's; calls `installed` once it is in place. */
  installSnapshot(meta: SnapshotMeta, data: string, installed: () => void): void;
  /** Builds a snapshot for peer `to` and feeds `SnapshotReady`. */
  buildSnapshot(to: NodeId): void;
}

/** The coordinator's write path and the clients waiting on this node. */
export interface WritePort {
  /** Executes writes the core asks to prepare, then feeds `Propose`/`ProposeBatch`/`PrepareFailed`. */
  prepare(requests: readonly PrepareRequest[]): void;
  /** Answers a client of this node. */
  reply(reply: ClientReply): void;
  /** Answers a linearizable read of a client of this node: the index to apply before reading. */
  readIndex(answer: ReadIndexAnswer): void;
}

/** Sees every core event, after the replies of the same Ready went out. */
export type EventSink = (event: CoreEvent) => void;

/** How a port reports back: an input for the core, stepped by the driver. */
export type Feed = (input: Input) => void;

export interface DriverPorts {
  readonly log: LogWriter;
  readonly transport: MessageSender;
  readonly stateMachine: StateMachinePort;
  readonly writes: WritePort;
  readonly events: EventSink;
}
