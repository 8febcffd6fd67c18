// Validation of peer messages arriving as untrusted JSON. Returns a typed Message or a reason
// that names what was wrong; never throws. Bounds keep a hostile frame from costing much.
import { ACK_LEVELS, MESSAGE_TYPES, type AckLevel, type Entry, type Message, type Outcome, type SnapshotMeta } from './types.js';
import { parseErrorInfo, type ErrorInfo } from '../errors.js';

export const MAX_ENTRIES_PER_MESSAGE = 10_000;
const HEX32 = /^[0-9a-f]{32}$/;

export type Validated = { readonly ok: true; readonly msg: Message } | { readonly ok: false; readonly reason: string };

class Invalid extends Error {}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Invalid(`${what} must be an object`);
  return v as Record<string, unknown>;
}
function int(o: Record<string, unknown>, k: string, min = 0): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new Invalid(`field '${k}' must be an integer >= ${min}`);
  return v;
}
function bool(o: Record<string, unknown>, k: string): boolean {
  if (typeof o[k] !== 'boolean') throw new Invalid(`field '${k}' must be a boolean`);
  return o[k] as boolean;
}
function str(o: Record<string, unknown>, k: string, maxLen = 1 << 30): string {
  const v = o[k];
  if (typeof v !== 'string' || v.length > maxLen) throw new Invalid(`field '${k}' must be a string of at most ${maxLen} characters`);
  return v;
}
function nodeOrNull(o: Record<string, unknown>, k: string): number | null {
  return o[k] === null ? null : int(o, k, 1);
}
function hex32(o: Record<string, unknown>, k: string): string {
  const v = str(o, k, 32);
  if (!HEX32.test(v)) throw new Invalid(`field '${k}' must be 32 lowercase hex characters`);
  return v;
}
function ack(o: Record<string, unknown>, k: string): AckLevel {
  const v = o[k];
  if (!ACK_LEVELS.includes(v as AckLevel)) throw new Invalid(`field '${k}' must be one of ${ACK_LEVELS.join(', ')}`);
  return v as AckLevel;
}

function entry(v: unknown, i: number): Entry {
  const o = obj(v, `entries[${i}]`);
  const kind = o['kind'];
  if (kind !== 'command' && kind !== 'noop') throw new Invalid(`entries[${i}].kind must be 'command' or 'noop'`);
  const requestId = o['requestId'] === null ? null : str(o, 'requestId', 200);
  // md5 and chainHash are checked for shape only; their values are verified before the entry is accepted.
  return { index: int(o, 'index', 1), term: int(o, 'term', 1), kind, requestId, payload: str(o, 'payload'), md5: hex32(o, 'md5'), chainHash: hex32(o, 'chainHash') };
}

function meta(v: unknown): SnapshotMeta {
  const o = obj(v, 'meta');
  return { index: int(o, 'index'), term: int(o, 'term'), chainHash: hex32(o, 'chainHash') };
}

function outcome(v: unknown): Outcome {
  const o = obj(v, 'outcome');
  if (o['ok'] === true) return { ok: true, index: int(o, 'index'), result: o['result'] ?? null, duplicate: o['duplicate'] === true };
  if (o['ok'] === false) {
    const error = parseErrorInfo(o['error']);
    if (typeof error === 'string') throw new Invalid(`outcome.error: ${error}`);
    return { ok: false, error };
  }
  throw new Invalid(`outcome.ok must be a boolean`);
}

export function validateMessage(raw: unknown): Validated {
  try {
    const o = obj(raw, 'message');
    const type = o['type'];
    if (typeof type !== 'string') throw new Invalid(`message has no string 'type'`);
    if (!(MESSAGE_TYPES as readonly string[]).includes(type)) throw new Invalid(`unknown message type '${type.slice(0, 40)}'`);
    const term = int(o, 'term');
    let msg: Message;
    switch (type as Message['type']) {
      case 'HEARTBEAT':
        msg = { type: 'HEARTBEAT', term, leaderId: nodeOrNull(o, 'leaderId'), lastLogIndex: int(o, 'lastLogIndex'), lastLogTerm: int(o, 'lastLogTerm'), commitIndex: int(o, 'commitIndex') };
        break;
      case 'ELECTION':
        msg = { type: 'ELECTION', term, prevote: bool(o, 'prevote'), takeover: bool(o, 'takeover'), lastLogIndex: int(o, 'lastLogIndex'), lastLogTerm: int(o, 'lastLogTerm') };
        break;
      case 'VOTE':
        msg = { type: 'VOTE', term, prevote: bool(o, 'prevote'), granted: bool(o, 'granted'), reason: str(o, 'reason', 1000) };
        break;
      case 'COORDINATOR':
        msg = { type: 'COORDINATOR', term };
        break;
      case 'REPLICATE': {
        const list = o['entries'];
        if (!Array.isArray(list) || list.length > MAX_ENTRIES_PER_MESSAGE) throw new Invalid(`field 'entries' must be an array of at most ${MAX_ENTRIES_PER_MESSAGE}`);
        msg = {
          type: 'REPLICATE',
          term,
          prevIndex: int(o, 'prevIndex'),
          prevTerm: int(o, 'prevTerm'),
          entries: list.map(entry),
          commitIndex: int(o, 'commitIndex'),
          ...(o['wantApplied'] === undefined ? {} : { wantApplied: bool(o, 'wantApplied') }),
        };
        break;
      }
      case 'REPLICATE_ACK':
        msg = { type: 'REPLICATE_ACK', term, success: bool(o, 'success'), matchIndex: int(o, 'matchIndex'), probeIndex: int(o, 'probeIndex'), reason: str(o, 'reason', 1000) };
        break;
      case 'TAKEOVER':
        msg = { type: 'TAKEOVER', term };
        break;
      case 'READ_INDEX':
        msg = { type: 'READ_INDEX', term, requestId: str(o, 'requestId', 200) };
        break;
      case 'READ_INDEX_REPLY': {
        const raw = o['error'];
        let error: ErrorInfo | null = null;
        if (raw !== null) {
          const parsed = parseErrorInfo(raw);
          if (typeof parsed === 'string') throw new Invalid(`READ_INDEX_REPLY error: ${parsed}`);
          error = parsed;
        }
        msg = { type: 'READ_INDEX_REPLY', term, requestId: str(o, 'requestId', 200), index: int(o, 'index'), error };
        break;
      }
      case 'READ_PROBE':
        msg = { type: 'READ_PROBE', term, seq: int(o, 'seq', 1) };
        break;
      case 'READ_PROBE_ACK':
        msg = { type: 'READ_PROBE_ACK', term, seq: int(o, 'seq', 1) };
        break;
      case 'APPLIED':
        msg = { type: 'APPLIED', term, appliedIndex: int(o, 'appliedIndex') };
        break;
      case 'SNAPSHOT':
        msg = { type: 'SNAPSHOT', term, meta: meta(o['meta']), data: str(o, 'data') };
        break;
      case 'FORWARD':
        msg = { type: 'FORWARD', term, requestId: str(o, 'requestId', 200), command: str(o, 'command'), ack: ack(o, 'ack') };
        break;
      case 'FORWARD_REPLY':
        msg = { type: 'FORWARD_REPLY', term, requestId: str(o, 'requestId', 200), outcome: outcome(o['outcome']) };
        break;
    }
    return { ok: true, msg };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, reason: err.message };
    return { ok: false, reason: `invalid message: ${(err as Error).message}` };
  }
}
