// Data types of the pure protocol core. Everything here is plain, serialisable data.
// See docs/protocol.md for the wire form of each message and docs/design-protocol.md for why.
import type { ErrorInfo } from '../errors.js';

export type NodeId = number;

/**
 * When a write's client is answered: `one` once the coordinator has it on disk; `quorum` once a
 * majority has it on disk (and the answering node applied it); `all` once every configured node has
 * it on disk; `all-applied` once every online node has applied it (MySQL Group Replication's AFTER,
 * Galera's wsrep_sync_wait): a read on any node afterwards sees it, at any read level.
 */
export const AckLevel = { ONE: 'one', QUORUM: 'quorum', ALL: 'all', ALL_APPLIED: 'all-applied' } as const;
export type AckLevel = (typeof AckLevel)[keyof typeof AckLevel];
export const ACK_LEVELS: readonly AckLevel[] = ['one', 'quorum', 'all', 'all-applied'];

/** What a read waits for before it runs on a node's database (src/sessions/read-levels.ts, docs/consistency.md). */
export const READ_CONSISTENCY_LEVELS = ['local', 'session', 'bounded', 'linearizable'] as const;
export type ReadConsistency = (typeof READ_CONSISTENCY_LEVELS)[number];
/** Upper bound for a `bounded` read's staleness (one day): beyond it `local` says the same more clearly. */
export const MAX_STALENESS_LIMIT_MS = 86_400_000;

export const Role = { FOLLOWER: 'follower', CANDIDATE: 'candidate', LEADER: 'leader' } as const;
export type Role = (typeof Role)[keyof typeof Role];

export const EntryKind = { COMMAND: 'command', NOOP: 'noop' } as const;
export type EntryKind = (typeof EntryKind)[keyof typeof EntryKind];

/** One replicated log entry. `md5` is the MD5 of `payload`; `chainHash` covers the previous entry's chainHash. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly kind: EntryKind;
  /** Client request id, so that a retried request is applied once; null for no-ops. */
  readonly requestId: string | null;
  /** The replicated command, opaque to the core (the SQL shell stores JSON here). */
  readonly payload: string;
  readonly md5: string;
  readonly chainHash: string;
}

/** State that must be on disk before any message that depends on it is sent. */
export interface HardState {
  readonly term: number;
  readonly votedFor: NodeId | null;
}

/** Identifies the last entry folded into a snapshot (or the start of the log). */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly chainHash: string;
}

export const GENESIS_CHAIN_HASH = '0'.repeat(32);
export const EMPTY_SNAPSHOT: SnapshotMeta = { index: 0, term: 0, chainHash: GENESIS_CHAIN_HASH };

// ---------------------------------------------------------------- messages between nodes

export interface HeartbeatMsg {
  readonly type: 'HEARTBEAT';
  readonly term: number;
  readonly leaderId: NodeId | null;
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  readonly commitIndex: number;
}
/** Bully's ELECTION: a (pre-)vote request. `takeover` is set when the coordinator handed over to a higher id. */
export interface ElectionMsg {
  readonly type: 'ELECTION';
  readonly term: number;
  readonly prevote: boolean;
  readonly takeover: boolean;
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
}
/** Bully's ANSWER: the reply to ELECTION. */
export interface VoteMsg {
  readonly type: 'VOTE';
  readonly term: number;
  readonly prevote: boolean;
  readonly granted: boolean;
  readonly reason: string;
}
/** Bully's COORDINATOR announcement, sent by the winner of an election. */
export interface CoordinatorMsg {
  readonly type: 'COORDINATOR';
  readonly term: number;
}
export interface ReplicateMsg {
  readonly type: 'REPLICATE';
  readonly term: number;
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commitIndex: number;
  /** The coordinator waits for writes acknowledged at `all-applied`: report applies with APPLIED. */
  readonly wantApplied?: boolean;
}
/** A follower's database applied up to `appliedIndex` (sent while the coordinator wants to know). */
export interface AppliedMsg {
  readonly type: 'APPLIED';
  readonly term: number;
  readonly appliedIndex: number;
}
export interface ReplicateAckMsg {
  readonly type: 'REPLICATE_ACK';
  readonly term: number;
  readonly success: boolean;
  /** On success: highest index known to match the coordinator. On failure: the follower's hint for nextIndex - 1. */
  readonly matchIndex: number;
  /** On failure: the prevIndex of the rejected REPLICATE, so stale rejections can be told apart. */
  readonly probeIndex: number;
  readonly reason: string;
}
/** The coordinator asks a caught-up node with a higher id to take over (Bully priority). */
export interface TakeoverMsg {
  readonly type: 'TAKEOVER';
  readonly term: number;
}
export interface SnapshotMsg {
  readonly type: 'SNAPSHOT';
  readonly term: number;
  readonly meta: SnapshotMeta;
  readonly data: string;
}
export interface ForwardMsg {
  readonly type: 'FORWARD';
  readonly term: number;
  readonly requestId: string;
  readonly command: string;
  readonly ack: AckLevel;
}
export interface ForwardReplyMsg {
  readonly type: 'FORWARD_REPLY';
  readonly term: number;
  readonly requestId: string;
  readonly outcome: Outcome;
}

/** A node asks the coordinator for a read index (a linearizable read of one of its clients). */
export interface ReadIndexMsg {
  readonly type: 'READ_INDEX';
  readonly term: number;
  readonly requestId: string;
}
/** The coordinator's answer: the index to apply before reading, or why it cannot give one. */
export interface ReadIndexReplyMsg {
  readonly type: 'READ_INDEX_REPLY';
  readonly term: number;
  readonly requestId: string;
  readonly index: number;
  readonly error: ErrorInfo | null;
}
/** The coordinator asks every node to confirm that it still leads at `term` (reads wait on `seq`). */
export interface ReadProbeMsg {
  readonly type: 'READ_PROBE';
  readonly term: number;
  readonly seq: number;
}
export interface ReadProbeAckMsg {
  readonly type: 'READ_PROBE_ACK';
  readonly term: number;
  readonly seq: number;
}

export type Message =
  | HeartbeatMsg
  | ElectionMsg
  | VoteMsg
  | CoordinatorMsg
  | ReplicateMsg
  | ReplicateAckMsg
  | TakeoverMsg
  | SnapshotMsg
  | ForwardMsg
  | ForwardReplyMsg
  | ReadIndexMsg
  | ReadIndexReplyMsg
  | ReadProbeMsg
  | ReadProbeAckMsg
  | AppliedMsg;
export type MessageType = Message['type'];
export const MESSAGE_TYPES: readonly MessageType[] = [
  'HEARTBEAT',
  'ELECTION',
  'VOTE',
  'COORDINATOR',
  'REPLICATE',
  'REPLICATE_ACK',
  'TAKEOVER',
  'SNAPSHOT',
  'FORWARD',
  'FORWARD_REPLY',
  'READ_INDEX',
  'READ_INDEX_REPLY',
  'READ_PROBE',
  'READ_PROBE_ACK',
  'APPLIED',
];

/** What a client write ended as. `result` is whatever the shell reported when it applied (or prepared) it. */
export type Outcome =
  | { readonly ok: true; readonly index: number; readonly result: unknown; readonly duplicate: boolean }
  | { readonly ok: false; readonly error: ErrorInfo };

// ---------------------------------------------------------------- inputs to step()

export type Input =
  | { readonly type: 'Tick' }
  | { readonly type: 'Receive'; readonly from: NodeId; readonly msg: Message }
  /** A client asked this node to write. */
  | { readonly type: 'ClientWrite'; readonly requestId: string; readonly command: string; readonly ack?: AckLevel }
  /** The shell prepared a write the core asked it to prepare (coordinator only). */
  | {
      readonly type: 'Propose';
      readonly requestId: string;
      readonly origin: NodeId;
      readonly payload: string;
      /** Result known at prepare time (used to answer ack=one before apply); null if only known at apply. */
      readonly result: unknown;
    }
  /** Several prepared writes at once: appended in this order and replicated together. */
  | { readonly type: 'ProposeBatch'; readonly items: readonly ProposeItem[] }
  /** The shell could not prepare the write (unsafe statement, SQL error): answer the client, log nothing. */
  | { readonly type: 'PrepareFailed'; readonly requestId: string; readonly origin: NodeId; readonly error: ErrorInfo }
  /** Log entries up to `index` (whose term is `term`) are durably on disk. */
  | { readonly type: 'Persisted'; readonly index: number; readonly term: number }
  /** The shell applied the committed entry `index` to the database. */
  | { readonly type: 'Applied'; readonly index: number; readonly result: unknown }
  /** The shell produced a snapshot of its state machine at `index` for `to`. */
  | { readonly type: 'SnapshotReady'; readonly to: NodeId; readonly index: number; readonly data: string }
  /**
   * The node's database became unavailable (false) or available again (true). An unhealthy node
   * hands the coordinator role to a caught-up peer and does not run for it until it is healthy.
   */
  | { readonly type: 'SetHealthy'; readonly healthy: boolean }
  /** The shell installed the snapshot the core asked it to install. */
  | { readonly type: 'SnapshotInstalled'; readonly meta: SnapshotMeta }
  /** A client of this node wants a linearizable read: the core answers with an index to apply first (`readIndexes`). */
  | { readonly type: 'ReadIndex'; readonly requestId: string };

export interface ProposeItem {
  readonly requestId: string;
  readonly origin: NodeId;
  readonly payload: string;
  readonly result: unknown;
}

// ---------------------------------------------------------------- output of step()

export interface OutboundMessage {
  readonly to: NodeId;
  readonly msg: Message;
}
export interface PrepareRequest {
  readonly requestId: string;
  readonly origin: NodeId;
  readonly command: string;
}
export interface ClientReply {
  readonly requestId: string;
  readonly outcome: Outcome;
}
/** The answer to a ReadIndex input: read once the database applied `index`; or why not. */
export type ReadIndexAnswer = { readonly requestId: string; readonly ok: true; readonly index: number } | { readonly requestId: string; readonly ok: false; readonly error: ErrorInfo };

/** Things worth a log line; the core never logs itself. */
export type CoreEvent =
  | { readonly type: 'election-started'; readonly term: number; readonly prevote: boolean; readonly takeover: boolean }
  | { readonly type: 'became-coordinator'; readonly term: number }
  | { readonly type: 'coordinator-changed'; readonly term: number; readonly coordinator: NodeId | null }
  | { readonly type: 'stepped-down'; readonly term: number; readonly reason: string }
  | { readonly type: 'peer-online'; readonly peer: NodeId }
  | { readonly type: 'peer-offline'; readonly peer: NodeId; readonly silentTicks: number }
  | { readonly type: 'checksum-mismatch'; readonly from: NodeId; readonly index: number; readonly detail: string }
  | { readonly type: 'replication-rejected'; readonly peer: NodeId; readonly reason: string }
  | { readonly type: 'takeover-requested'; readonly term: number; readonly target: NodeId }
  /** A TAKEOVER arrived before this node's database applied everything committed: it waits. */
  | { readonly type: 'takeover-held'; readonly from: NodeId; readonly appliedIndex: number; readonly commitIndex: number }
  /** A held TAKEOVER was given up (the database did not catch up in time, or the coordinator changed). */
  | { readonly type: 'takeover-dropped'; readonly from: NodeId; readonly appliedIndex: number; readonly reason: string }
  | { readonly type: 'catch-up'; readonly peer: NodeId; readonly matchIndex: number; readonly lastIndex: number }
  | { readonly type: 'snapshot-sent'; readonly peer: NodeId; readonly index: number }
  | { readonly type: 'snapshot-installed'; readonly index: number }
  /**
   * A committed write was answered before this node applied it (its database did not catch up within
   * the write timeout): sessions on this node may not see it yet.
   */
  | { readonly type: 'acknowledged-before-local-apply'; readonly requestId: string; readonly index: number; readonly appliedIndex: number }
  | { readonly type: 'message-rejected'; readonly from: NodeId; readonly reason: string };

/**
 * What the driver (src/node/driver.ts) must do after a step, in this order:
 * 1. write `hardState`, then `truncateFrom`, then `entriesToAppend`;
 * 2. send `messages`: they do not depend on this Ready's writes being durable (a coordinator's
 *    REPLICATE: it counts itself towards a quorum only once `Persisted` says so), so they may
 *    leave before the fsync, overlapping the disk write with the followers' work (etcd's `msgs`);
 * 3. fsync, feed `Persisted`, then send `messagesAfterPersist` (acks, votes, anything that
 *    promises what was just written: etcd's `msgsAfterAppend`);
 * 4. install `snapshotToInstall`, apply `committed` in order (feed `Applied` back), then `compactUpTo`;
 * 5. report `events`; answer `replies` and `readIndexes`; start `prepare` work; build requested snapshots.
 * Which message goes in which list is the core's decision, never the driver's.
 */
export interface Ready {
  readonly hardState: HardState | null;
  readonly truncateFrom: number | null;
  readonly entriesToAppend: readonly Entry[];
  readonly snapshotToInstall: { readonly meta: SnapshotMeta; readonly data: string } | null;
  /** May be sent before this Ready's writes are durable. */
  readonly messages: readonly OutboundMessage[];
  /** Must wait until this Ready's (and every earlier Ready's) writes are durable. */
  readonly messagesAfterPersist: readonly OutboundMessage[];
  readonly committed: readonly Entry[];
  readonly compactUpTo: SnapshotMeta | null;
  readonly prepare: readonly PrepareRequest[];
  readonly replies: readonly ClientReply[];
  readonly readIndexes: readonly ReadIndexAnswer[];
  readonly snapshotRequests: readonly NodeId[];
  readonly events: readonly CoreEvent[];
}

// ---------------------------------------------------------------- configuration

export interface CoreConfig {
  readonly selfId: NodeId;
  /** Every configured node id, including selfId. Majorities are computed over this list. */
  readonly nodeIds: readonly NodeId[];
  readonly heartbeatIntervalTicks: number;
  readonly failureTimeoutTicks: number;
  /** Extra delay per higher-priority live node before a node starts an election (Bully priority). */
  readonly electionStaggerTicks: number;
  /** Random extra delay (0..n) added to election starts; from the seeded PRNG. */
  readonly electionJitterTicks: number;
  /** How long a candidate waits for votes before retrying. */
  readonly electionTimeoutTicks: number;
  /** How long a client write may wait for its outcome before it is answered UNKNOWN_OUTCOME. */
  readonly writeTimeoutTicks: number;
  /** How long a write waits for a coordinator to appear before NO_COORDINATOR. */
  readonly coordinatorWaitTicks: number;
  readonly defaultAck: AckLevel;
  readonly maxEntriesPerMessage: number;
  readonly maxBytesPerMessage: number;
  readonly maxInflightMessages: number;
  readonly maxPendingWrites: number;
  readonly maxCommittedPerReady: number;
  /** Keep at least this many applied entries before compacting the log. */
  readonly logRetentionEntries: number;
  /** Compact when this many entries beyond the retention have accumulated. */
  readonly compactionBatchEntries: number;
  /** How many request ids (with results) are remembered for retry de-duplication. */
  readonly requestCacheSize: number;
  readonly seed: number;
  /** Deliberate safety bugs, for proving that the simulator's checkers catch them. Never set in production. */
  readonly unsafe?: UnsafeFlags;
}

export interface UnsafeFlags {
  /** Grant votes without checking that the candidate's log is at least as up to date. */
  readonly skipUpToDateCheck?: boolean;
  /** Count majorities over the nodes currently online instead of the configured cluster. */
  readonly majorityOfLiveNodes?: boolean;
  /** Skip the MD5 check on received entries. */
  readonly skipChecksum?: boolean;
  /** Answer read indexes at once, without confirming leadership with a majority (READ_PROBE). */
  readonly readIndexWithoutProbe?: boolean;
}

/** Defaults correspond to 100 ms ticks: heartbeat 2 s, failure timeout 10 s. */
export const DEFAULT_TICK_MS = 100;
export function defaultCoreConfig(selfId: NodeId, nodeIds: readonly NodeId[], overrides: Partial<CoreConfig> = {}): CoreConfig {
  return {
    selfId,
    nodeIds,
    heartbeatIntervalTicks: 20,
    failureTimeoutTicks: 100,
    electionStaggerTicks: 10,
    electionJitterTicks: 5,
    electionTimeoutTicks: 30,
    writeTimeoutTicks: 150,
    coordinatorWaitTicks: 120,
    defaultAck: 'quorum',
    maxEntriesPerMessage: 256,
    maxBytesPerMessage: 1 << 20,
    maxInflightMessages: 8,
    maxPendingWrites: 10_000,
    maxCommittedPerReady: 512,
    logRetentionEntries: 100_000,
    compactionBatchEntries: 10_000,
    requestCacheSize: 10_000,
    seed: selfId,
    ...overrides,
  };
}
