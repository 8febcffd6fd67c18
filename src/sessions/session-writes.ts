// Writes submitted by client sessions, waiting for their outcome by request id.
import { randomBytes } from 'node:crypto';
import { ErrorCode } from '../errors.js';
import type { AckLevel, NodeId, Outcome } from '../core/types.js';

export class SessionWrites {
  private readonly waiting = new Map<string, (outcome: Outcome) => void>();
  private count = 0;
  /** Makes session request ids unique across restarts (the coordinator de-duplicates by id). */
  private readonly bootNonce = randomBytes(6).toString('hex');

  constructor(
    private readonly selfId: NodeId,
    private readonly submit: (requestId: string, command: string, ack: AckLevel | undefined) => void,
  ) {}

  /** Submits a write through the ordinary write path; resolves with its outcome. */
  write(command: string, clientRequestId?: string, ack?: AckLevel): Promise<Outcome> {
    const requestId = clientRequestId ?? `s${this.selfId}-${this.bootNonce}-${++this.count}`;
    if (this.waiting.has(requestId)) {
      return Promise.resolve({ ok: false, error: { code: ErrorCode.BAD_REQUEST, message: `request id ${requestId} is already in flight on this node` } });
    }
    return new Promise<Outcome>((resolve) => {
      this.waiting.set(requestId, resolve);
      this.submit(requestId, command, ack);
    });
  }

  /** Delivers an outcome; false when no session waits for this request id. */
  deliver(requestId: string, outcome: Outcome): boolean {
    const resolve = this.waiting.get(requestId);
    if (resolve === undefined) return false;
    this.waiting.delete(requestId);
    resolve(outcome);
    return true;
  }
}
