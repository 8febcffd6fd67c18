// `replisql status`: one node's view of the cluster.
import { ReplisqlClient, type NodeStatus } from '../client/client.js';
import { formatErrorJson, formatErrorText, renderTable, type ShellIo } from './output.js';

export interface StatusOptions {
  readonly endpoints: readonly string[];
  readonly json: boolean;
  readonly timeoutMs: number;
}

function ago(ms: number | null): string {
  if (ms === null) return 'never';
  if (ms < 1000) return `${Math.round(ms)} ms ago`;
  return `${(ms / 1000).toFixed(1)} s ago`;
}

/** Human-readable status: a summary line and one table row per configured node. */
export function formatStatus(s: NodeStatus, endpoint: string | null): string {
  const head =
    `Node ${s.nodeId}${endpoint !== null ? ` (${endpoint})` : ''}: ${s.role}, ` +
    `coordinator ${s.coordinator ?? 'none (election under way)'}, term ${s.term}, ` +
    `commit index ${s.commitIndex}, applied index ${s.appliedIndex}, ${s.healthy ? 'healthy' : 'UNHEALTHY (database unavailable)'}\n`;
  const rows = [...s.nodes]
    .sort((a, b) => a.id - b.id)
    .map((n) => {
      const marks = [n.id === s.coordinator ? 'coordinator' : '', n.id === s.nodeId ? '(this node)' : ''].filter((m) => m !== '');
      return [
        String(n.id),
        n.online ? 'yes' : 'NO',
        n.id === s.nodeId ? '-' : ago(n.lastHeartbeatMsAgo),
        n.matchIndex === null ? '-' : String(n.matchIndex),
        marks.join(' '),
      ];
    });
  const table = renderTable(['id', 'online', 'last heartbeat', 'match index', ''], rows, ['right', 'left', 'right', 'right', 'left']);
  const online = s.nodes.filter((n) => n.online).length;
  return `${head}${table}\n${online} of ${s.nodes.length} nodes online\n`;
}

/** Runs the status command; returns the process exit code. */
export async function runStatus(opts: StatusOptions, io: Pick<ShellIo, 'stdout' | 'stderr'> = process): Promise<number> {
  let client: ReplisqlClient | null = null;
  try {
    client = await ReplisqlClient.connect(opts.endpoints, { timeoutMs: opts.timeoutMs });
    const status = await client.status();
    io.stdout.write(opts.json ? JSON.stringify(status) + '\n' : formatStatus(status, client.endpoint));
    return 0;
  } catch (err) {
    if (opts.json) io.stdout.write(formatErrorJson(err) + '\n');
    else io.stderr.write(formatErrorText(err));
    return 1;
  } finally {
    await client?.close();
  }
}
