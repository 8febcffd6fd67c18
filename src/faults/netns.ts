// Network namespaces for the fault suite (docs/reliability.md, docs/design-faults.md "Namespaces and
// faults"). One namespace per node, one for the workload client, one "switch" namespace holding a
// bridge; each node and the client are joined to the bridge by a veth pair, addresses 10.213.0.x/24.
// Nothing is created in the host namespace except a blackhole route for the subnet, so that no
// packet for 10.213.0.0/24 can leave the machine even if something goes wrong. Every name starts
// with `rsqlf<pid>-`: a later run deletes what a crashed run (whose pid is gone) left behind.
// All commands are synchronous so that teardown also works from an exit or signal handler.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const NAME_PREFIX = 'rsqlf';
export const SUBNET = '10.213.0.0/24';
const SUBNET_BASE = '10.213.0.';
export const CLIENT_ADDRESS = `${SUBNET_BASE}100`;

export function nodeAddress(id: number): string {
  if (!Number.isInteger(id) || id < 1 || id > 90) throw new RangeError(`node id must be 1..90 for a namespace address, got ${id}`);
  return `${SUBNET_BASE}${10 + id}`;
}

function ip(args: readonly string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function ipQuiet(args: readonly string[]): boolean {
  return spawnSync('ip', args, { stdio: 'ignore' }).status === 0;
}

/** Why namespaces cannot be used here, or null when they can. */
export function netnsUnavailableReason(): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux, this is ${process.platform}`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'network namespaces need root (run as root)';
  if (spawnSync('ip', ['-V'], { stdio: 'ignore' }).status !== 0) return "the 'ip' command (iproute2) is not installed";
  if (spawnSync('nft', ['--version'], { stdio: 'ignore' }).status !== 0) return "the 'nft' command is not installed (apt-get install -y nftables)";
  const probe = `${NAME_PREFIX}probe${process.pid}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.status !== 0) return `cannot create a network namespace: ${(r.stderr ?? '').trim() || `ip exited with ${r.status}`}`;
  const nft = spawnSync('ip', ['netns', 'exec', probe, 'nft', 'list', 'ruleset'], { encoding: 'utf8' });
  ipQuiet(['netns', 'del', probe]);
  if (nft.status !== 0) return `nftables does not work inside a namespace: ${(nft.stderr ?? '').trim()}`;
  return null;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function listNamespaces(): string[] {
  try {
    return ip(['netns', 'list'])
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0] ?? '')
      .filter((n) => n.length > 0);
  } catch {
    return [];
  }
}

/** Pids of the processes inside namespace `ns` (empty when none or when it cannot be read). */
export function pidsIn(ns: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return r.stdout.split('\n').map((l) => Number(l.trim())).filter((n) => Number.isInteger(n) && n > 0);
}

function deleteNamespace(ns: string): void {
  for (const pid of pidsIn(ns)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  ipQuiet(['netns', 'del', ns]);
}

function hasBlackholeRoute(): boolean {
  try {
    return ip(['route', 'show', 'type', 'blackhole']).split('\n').some((l) => l.trim().startsWith(SUBNET));
  } catch {
    return false;
  }
}

/** Deletes the namespaces of runs whose process is gone (and the route when no run is left). Returns what it removed. */
export function cleanLeftovers(log: (line: string) => void = () => {}): string[] {
  const removed: string[] = [];
  for (const ns of listNamespaces()) {
    const m = new RegExp(`^${NAME_PREFIX}(\\d+)-`).exec(ns) ?? new RegExp(`^${NAME_PREFIX}probe(\\d+)$`).exec(ns);
    if (m === null) continue;
    const owner = Number(m[1]);
    if (owner !== process.pid && pidAlive(owner)) continue;
    deleteNamespace(ns);
    removed.push(ns);
  }
  if (removed.length > 0) log(`removed leftover namespaces of crashed runs: ${removed.join(', ')}`);
  if (!listNamespaces().some((n) => n.startsWith(NAME_PREFIX)) && hasBlackholeRoute()) {
    ipQuiet(['route', 'del', 'blackhole', SUBNET]);
    log(`removed leftover blackhole route ${SUBNET}`);
  }
  return removed;
}

export interface NetnsLabOptions {
  readonly nodeIds: readonly number[];
  readonly log?: (line: string) => void;
}

/** The namespaces of one run. Create with NetnsLab.create(); always call teardown(). */
export class NetnsLab {
  readonly prefix = `${NAME_PREFIX}${process.pid}-`;
  readonly switchNs = `${this.prefix}sw`;
  readonly clientNs = `${this.prefix}c`;
  private readonly created: string[] = [];
  private routeAdded = false;
  private tornDown = false;

  private constructor(
    readonly nodeIds: readonly number[],
    private readonly log: (line: string) => void,
  ) {}

  nodeNs(id: number): string {
    if (!this.nodeIds.includes(id)) throw new RangeError(`no node ${id} in this lab`);
    return `${this.prefix}n${id}`;
  }

  nodeAddress(id: number): string {
    return nodeAddress(id);
  }

  /** Builds everything; on any failure removes what it had built and throws. */
  static create(opts: NetnsLabOptions): NetnsLab {
    const log = opts.log ?? (() => {});
    const why = netnsUnavailableReason();
    if (why !== null) throw new Error(why);
    cleanLeftovers(log);
    const lab = new NetnsLab(opts.nodeIds, log);
    try {
      lab.build();
    } catch (err) {
      lab.teardown();
      throw err;
    }
    return lab;
  }

  private addNs(name: string): void {
    ip(['netns', 'add', name]);
    this.created.push(name);
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
  }

  private build(): void {
    // First the safety net: nothing for the test subnet may be routed out of the host namespace.
    if (!hasBlackholeRoute()) {
      ip(['route', 'add', 'blackhole', SUBNET]);
      this.routeAdded = true;
    }
    this.addNs(this.switchNs);
    ip(['-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', this.switchNs, 'link', 'set', 'br0', 'up']);
    const attach = (ns: string, port: string, address: string): void => {
      this.addNs(ns);
      // Created in the switch namespace, one end moved straight into the member: never in the host namespace.
      ip(['-n', this.switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      ip(['-n', this.switchNs, 'link', 'set', port, 'master', 'br0']);
      ip(['-n', this.switchNs, 'link', 'set', port, 'up']);
      ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    };
    for (const id of this.nodeIds) attach(this.nodeNs(id), `v${id}`, nodeAddress(id));
    attach(this.clientNs, 'vc', CLIENT_ADDRESS);
    this.log(`namespaces up: ${this.created.join(', ')} (bridge br0 in ${this.switchNs}, subnet ${SUBNET})`);
  }

  /** Sets the link of node `id` down or up (its veth end in the switch namespace). */
  setLink(id: number, up: boolean): void {
    ip(['-n', this.switchNs, 'link', 'set', `v${id}`, up ? 'up' : 'down']);
  }

  /** Runs `nft -f -` with `script` inside namespace `ns`. */
  nft(ns: string, script: string): void {
    execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: script, stdio: ['pipe', 'ignore', 'pipe'] });
  }

  /** Kills every process left in the namespaces, deletes them and the route (if this run added it). Idempotent. */
  teardown(): void {
    if (this.tornDown) return;
    this.tornDown = true;
    for (const ns of [...this.created].reverse()) deleteNamespace(ns);
    const others = listNamespaces().filter((n) => n.startsWith(NAME_PREFIX));
    if ((this.routeAdded || hasBlackholeRoute()) && others.length === 0) ipQuiet(['route', 'del', 'blackhole', SUBNET]);
    const left = listNamespaces().filter((n) => n.startsWith(this.prefix));
    this.log(left.length === 0 ? 'namespaces removed' : `could not remove: ${left.join(', ')}`);
  }

  get isTornDown(): boolean {
    return this.tornDown;
  }
}

/** True when a namespace of this name exists (for tests). */
export function namespaceExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}
