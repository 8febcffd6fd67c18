// The nemesis of the fault suite: network faults as nftables rules inside the node namespaces, process
// faults as signals to the node processes. Every fault and every heal is logged with a timestamp and
// kept in `events`. See docs/reliability.md for what each fault is and how it is made.
import type { NetnsLab } from './netns.js';

export const FAULTS = ['isolate', 'isolate-coordinator', 'split', 'bridge', 'one-way', 'pause', 'kill', 'db-kill'] as const;
/** Faults that need a database server per node (`--engine mysql`). */
export const DATABASE_FAULTS: readonly FaultName[] = ['db-kill'];
export type FaultName = (typeof FAULTS)[number];

/**
 * Parses `--faults` (a comma list or `all`); throws naming the bad entry. `all` is every fault the
 * engine allows; a database fault named explicitly on SQLite (no database server) is refused.
 */
export function parseFaults(text: string, engine: 'sqlite' | 'mysql' = 'sqlite'): FaultName[] {
  const parts = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (parts.length === 0) throw new Error(`--faults: expected a comma list of ${FAULTS.join(', ')} or 'all', got '${text}'`);
  if (parts.length === 1 && parts[0] === 'all') return FAULTS.filter((f) => engine === 'mysql' || !DATABASE_FAULTS.includes(f));
  const needsServer = parts.find((p) => (DATABASE_FAULTS as readonly string[]).includes(p));
  if (needsServer !== undefined && engine !== 'mysql') throw new Error(`--faults: ${needsServer} kills a node's database server: it needs --engine mysql (SQLite runs inside the node)`);
  const out: FaultName[] = [];
  for (const p of parts) {
    if (!(FAULTS as readonly string[]).includes(p)) throw new Error(`--faults: unknown fault '${p}'; expected ${FAULTS.join(', ')} or 'all'`);
    if (!out.includes(p as FaultName)) out.push(p as FaultName);
  }
  return out;
}

/** What the nemesis needs from the runner: the lab, the node processes and the current coordinator. */
export interface NemesisHost {
  readonly lab: NetnsLab;
  readonly nodeIds: readonly number[];
  readonly peerPort: number;
  coordinator(): Promise<number | null>;
  signal(id: number, sig: 'SIGSTOP' | 'SIGCONT' | 'SIGKILL'): void;
  restart(id: number): Promise<void>;
  /** kill -9 node `id`'s database server (null when the nodes have none: SQLite). */
  readonly killDatabase: ((id: number) => Promise<void>) | null;
  /** Starts node `id`'s database server again on the same files. */
  readonly restartDatabase: ((id: number) => Promise<void>) | null;
  log(line: string): void;
}

export interface FaultEvent {
  readonly at: number;
  readonly kind: 'fault' | 'heal';
  readonly fault: FaultName | 'all';
  readonly detail: string;
}

/** A blocked direction: `messages` drops only a's connection to b's port (one-way at the message level). */
interface Block {
  readonly from: number;
  readonly to: number;
  readonly scope: 'ip' | 'messages';
}

const TABLE = 'rsqlf';

export class Nemesis {
  readonly events: FaultEvent[] = [];
  private blocks: Block[] = [];
  private paused = new Set<number>();
  private killed = new Set<number>();
  private databasesKilled = new Set<number>();
  private active: FaultName | null = null;

  constructor(
    private readonly host: NemesisHost,
    private readonly random: () => number,
  ) {}

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length) % items.length] as T;
  }

  private shuffled(ids: readonly number[]): number[] {
    const a = [...ids];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [a[i], a[j]] = [a[j] as number, a[i] as number];
    }
    return a;
  }

  private record(kind: FaultEvent['kind'], fault: FaultEvent['fault'], detail: string): void {
    const ev = { at: Date.now(), kind, fault, detail };
    this.events.push(ev);
    this.host.log(`${new Date(ev.at).toISOString()} nemesis ${kind} ${fault}: ${detail}`);
  }

  /** Cuts every link between the two groups (both directions, at the IP level). */
  private cut(a: readonly number[], b: readonly number[]): void {
    for (const x of a) for (const y of b) this.blocks.push({ from: x, to: y, scope: 'ip' }, { from: y, to: x, scope: 'ip' });
  }

  /** Applies `fault`; `target` picks the node for isolate/pause/kill and the minority's node for split (default: random / the coordinator). Returns what it did. */
  async apply(fault: FaultName, target?: number): Promise<string> {
    if (this.active !== null) await this.heal();
    const ids = this.host.nodeIds;
    let detail: string;
    switch (fault) {
      case 'isolate':
      case 'isolate-coordinator': {
        const c = fault === 'isolate-coordinator' ? await this.host.coordinator() : null;
        const n = target ?? c ?? this.pick(ids);
        this.cut([n], ids.filter((x) => x !== n));
        detail = `node ${n} cut off from ${ids.filter((x) => x !== n).join(',')}${c === n ? ' (the coordinator)' : ''}`;
        break;
      }
      case 'split': {
        // The minority holds the coordinator (or `target`) when there is one: the interesting side.
        const c = target ?? (await this.host.coordinator());
        const order = this.shuffled(ids.filter((x) => x !== c));
        const minoritySize = Math.floor((ids.length - 1) / 2);
        const minority = c !== null ? [c, ...order.slice(0, minoritySize - 1)] : order.slice(0, minoritySize);
        const majority = ids.filter((x) => !minority.includes(x));
        this.cut(minority, majority);
        detail = `minority {${minority.join(',')}} | majority {${majority.join(',')}}`;
        break;
      }
      case 'bridge': {
        // One node sees both halves; the halves do not see each other.
        const order = this.shuffled(ids);
        const middle = order[0] as number;
        const rest = order.slice(1);
        const left = rest.slice(0, Math.ceil(rest.length / 2));
        const right = rest.slice(Math.ceil(rest.length / 2));
        this.cut(left, right);
        detail = `{${left.join(',')}} <-> ${middle} <-> {${right.join(',')}}`;
        break;
      }
      case 'one-way': {
        const order = this.shuffled(ids);
        const a = order[0] as number;
        const b = order[1] as number;
        this.blocks.push({ from: a, to: b, scope: 'messages' });
        detail = `messages ${a} -> ${b} dropped, ${b} -> ${a} delivered`;
        break;
      }
      case 'pause': {
        const n = target ?? this.pick(ids);
        this.host.signal(n, 'SIGSTOP');
        this.paused.add(n);
        detail = `node ${n} SIGSTOP`;
        break;
      }
      case 'kill': {
        const n = target ?? this.pick(ids);
        this.host.signal(n, 'SIGKILL');
        this.killed.add(n);
        detail = `node ${n} SIGKILL (restarted at heal)`;
        break;
      }
      case 'db-kill': {
        const kill = this.host.killDatabase;
        if (kill === null) throw new Error("fault db-kill needs a database server per node: run with --engine mysql");
        // The coordinator's database when there is one: the node must hand over and stop acknowledging.
        const n = target ?? (await this.host.coordinator()) ?? this.pick(ids);
        await kill(n);
        this.databasesKilled.add(n);
        detail = `node ${n}'s MariaDB SIGKILL (restarted at heal)`;
        break;
      }
    }
    this.applyRules();
    this.active = fault;
    this.record('fault', fault, detail);
    return detail;
  }

  /** Removes every rule, resumes paused nodes, restarts killed ones. */
  async heal(): Promise<void> {
    const what: string[] = [];
    if (this.blocks.length > 0) what.push('network healed');
    this.blocks = [];
    this.applyRules();
    for (const n of this.paused) {
      this.host.signal(n, 'SIGCONT');
      what.push(`node ${n} SIGCONT`);
    }
    this.paused.clear();
    for (const n of this.killed) {
      await this.host.restart(n);
      what.push(`node ${n} restarted`);
    }
    this.killed.clear();
    for (const n of this.databasesKilled) {
      await this.host.restartDatabase?.(n);
      what.push(`node ${n}'s MariaDB restarted`);
    }
    this.databasesKilled.clear();
    const fault = this.active ?? 'all';
    this.active = null;
    this.record('heal', fault, what.length > 0 ? what.join('; ') : 'nothing to heal');
  }

  /** Writes the rule set of every node namespace from `blocks` (an empty table when nothing is blocked). */
  private applyRules(): void {
    const { lab, nodeIds, peerPort } = this.host;
    for (const id of nodeIds) {
      const input: string[] = [];
      const output: string[] = [];
      for (const b of this.blocks) {
        const port = b.scope === 'messages' ? ` tcp dport ${peerPort}` : '';
        if (b.from === id) output.push(`ip daddr ${lab.nodeAddress(b.to)}${port} drop`);
        if (b.to === id) input.push(`ip saddr ${lab.nodeAddress(b.from)}${port} drop`);
      }
      const script = [
        `table inet ${TABLE}`,
        `delete table inet ${TABLE}`,
        `table inet ${TABLE} {`,
        '  chain input {',
        '    type filter hook input priority 0; policy accept;',
        ...input.map((r) => `    ${r}`),
        '  }',
        '  chain output {',
        '    type filter hook output priority 0; policy accept;',
        ...output.map((r) => `    ${r}`),
        '  }',
        '}',
        '',
      ].join('\n');
      lab.nft(lab.nodeNs(id), script);
    }
  }
}
