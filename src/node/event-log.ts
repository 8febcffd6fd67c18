// Core events as log lines. Every line carries `event` (the core event's type) and the event's
// fields, so tools and tests match `line.event`, never the prose; the prose is for people.
import { assertNever } from '../errors.js';
import type { CoreEvent, NodeId } from '../core/types.js';
import type { Logger } from '../util/logger-port.js';

export interface EventLogContext {
  readonly selfId: NodeId;
  readonly tickMs: number;
  /** Extra fields for a became-coordinator line (log position and applied index). */
  readonly positions: () => Record<string, number>;
}

export function logCoreEvent(l: Logger, ctx: EventLogContext, ev: CoreEvent): void {
  const { type, ...fields } = ev;
  const f = { event: type, ...fields };
  switch (ev.type) {
    case 'election-started':
      l.info(f, ev.prevote ? `starting an election (pre-vote for term ${ev.term})` : `election for term ${ev.term}${ev.takeover ? ' (taking over from a lower id)' : ''}`);
      return;
    case 'became-coordinator':
      l.info({ ...f, ...ctx.positions() }, `became coordinator for term ${ev.term}`);
      return;
    case 'coordinator-changed':
      l.info(f, ev.coordinator === null ? `no coordinator (term ${ev.term})` : `coordinator is node ${ev.coordinator} (term ${ev.term})`);
      return;
    case 'stepped-down':
      l.warn(f, `stepped down as coordinator in term ${ev.term}: ${ev.reason}`);
      return;
    case 'peer-online':
      l.info(f, `node ${ev.peer} is online`);
      return;
    case 'peer-offline':
      l.warn(f, `node ${ev.peer} is offline (no heartbeat for ${(ev.silentTicks * ctx.tickMs) / 1000} s)`);
      return;
    case 'checksum-mismatch':
      l.error(f, `checksum mismatch in REPLICATE from node ${ev.from} at index ${ev.index}: ${ev.detail}; entry rejected, asking for it again`);
      return;
    case 'replication-rejected':
      l.debug(f, `node ${ev.peer} rejected REPLICATE: ${ev.reason}`);
      return;
    case 'takeover-requested':
      l.info(f, ev.target === ctx.selfId ? `asked by the coordinator to take over (higher id, caught up)` : `handing the coordinator role to node ${ev.target} (higher id, caught up)`);
      return;
    case 'takeover-held':
      l.info(f, `asked by node ${ev.from} to take over; waiting until the database has applied up to ${ev.commitIndex} (applied ${ev.appliedIndex})`);
      return;
    case 'takeover-dropped':
      l.info(f, `not taking over from node ${ev.from}: ${ev.reason} (applied ${ev.appliedIndex})`);
      return;
    case 'catch-up':
      l.info(f, `node ${ev.peer} catching up: ${ev.matchIndex}/${ev.lastIndex}`);
      return;
    case 'snapshot-sent':
      l.info(f, `snapshot at index ${ev.index} sent to node ${ev.peer}`);
      return;
    case 'snapshot-installed':
      l.info(f, `installed a snapshot at index ${ev.index}`);
      return;
    case 'message-rejected':
      l.warn(f, `rejected a message from node ${ev.from}: ${ev.reason}`);
      return;
    case 'acknowledged-before-local-apply':
      l.warn(f, `write ${ev.requestId} (index ${ev.index}) acknowledged before this node applied it (applied up to ${ev.appliedIndex}): the database is behind`);
      return;
    default:
      assertNever(ev, 'core event');
  }
}
