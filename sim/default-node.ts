import { RaftNode } from '../src/raft/index.js';
import type { MakeNode } from './raft-core.js';

/** The real consensus core: what the simulator runs unless a test passes another. */
export const makeRaftNode: MakeNode = (config, persisted) => new RaftNode(config, persisted);
