// A small interpreter for golden trace scripts (test/core/testdata/*.txt), in the style of etcd's
// datadriven raft tests. It drives CoreNode directly (no driver, no simulator) and prints every
// non-empty Ready, so that a trace shows exactly what the core decided, step by step.
//
// Script format: a command line, a line `----`, then the command's expected output up to the next
// blank line. Lines starting with # are comments. Commands:
//
//   nodes N [key=value ...]        a cluster of N nodes; key=value overrides the core config
//   tick [n] [node=1,2] [quiet] [deliver=false]
//                                  n rounds of: Tick every (listed) live node, then deliver every
//                                  queued message until the network is empty
//   deliver [from=a] [to=b] [rounds=r]
//                                  deliver queued messages FIFO (to quiescence unless rounds=)
//   discard [from=a] [to=b]        throw away matching queued messages
//   drop from=a to=b               cut the link a->b (until heal)
//   partition 1,2 | 3              cut every link between the groups (until heal)
//   heal                           restore every link
//   write node=1 id=w1 cmd="set a 1" [ack=quorum]
//                                  a client write (ClientWrite input)
//   config node=2 [autopersist=false] [autoapply=false]
//                                  switch the automatic Persisted / Applied feedback off (or on)
//   persist node=2                 fsync what node 2 wrote; feed Persisted; send what waited for it
//   apply node=2 [upto=i]          apply committed entries node 2 holds back; feed Applied
//   crash node=3                   node 3 stops; unsynced writes and queued work are lost
//   restart node=3                 node 3 starts from its disk and its database's applied index
//   status                         one line per node
//   quiet on|off                   summarize heartbeat-only Readys in one line
//
// By default the interpreter plays the driver: entries are persisted at once (Persisted is fed
// back, then messagesAfterPersist are sent), committed entries are applied (Applied per entry),
// prepare requests are answered with Propose, snapshot requests with SnapshotReady, snapshots to
// install with SnapshotInstalled. Those follow-up inputs print their own Readys.
import { CoreNode, type PersistedState } from '../../src/core/node.js';
import { simCoreConfig } from '../../src/sim/simulator.js';
import {
  EMPTY_SNAPSHOT,
  type CoreConfig,
  type CoreEvent,
  type Entry,
  type HardState,
  type Input,
  type Message,
  type NodeId,
  type OutboundMessage,
  type Outcome,
  type Ready,
  type SnapshotMeta,
} from '../../src/core/types.js';

// ---------------------------------------------------------------- script files

export interface Command {
  readonly line: number;
  readonly text: string;
  readonly expected: readonly string[];
}

interface Chunk {
  readonly kind: 'text' | 'command';
  readonly lines: readonly string[];
  readonly command?: Command;
}

export function parseScript(src: string): Chunk[] {
  const lines = src.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const chunks: Chunk[] = [];
  let i = 0;
  while (i < lines.length) {
    const l = lines[i] as string;
    if (l.trim() === '' || l.startsWith('#')) {
      chunks.push({ kind: 'text', lines: [l] });
      i++;
      continue;
    }
    const start = i;
    if (lines[i + 1] !== '----') throw new Error(`line ${i + 1}: expected '----' after command '${l}'`);
    i += 2;
    const expected: string[] = [];
    while (i < lines.length && (lines[i] as string).trim() !== '') expected.push(lines[i++] as string);
    chunks.push({ kind: 'command', lines: [], command: { line: start + 1, text: l, expected } });
  }
  return chunks;
}

export function renderScript(chunks: readonly Chunk[], outputs: ReadonlyMap<Command, readonly string[]>): string {
  const out: string[] = [];
  for (const c of chunks) {
    if (c.kind === 'text') out.push(...c.lines);
    else {
      const cmd = c.command as Command;
      out.push(cmd.text, '----', ...(outputs.get(cmd) ?? cmd.expected));
    }
  }
  return out.join('\n') + '\n';
}

interface Args {
  readonly positional: string[];
  readonly kv: Map<string, string>;
}

function parseArgs(text: string): { name: string; args: Args } {
  const tokens: string[] = [];
  const re = /(\S+?=)"([^"]*)"|(\S+)/g;
  for (const m of text.matchAll(re)) tokens.push(m[1] !== undefined ? `${m[1]}${m[2]}` : (m[3] as string));
  const [name, ...rest] = tokens;
  const positional: string[] = [];
  const kv = new Map<string, string>();
  for (const t of rest) {
    const eq = t.indexOf('=');
    if (eq > 0) kv.set(t.slice(0, eq), t.slice(eq + 1));
    else positional.push(t);
  }
  return { name: name as string, args: { positional, kv } };
}

function ids(s: string): NodeId[] {
  return s.split(',').map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n)) throw new Error(`not a node id: ${x}`);
    return n;
  });
}

// ---------------------------------------------------------------- the simulated nodes

/** The database: applies "set k v" commands; survives crashes. */
class KvMachine {
  appliedIndex = 0;
  data = new Map<string, string>();

  apply(e: Entry): string | null {
    this.appliedIndex = e.index;
    if (e.kind !== 'command') return null;
    const m = /^set (\S+) (.*)$/.exec(e.payload);
    if (m) this.data.set(m[1] as string, m[2] as string);
    return `applied ${e.index}`;
  }
  snapshot(): string {
    return JSON.stringify([...this.data].sort());
  }
  install(meta: SnapshotMeta, data: string): void {
    this.data = new Map(JSON.parse(data) as [string, string][]);
    this.appliedIndex = meta.index;
  }
  describe(): string {
    return [...this.data]
      .sort()
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
  }
}

interface Disk {
  hardState: HardState;
  base: SnapshotMeta;
  entries: Entry[];
}

interface PendingWrite {
  readonly hardState: HardState | null;
  readonly truncateFrom: number | null;
  readonly entries: readonly Entry[];
  readonly afterPersist: readonly OutboundMessage[];
}

class SimNode {
  core: CoreNode;
  up = true;
  incarnation = 0;
  autoPersist = true;
  autoApply = true;
  readonly disk: Disk = { hardState: { term: 0, votedFor: null }, base: EMPTY_SNAPSHOT, entries: [] };
  readonly db = new KvMachine();
  /** Written but not yet synced (manual persistence). */
  pending: PendingWrite[] = [];
  /** Committed, not yet applied (manual apply). */
  toApply: Entry[] = [];

  constructor(
    readonly id: NodeId,
    private readonly config: (id: NodeId, incarnation: number) => CoreConfig,
  ) {
    this.core = this.boot();
  }

  boot(): CoreNode {
    const persisted: PersistedState = {
      hardState: this.disk.hardState,
      base: this.disk.base,
      entries: [...this.disk.entries],
      appliedIndex: this.db.appliedIndex,
    };
    return new CoreNode(this.config(this.id, this.incarnation), persisted);
  }

  write(w: { hardState: HardState | null; truncateFrom: number | null; entries: readonly Entry[] }): void {
    if (w.hardState !== null) this.disk.hardState = w.hardState;
    if (w.truncateFrom !== null) this.disk.entries = this.disk.entries.filter((e) => e.index < (w.truncateFrom as number));
    this.disk.entries.push(...w.entries);
  }

  compact(meta: SnapshotMeta): void {
    this.disk.base = meta;
    this.disk.entries = this.disk.entries.filter((e) => e.index > meta.index);
  }

  resetTo(meta: SnapshotMeta): void {
    const at = this.disk.entries.find((e) => e.index === meta.index);
    const keeps = at !== undefined && at.term === meta.term && at.chainHash === meta.chainHash;
    this.disk.base = meta;
    this.disk.entries = keeps ? this.disk.entries.filter((e) => e.index > meta.index) : [];
  }
}

interface InFlight {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly msg: Message;
}

// ---------------------------------------------------------------- formatting

function range(indexes: readonly number[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < indexes.length) {
    let j = i;
    while (j + 1 < indexes.length && (indexes[j + 1] as number) === (indexes[j] as number) + 1) j++;
    parts.push(j > i ? `${indexes[i]}-${indexes[j]}` : `${indexes[i]}`);
    i = j + 1;
  }
  return parts.join(',');
}

function fmtEntry(e: Entry): string {
  return e.kind === 'noop' ? `${e.index}@${e.term}:noop` : `${e.index}@${e.term}:${e.requestId}`;
}

function fmtEntries(es: readonly Entry[]): string {
  if (es.length <= 4) return `[${es.map(fmtEntry).join(' ')}]`;
  return `[${fmtEntry(es[0] as Entry)} .. ${fmtEntry(es[es.length - 1] as Entry)} (${es.length})]`;
}

function fmtOutcome(o: Outcome): string {
  if (o.ok) return `ok index=${o.index}${o.duplicate ? ' duplicate' : ''} result=${JSON.stringify(o.result)}`;
  const hint = o.error.code !== 'SQL_ERROR' && o.error.coordinatorHint != null ? ` hint=${o.error.coordinatorHint}` : '';
  return `${o.error.code}${hint} "${o.error.message}"`;
}

export function fmtMsg(m: Message): string {
  switch (m.type) {
    case 'HEARTBEAT':
      return `HEARTBEAT t${m.term} leader=${m.leaderId ?? '-'} last=${m.lastLogIndex}@${m.lastLogTerm} commit=${m.commitIndex}`;
    case 'ELECTION':
      return `ELECTION t${m.term}${m.prevote ? ' prevote' : ''}${m.takeover ? ' takeover' : ''} last=${m.lastLogIndex}@${m.lastLogTerm}`;
    case 'VOTE':
      return `VOTE t${m.term}${m.prevote ? ' prevote' : ''} ${m.granted ? 'granted' : `refused "${m.reason}"`}`;
    case 'COORDINATOR':
      return `COORDINATOR t${m.term}`;
    case 'REPLICATE':
      return `REPLICATE t${m.term} prev=${m.prevIndex}@${m.prevTerm} ${fmtEntries(m.entries)} commit=${m.commitIndex}${m.wantApplied === true ? ' wantApplied' : ''}`;
    case 'REPLICATE_ACK':
      return m.success
        ? `REPLICATE_ACK t${m.term} ok match=${m.matchIndex}`
        : `REPLICATE_ACK t${m.term} reject hint=${m.matchIndex} probe=${m.probeIndex} "${m.reason}"`;
    case 'TAKEOVER':
      return `TAKEOVER t${m.term}`;
    case 'SNAPSHOT':
      return `SNAPSHOT t${m.term} meta=${m.meta.index}@${m.meta.term} data=${m.data}`;
    case 'FORWARD':
      return `FORWARD t${m.term} id=${m.requestId} ack=${m.ack} cmd="${m.command}"`;
    case 'FORWARD_REPLY':
      return `FORWARD_REPLY t${m.term} id=${m.requestId} ${fmtOutcome(m.outcome)}`;
    case 'READ_INDEX':
      return `READ_INDEX t${m.term} id=${m.requestId}`;
    case 'READ_INDEX_REPLY':
      return `READ_INDEX_REPLY t${m.term} id=${m.requestId} ${m.error === null ? `index=${m.index}` : `${m.error.code} "${m.error.message}"`}`;
    case 'READ_PROBE':
      return `READ_PROBE t${m.term} seq=${m.seq}`;
    case 'READ_PROBE_ACK':
      return `READ_PROBE_ACK t${m.term} seq=${m.seq}`;
    case 'APPLIED':
      return `APPLIED t${m.term} applied=${m.appliedIndex}`;
  }
}

function fmtOut(ms: readonly OutboundMessage[]): string {
  return ms.map((m) => `->${m.to} ${fmtMsg(m.msg)}`).join('; ');
}

function fmtEvent(ev: CoreEvent): string {
  const { type, ...rest } = ev;
  const fields = Object.entries(rest).map(([k, v]) => (typeof v === 'string' ? `${k}="${v}"` : `${k}=${v}`));
  return [type, ...fields].join(' ');
}

function fmtInput(input: Input): string {
  switch (input.type) {
    case 'Tick':
      return 'Tick';
    case 'Receive':
      return `<- ${input.from} ${fmtMsg(input.msg)}`;
    case 'ClientWrite':
      return `ClientWrite id=${input.requestId} cmd="${input.command}"${input.ack ? ` ack=${input.ack}` : ''}`;
    case 'Propose':
      return `Propose id=${input.requestId} origin=${input.origin}`;
    case 'ProposeBatch':
      return `ProposeBatch ${input.items.map((i) => i.requestId).join(',')}`;
    case 'PrepareFailed':
      return `PrepareFailed id=${input.requestId}`;
    case 'Persisted':
      return `Persisted ${input.index}@${input.term}`;
    case 'Applied':
      return `Applied ${input.index}`;
    case 'SnapshotReady':
      return `SnapshotReady to=${input.to} index=${input.index}`;
    case 'SnapshotInstalled':
      return `SnapshotInstalled ${input.meta.index}@${input.meta.term}`;
    case 'SetHealthy':
      return `SetHealthy ${input.healthy}`;
    case 'ReadIndex':
      return `ReadIndex id=${input.requestId}`;
  }
}

function isEmpty(r: Ready): boolean {
  return (
    r.hardState === null &&
    r.truncateFrom === null &&
    r.entriesToAppend.length === 0 &&
    r.snapshotToInstall === null &&
    r.messages.length === 0 &&
    r.messagesAfterPersist.length === 0 &&
    r.committed.length === 0 &&
    r.compactUpTo === null &&
    r.prepare.length === 0 &&
    r.replies.length === 0 &&
    r.readIndexes.length === 0 &&
    r.snapshotRequests.length === 0 &&
    r.events.length === 0
  );
}

/** Heartbeats, empty REPLICATE probes and their successful acks, and nothing else. */
function isHeartbeatOnly(r: Ready): boolean {
  const routine = (m: OutboundMessage): boolean =>
    m.msg.type === 'HEARTBEAT' || (m.msg.type === 'REPLICATE' && m.msg.entries.length === 0) || (m.msg.type === 'REPLICATE_ACK' && m.msg.success);
  return (
    r.hardState === null &&
    r.truncateFrom === null &&
    r.entriesToAppend.length === 0 &&
    r.snapshotToInstall === null &&
    r.committed.length === 0 &&
    r.compactUpTo === null &&
    r.prepare.length === 0 &&
    r.replies.length === 0 &&
    r.readIndexes.length === 0 &&
    r.snapshotRequests.length === 0 &&
    r.events.length === 0 &&
    r.messages.every(routine) &&
    r.messagesAfterPersist.every(routine)
  );
}

function fmtReady(r: Ready): string[] {
  const l: string[] = [];
  if (r.hardState !== null) l.push(`  hardState: term=${r.hardState.term} votedFor=${r.hardState.votedFor ?? '-'}`);
  if (r.truncateFrom !== null) l.push(`  truncateFrom: ${r.truncateFrom}`);
  if (r.entriesToAppend.length > 0) l.push(`  append: ${fmtEntries(r.entriesToAppend)}`);
  if (r.snapshotToInstall !== null) l.push(`  install: ${r.snapshotToInstall.meta.index}@${r.snapshotToInstall.meta.term} data=${r.snapshotToInstall.data}`);
  if (r.messages.length > 0) l.push(`  messages: ${fmtOut(r.messages)}`);
  if (r.messagesAfterPersist.length > 0) l.push(`  afterPersist: ${fmtOut(r.messagesAfterPersist)}`);
  if (r.committed.length > 0) l.push(`  committed: ${range(r.committed.map((e) => e.index))}`);
  if (r.compactUpTo !== null) l.push(`  compactUpTo: ${r.compactUpTo.index}@${r.compactUpTo.term}`);
  if (r.prepare.length > 0) l.push(`  prepare: ${r.prepare.map((p) => `${p.requestId} origin=${p.origin} cmd="${p.command}"`).join('; ')}`);
  if (r.replies.length > 0) l.push(`  replies: ${r.replies.map((p) => `${p.requestId} ${fmtOutcome(p.outcome)}`).join('; ')}`);
  if (r.readIndexes.length > 0) l.push(`  readIndexes: ${r.readIndexes.map((a) => `${a.requestId} ${a.ok ? `index=${a.index}` : `${a.error.code} "${a.error.message}"`}`).join('; ')}`);
  if (r.snapshotRequests.length > 0) l.push(`  snapshotRequests: ${r.snapshotRequests.join(',')}`);
  if (r.events.length > 0) l.push(`  events: ${r.events.map(fmtEvent).join('; ')}`);
  return l;
}

// ---------------------------------------------------------------- the interpreter

export class TraceInterpreter {
  private nodes = new Map<NodeId, SimNode>();
  private network: InFlight[] = [];
  private cut = new Set<string>();
  private now = 0;
  private quiet = false;
  private quietNow = false;
  private out: string[] = [];
  private routine = 0;
  private dropped = 0;

  run(text: string): string[] {
    this.out = [];
    this.routine = 0;
    this.dropped = 0;
    const { name, args } = parseArgs(text);
    this.quietNow = this.quiet || args.positional.includes('quiet');
    switch (name) {
      case 'nodes':
        this.cmdNodes(args);
        break;
      case 'tick':
        this.cmdTick(args);
        break;
      case 'deliver':
        this.deliver(this.optId(args, 'from'), this.optId(args, 'to'), args.kv.has('rounds') ? Number(args.kv.get('rounds')) : Infinity);
        break;
      case 'discard': {
        const from = this.optId(args, 'from');
        const to = this.optId(args, 'to');
        const before = this.network.length;
        this.network = this.network.filter((m) => !((from === null || m.from === from) && (to === null || m.to === to)));
        this.out.push(`discarded ${before - this.network.length} messages`);
        break;
      }
      case 'drop':
        this.cut.add(`${this.reqId(args, 'from')}>${this.reqId(args, 'to')}`);
        break;
      case 'partition': {
        const groups = args.positional.join(' ').split('|').map((g) => ids(g.trim()));
        for (const a of groups) for (const b of groups) if (a !== b) for (const x of a) for (const y of b) this.cut.add(`${x}>${y}`);
        break;
      }
      case 'heal':
        this.cut.clear();
        break;
      case 'write': {
        const node = this.reqId(args, 'node');
        const ack = args.kv.get('ack');
        const input: Input = {
          type: 'ClientWrite',
          requestId: this.req(args, 'id'),
          command: this.req(args, 'cmd'),
          ...(ack !== undefined ? { ack: ack as 'one' | 'quorum' | 'all' } : {}),
        };
        this.feed(node, input);
        break;
      }
      case 'config': {
        const n = this.node(this.reqId(args, 'node'));
        if (args.kv.has('autopersist')) n.autoPersist = args.kv.get('autopersist') === 'true';
        if (args.kv.has('autoapply')) n.autoApply = args.kv.get('autoapply') === 'true';
        break;
      }
      case 'persist':
        this.persist(this.node(this.reqId(args, 'node')));
        break;
      case 'apply': {
        const n = this.node(this.reqId(args, 'node'));
        const upto = args.kv.has('upto') ? Number(args.kv.get('upto')) : Infinity;
        this.applyHeld(n, upto);
        break;
      }
      case 'crash': {
        const n = this.node(this.reqId(args, 'node'));
        n.up = false;
        n.pending = [];
        n.toApply = [];
        break;
      }
      case 'restart': {
        const n = this.node(this.reqId(args, 'node'));
        n.incarnation++;
        n.up = true;
        n.core = n.boot();
        const s = n.core.status();
        this.out.push(`n${n.id} restarted: term=${n.disk.hardState.term} votedFor=${n.disk.hardState.votedFor ?? '-'} log=${s.firstIndex}..${s.lastIndex} applied=${s.appliedIndex}`);
        break;
      }
      case 'status':
        this.cmdStatus();
        break;
      case 'quiet':
        this.quiet = args.positional[0] !== 'off';
        break;
      default:
        throw new Error(`unknown command '${name}'`);
    }
    this.flushRoutine();
    if (this.dropped > 0) this.out.push(`(${this.dropped} messages dropped: link cut or node down)`);
    return this.out;
  }

  // ------------------------------------------------------------ commands

  private cmdNodes(args: Args): void {
    const n = Number(args.positional[0]);
    const all = Array.from({ length: n }, (_, i) => i + 1);
    const overrides: Record<string, unknown> = {};
    for (const [k, v] of args.kv) overrides[k] = /^-?\d+$/.test(v) ? Number(v) : v === 'true' ? true : v === 'false' ? false : v;
    this.nodes.clear();
    this.network = [];
    this.cut.clear();
    this.now = 0;
    for (const id of all) this.nodes.set(id, new SimNode(id, (self, inc) => simCoreConfig(self, all, self * 17 + inc, overrides as Partial<CoreConfig>)));
    const c = simCoreConfig(1, all, 0, overrides as Partial<CoreConfig>);
    this.out.push(
      `${n} nodes: heartbeat=${c.heartbeatIntervalTicks} failure=${c.failureTimeoutTicks} stagger=${c.electionStaggerTicks} jitter=${c.electionJitterTicks} electionTimeout=${c.electionTimeoutTicks} retention=${c.logRetentionEntries}+${c.compactionBatchEntries}`,
    );
  }

  private cmdTick(args: Args): void {
    const count = args.positional.find((p) => /^\d+$/.test(p));
    const rounds = count === undefined ? 1 : Number(count);
    const only = args.kv.has('node') ? ids(args.kv.get('node') as string) : null;
    const deliver = args.kv.get('deliver') !== 'false';
    for (let r = 0; r < rounds; r++) {
      this.now++;
      for (const n of this.nodes.values()) if (n.up && (only === null || only.includes(n.id))) this.feed(n.id, { type: 'Tick' });
      if (deliver) this.deliver(null, null, Infinity);
    }
  }

  private cmdStatus(): void {
    for (const n of this.nodes.values()) {
      if (!n.up) {
        this.out.push(`n${n.id} down`);
        continue;
      }
      const s = n.core.status();
      const online = s.nodes.filter((x) => x.id !== n.id && x.online).map((x) => x.id);
      this.out.push(
        `n${n.id} ${s.role} term=${s.term} coordinator=${s.coordinator ?? '-'} log=${s.firstIndex}..${s.lastIndex}@${s.lastTerm} commit=${s.commitIndex} applied=${s.appliedIndex}` +
          ` online=${online.join(',') || '-'}${s.role === 'leader' ? ` ready=${s.coordinatorReady} match=${s.nodes.map((x) => x.matchIndex).join(',')}` : ''} db={${n.db.describe()}}`,
      );
    }
    if (this.network.length > 0) this.out.push(`${this.network.length} messages in flight`);
  }

  // ------------------------------------------------------------ network

  private deliver(from: NodeId | null, to: NodeId | null, rounds: number): void {
    const matches = (m: InFlight): boolean => (from === null || m.from === from) && (to === null || m.to === to);
    for (let r = 0; r < rounds; r++) {
      const batch = this.network.filter(matches);
      if (batch.length === 0) return;
      this.network = this.network.filter((m) => !matches(m));
      for (const m of batch) {
        const dest = this.nodes.get(m.to);
        if (dest === undefined || !dest.up || this.cut.has(`${m.from}>${m.to}`)) {
          this.dropped++;
          continue;
        }
        this.feed(m.to, { type: 'Receive', from: m.from, msg: m.msg });
      }
      if (r > 1000) throw new Error('the network does not quiesce');
    }
  }

  private send(from: NodeId, ms: readonly OutboundMessage[]): void {
    for (const m of ms) this.network.push({ from, to: m.to, msg: m.msg });
  }

  // ------------------------------------------------------------ one node, playing its driver

  private feed(id: NodeId, first: Input): void {
    const n = this.node(id);
    const queue: Input[] = [first];
    while (queue.length > 0) {
      const input = queue.shift() as Input;
      const ready = n.core.step(input);
      this.print(n, input, ready);
      this.carryOut(n, ready, queue);
    }
  }

  private print(n: SimNode, input: Input, ready: Ready): void {
    if (isEmpty(ready)) return;
    if (this.quietNow && isHeartbeatOnly(ready)) {
      this.routine++;
      return;
    }
    this.flushRoutine();
    this.out.push(`@${this.now} n${n.id} ${fmtInput(input)}`, ...fmtReady(ready));
  }

  private flushRoutine(): void {
    if (this.routine > 0) this.out.push(`  ... ${this.routine} heartbeat-only Readys`);
    this.routine = 0;
  }

  private carryOut(n: SimNode, r: Ready, queue: Input[]): void {
    const write = { hardState: r.hardState, truncateFrom: r.truncateFrom, entries: r.entriesToAppend };
    this.send(n.id, r.messages);
    if (n.autoPersist && n.pending.length === 0) {
      n.write(write);
      this.send(n.id, r.messagesAfterPersist);
      const last = r.entriesToAppend[r.entriesToAppend.length - 1];
      if (last !== undefined) queue.push({ type: 'Persisted', index: last.index, term: last.term });
    } else {
      const wrote = r.hardState !== null || r.truncateFrom !== null || r.entriesToAppend.length > 0;
      if (wrote || r.messagesAfterPersist.length > 0) n.pending.push({ ...write, afterPersist: r.messagesAfterPersist });
    }
    if (r.snapshotToInstall !== null) {
      const { meta, data } = r.snapshotToInstall;
      n.db.install(meta, data);
      n.resetTo(meta);
      n.toApply = [];
      queue.push({ type: 'SnapshotInstalled', meta });
    }
    if (r.committed.length > 0) {
      if (n.autoApply && n.toApply.length === 0) for (const e of r.committed) queue.push({ type: 'Applied', index: e.index, result: n.db.apply(e) });
      else n.toApply.push(...r.committed);
    }
    if (r.compactUpTo !== null) n.compact(r.compactUpTo);
    for (const p of r.prepare) queue.push({ type: 'Propose', requestId: p.requestId, origin: p.origin, payload: p.command, result: null });
    for (const to of r.snapshotRequests) queue.push({ type: 'SnapshotReady', to, index: n.db.appliedIndex, data: n.db.snapshot() });
  }

  private persist(n: SimNode): void {
    const pending = n.pending;
    n.pending = [];
    let last: Entry | undefined;
    for (const w of pending) {
      n.write(w);
      last = w.entries[w.entries.length - 1] ?? last;
    }
    this.out.push(`n${n.id} synced ${pending.length} writes${last ? ` up to ${last.index}@${last.term}` : ''}`);
    for (const w of pending) this.send(n.id, w.afterPersist);
    if (last !== undefined) this.feed(n.id, { type: 'Persisted', index: last.index, term: last.term });
  }

  private applyHeld(n: SimNode, upto: number): void {
    const now = n.toApply.filter((e) => e.index <= upto);
    n.toApply = n.toApply.filter((e) => e.index > upto);
    this.out.push(now.length === 0 ? `n${n.id} has nothing to apply` : `n${n.id} applies ${range(now.map((e) => e.index))}`);
    for (const e of now) this.feed(n.id, { type: 'Applied', index: e.index, result: n.db.apply(e) });
  }

  // ------------------------------------------------------------ helpers

  private node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }
  private req(args: Args, key: string): string {
    const v = args.kv.get(key);
    if (v === undefined) throw new Error(`missing ${key}=`);
    return v;
  }
  private reqId(args: Args, key: string): NodeId {
    return Number(this.req(args, key));
  }
  private optId(args: Args, key: string): NodeId | null {
    const v = args.kv.get(key);
    return v === undefined ? null : Number(v);
  }
}

/** Runs a whole script; returns the rewritten text (actual outputs in place of expected ones). */
export function runScript(src: string): { actual: string; mismatches: { command: Command; actual: readonly string[] }[] } {
  const chunks = parseScript(src);
  const interp = new TraceInterpreter();
  const outputs = new Map<Command, readonly string[]>();
  const mismatches: { command: Command; actual: readonly string[] }[] = [];
  for (const c of chunks) {
    if (c.kind !== 'command') continue;
    const cmd = c.command as Command;
    let actual: string[];
    try {
      actual = interp.run(cmd.text);
    } catch (e) {
      actual = [`error: ${(e as Error).message}`];
    }
    outputs.set(cmd, actual);
    if (actual.join('\n') !== cmd.expected.join('\n')) mismatches.push({ command: cmd, actual });
  }
  return { actual: renderScript(chunks, outputs), mismatches };
}

/** A line diff (LCS) of expected against actual: '-' expected only, '+' actual only. */
export function lineDiff(expected: readonly string[], actual: readonly string[], context = 3): string[] {
  const n = expected.length;
  const m = actual.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) (lcs[i] as number[])[j] = expected[i] === actual[j] ? ((lcs[i + 1] as number[])[j + 1] as number) + 1 : Math.max((lcs[i + 1] as number[])[j] as number, (lcs[i] as number[])[j + 1] as number);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && expected[i] === actual[j]) {
      out.push(`  ${expected[i]}`);
      i++;
      j++;
    } else if (j < m && (i === n || ((lcs[i] as number[])[j + 1] as number) >= ((lcs[i + 1] as number[])[j] as number))) out.push(`+ ${actual[j++]}`);
    else out.push(`- ${expected[i++]}`);
  }
  // Only show unchanged lines near a change.
  const near = (k: number): boolean => out.slice(Math.max(0, k - context), k + context + 1).some((l) => !l.startsWith('  '));
  const shown: string[] = [];
  for (let k = 0; k < out.length; k++) {
    if (near(k)) shown.push(out[k] as string);
    else if (shown[shown.length - 1] !== '  ...') shown.push('  ...');
  }
  return shown;
}
