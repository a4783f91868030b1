import type { ConfChange, ConfState, NodeId } from './types.ts';

/** The membership a node currently applies: voters decide elections and commitment. */
export class Membership {
  readonly voters = new Set<NodeId>();
  readonly learners = new Set<NodeId>();

  constructor(confState: ConfState) {
    this.restore(confState);
  }

  restore(confState: ConfState): void {
    this.voters.clear();
    this.learners.clear();
    for (const id of confState.voters) this.voters.add(id);
    for (const id of confState.learners) this.learners.add(id);
  }

  has(id: NodeId): boolean {
    return this.voters.has(id) || this.learners.has(id);
  }

  confState(): ConfState {
    return { voters: [...this.voters], learners: [...this.learners] };
  }

  /**
   * Why `change` cannot be proposed against this membership, or undefined when it can.
   * Changes are single-server (thesis §4.1): add a voter (new, or a learner's promotion),
   * add a learner, or remove a member. Demoting a voter is done by removing it first.
   */
  check(change: ConfChange): string | undefined {
    const id = change.nodeId;
    if (typeof id !== 'string' || id.length === 0) return 'a membership change needs a non-empty node id';
    switch (change.type) {
      case 'addVoter':
        return this.voters.has(id) ? `${id} is already a voter` : undefined;
      case 'addLearner':
        if (this.voters.has(id)) return `${id} is a voter; remove it before adding it back as a learner`;
        return this.learners.has(id) ? `${id} is already a learner` : undefined;
      case 'removeNode':
        if (!this.has(id)) return `${id} is not a member`;
        if (this.voters.has(id) && this.voters.size === 1) return `${id} is the last voter and cannot be removed`;
        return undefined;
    }
  }

  /** Applies a committed change. Total: a change that no longer fits changes nothing. */
  apply(change: ConfChange): void {
    const id = change.nodeId;
    switch (change.type) {
      case 'addVoter':
        this.learners.delete(id);
        this.voters.add(id);
        return;
      case 'addLearner':
        if (!this.voters.has(id)) this.learners.add(id);
        return;
      case 'removeNode':
        if (this.voters.has(id) && this.voters.size === 1) return;
        this.voters.delete(id);
        this.learners.delete(id);
        return;
    }
  }
}
