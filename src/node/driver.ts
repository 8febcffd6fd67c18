// The one piece of code that carries out the core's Readys. `replisql node` composes it with the
// real ports (file log, TCP, SQL engine, write executor); the simulator composes the same class
// with simulated ones, so every seed of the sweep runs the production ordering rules.
//
// Inputs are queued and stepped in bursts: every input waiting is stepped, then the resulting
// Readys are carried out together, in the order the core demands (see Ready in core/types.ts):
// all writes, the messages that may overtake the fsync, ONE fsync for the burst (group commit),
// `Persisted`, the messages that had to wait, then per Ready: snapshot install, applies,
// compaction, events, replies, prepare work, snapshot builds. Inputs that arrive while a burst
// is being carried out (ports reporting back synchronously) are queued for the next burst.
import type { CoreNode } from '../core/node.js';
import type { Entry, Input, Ready, SnapshotMeta } from '../core/types.js';
import type { DriverPorts } from './ports.js';

/** Deliberately broken ordering rules, for proving that the simulator's checkers catch them. Never set in production. */
export interface DriverUnsafeFlags {
  /** Send `messagesAfterPersist` before the fsync: a follower acknowledges entries that are not on its disk yet. */
  readonly sendBeforeSync?: boolean;
}

export interface DriverOptions {
  readonly unsafe?: DriverUnsafeFlags;
  /** Sees each input and the Ready it produced (golden traces, simulator traces). */
  readonly observe?: (input: Input, ready: Ready) => void;
}

export class NodeDriver {
  private readonly inputs: Input[] = [];
  private stepping = false;

  constructor(
    readonly core: CoreNode,
    private readonly ports: DriverPorts,
    private readonly opts: DriverOptions = {},
  ) {}

  /** Steps the core with `input` (and whatever it leads to) and carries out the Readys. Re-entrant calls are queued. */
  readonly feed = (input: Input): void => {
    this.inputs.push(input);
    if (this.stepping) return;
    this.stepping = true;
    try {
      while (this.inputs.length > 0) {
        const readys: Ready[] = [];
        while (this.inputs.length > 0) {
          const next = this.inputs.shift() as Input;
          const ready = this.core.step(next);
          this.opts.observe?.(next, ready);
          readys.push(ready);
        }
        this.carryOut(readys);
      }
    } finally {
      this.stepping = false;
    }
  };

  private carryOut(readys: readonly Ready[]): void {
    const { log, transport } = this.ports;
    // 1. write
    let wrote = false;
    let lastAppended: Entry | null = null;
    for (const ready of readys) {
      if (ready.hardState !== null) log.saveHardState(ready.hardState);
      if (ready.truncateFrom !== null) log.truncateFrom(ready.truncateFrom);
      if (ready.entriesToAppend.length > 0) {
        log.append(ready.entriesToAppend);
        lastAppended = ready.entriesToAppend[ready.entriesToAppend.length - 1] as Entry;
      }
      wrote ||= ready.hardState !== null || ready.truncateFrom !== null || ready.entriesToAppend.length > 0;
    }
    // 2. what may overtake the fsync
    for (const ready of readys) for (const m of ready.messages) transport.send(m.to, m.msg);
    if (this.opts.unsafe?.sendBeforeSync === true) for (const ready of readys) for (const m of ready.messagesAfterPersist) transport.send(m.to, m.msg);
    // 3. fsync, then what depended on it
    if (wrote) log.sync();
    if (lastAppended !== null) this.inputs.push({ type: 'Persisted', index: lastAppended.index, term: lastAppended.term });
    for (const ready of readys) {
      if (this.opts.unsafe?.sendBeforeSync !== true) for (const m of ready.messagesAfterPersist) transport.send(m.to, m.msg);
      // 4. the database: snapshot, applies, compaction, strictly in this order
      if (ready.snapshotToInstall !== null) this.installSnapshot(ready.snapshotToInstall.meta, ready.snapshotToInstall.data);
      if (ready.committed.length > 0) this.ports.stateMachine.apply(ready.committed);
      if (ready.compactUpTo !== null) log.compact(ready.compactUpTo);
      // 5. events (before the replies they may explain), clients, the coordinator's write path,
      //    snapshots for peers
      for (const ev of ready.events) this.ports.events(ev);
      for (const r of ready.replies) this.ports.writes.reply(r);
      for (const r of ready.readIndexes) this.ports.writes.readIndex(r);
      if (ready.prepare.length > 0) this.ports.writes.prepare(ready.prepare);
      for (const to of ready.snapshotRequests) this.ports.stateMachine.buildSnapshot(to);
    }
  }

  /** Database first, then the log follows it durably, then the core learns of it. */
  private installSnapshot(meta: SnapshotMeta, data: string): void {
    this.ports.stateMachine.installSnapshot(meta, data, () => {
      this.ports.log.resetTo(meta);
      this.feed({ type: 'SnapshotInstalled', meta });
    });
  }
}
