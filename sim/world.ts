import type { NodeId } from '../src/raft/types.js';
import type { Network } from './network.js';
import type { SimOptions } from './options.js';
import type { SimNode } from './sim-node.js';

/** What the nemesis and the operator may do to the simulated cluster. */
export interface World {
  readonly nowMs: number;
  readonly inFaultPhase: boolean;
  readonly network: Network;
  readonly options: SimOptions;
  /** Server processes created so far, including stopped ones. */
  readonly nodesCreated: number;
  /** Every server process ever created and not shut down for good. */
  nodes(): readonly SimNode[];
  node(id: NodeId): SimNode | undefined;
  /** The leader with the highest term among running, unpaused nodes. */
  leader(): SimNode | undefined;
  later(atMs: number, fn: () => void): void;
  /** Creates and starts a brand-new empty process that will join the cluster. */
  createJoiningNode(): SimNode | undefined;
  /** Shuts a process down for good (it was removed from the cluster). */
  stopNode(node: SimNode, why: string): void;
  /** A fault or operator action, for the trace. */
  note(text: string): void;
}
