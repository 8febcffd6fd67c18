// Safety checkers run after every simulated event. Each violation names the invariant.
import type { Entry, NodeId } from '../core/types.js';

export class InvariantViolation extends Error {
  constructor(
    readonly invariant: string,
    readonly detail: string,
  ) {
    super(`${invariant}: ${detail}`);
    this.name = 'InvariantViolation';
  }
}

interface CommittedRecord {
  readonly chainHash: string;
  readonly requestId: string | null;
  readonly term: number;
}

export class InvariantChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** The one committed history: index -> record. Every replica must agree with it. */
  private readonly committed = new Map<number, CommittedRecord>();
  /** Requests acknowledged at quorum/all: requestId -> index. */
  readonly acknowledged = new Map<string, number>();
  maxCommitted = 0;

  /** At most one coordinator per term. */
  checkLeader(node: NodeId, term: number): void {
    const known = this.leaderOfTerm.get(term);
    if (known === undefined) this.leaderOfTerm.set(term, node);
    else if (known !== node) throw new InvariantViolation('one-coordinator-per-term', `nodes ${known} and ${node} both coordinator in term ${term}`);
  }

  /** A committed entry never changes: every node that commits index i has the same entry there. */
  checkCommitted(node: NodeId, e: Entry): void {
    const rec = this.committed.get(e.index);
    if (rec === undefined) {
      this.committed.set(e.index, { chainHash: e.chainHash, requestId: e.requestId, term: e.term });
      if (e.index > this.maxCommitted) this.maxCommitted = e.index;
      const acked = e.requestId === null ? undefined : this.acknowledged.get(e.requestId);
      if (acked !== undefined && acked !== e.index) {
        // fine only if the acknowledged index itself holds the request
        const at = this.committed.get(acked);
        if (at !== undefined && at.requestId !== e.requestId) {
          throw new InvariantViolation('acknowledged-not-lost', `request ${e.requestId} acknowledged at ${acked} but committed at ${e.index}`);
        }
      }
      return;
    }
    if (rec.chainHash !== e.chainHash) {
      throw new InvariantViolation(
        'committed-never-changes',
        `node ${node} has committed index ${e.index} with chain ${e.chainHash.slice(0, 8)} (term ${e.term}), cluster committed ${rec.chainHash.slice(0, 8)} (term ${rec.term})`,
      );
    }
  }

  /** Applied prefixes are identical: the chain hash of the applied entry matches the committed one. */
  checkApplied(node: NodeId, e: Entry, effects: number): void {
    const rec = this.committed.get(e.index);
    if (rec === undefined) throw new InvariantViolation('apply-only-committed', `node ${node} applied index ${e.index} that no node committed`);
    if (rec.chainHash !== e.chainHash) {
      throw new InvariantViolation('applied-prefix-identical', `node ${node} applied index ${e.index} with a different chain hash`);
    }
    if (effects > 1) {
      throw new InvariantViolation('request-applied-once', `node ${node} applied request ${e.requestId} ${effects} times (last at ${e.index})`);
    }
  }

  checkSnapshot(node: NodeId, index: number, chainHash: string): void {
    const rec = this.committed.get(index);
    if (index > 0 && rec !== undefined && rec.chainHash !== chainHash) {
      throw new InvariantViolation('applied-prefix-identical', `node ${node} installed a snapshot at ${index} with a different chain hash`);
    }
  }

  /** A write acknowledged at quorum/all is committed at the index the client was told. */
  checkAcknowledged(requestId: string, index: number): void {
    const rec = this.committed.get(index);
    if (rec === undefined) {
      throw new InvariantViolation('acknowledged-not-lost', `request ${requestId} acknowledged at index ${index} which is not committed`);
    }
    if (rec.requestId !== requestId) {
      throw new InvariantViolation('acknowledged-not-lost', `request ${requestId} acknowledged at index ${index}, which holds ${rec.requestId}`);
    }
    this.acknowledged.set(requestId, index);
  }

  committedAt(index: number): CommittedRecord | undefined {
    return this.committed.get(index);
  }
}
