/**
 * The run's trace: a ring buffer of the last events (formatted only when
 * printed, so recording costs little) and a running digest of every event,
 * which two runs of one seed must share exactly.
 */
import type { Message } from '../src/raft/messages.js';
import type { Entry } from '../src/raft/types.js';
import { hashNumber, hashSeed, hashString } from './hash.js';
import { formatKvEntry } from './kv-ops.js';

type TraceItem =
  | { readonly timeMs: number; readonly kind: 'text'; readonly node: string; readonly text: string }
  | {
      readonly timeMs: number;
      readonly kind: 'message';
      readonly node: string;
      readonly verb: string;
      readonly message: Message;
    }
  | {
      readonly timeMs: number;
      readonly kind: 'apply';
      readonly node: string;
      readonly entry: Entry;
      /** The client operation that proposed the entry, when known. */
      readonly opId: number | undefined;
    };

/** Bound on the proposals remembered for naming applied entries (oldest forgotten first). */
const proposalsMax = 4096;

export class Trace {
  private readonly ring: (TraceItem | undefined)[];
  private next = 0;
  private digestCurrent = hashSeed;
  /** `index@term` of recently proposed kv entries → the client op id (entries do not carry it). */
  private readonly proposals = new Map<string, number>();
  eventCount = 0;

  /** `sink`, when set, receives every line as it happens (--verbose). */
  constructor(
    readonly capacity: number,
    private readonly sink: ((line: string) => void) | null = null,
  ) {
    this.ring = new Array<TraceItem | undefined>(Math.max(1, capacity));
  }

  get digest(): number {
    return this.digestCurrent;
  }

  /** A rare event (fault, role change, client op): formatted now. */
  text(timeMs: number, node: string, text: string): void {
    this.digestCurrent = hashString(text, hashString(node, hashNumber(timeMs, this.digestCurrent)));
    this.push({ timeMs, kind: 'text', node, text });
  }

  /** A message event (`verb`: deliver, drop (why), ...): formatted only if printed. */
  message(timeMs: number, node: string, verb: string, message: Message): void {
    let h = hashNumber(timeMs, this.digestCurrent);
    h = hashString(message.type, hashString(message.from, hashString(message.to, h)));
    h = hashString(verb, hashNumber(message.term, h));
    this.digestCurrent = h;
    this.push({ timeMs, kind: 'message', node, verb, message });
  }

  apply(timeMs: number, node: string, entry: Entry): void {
    const h = hashNumber(
      entry.index,
      hashNumber(entry.term, hashNumber(timeMs, this.digestCurrent)),
    );
    this.digestCurrent = hashString(node, h);
    const opId =
      entry.kind === 'conf' || entry.data.length === 0
        ? undefined
        : this.proposals.get(`${entry.index}@${entry.term}`);
    this.push({ timeMs, kind: 'apply', node, entry, opId });
  }

  /** Remembers which client op an entry carries, so its applies can name it. */
  noteProposal(index: number, term: number, opId: number): void {
    this.proposals.set(`${index}@${term}`, opId);
    if (this.proposals.size > proposalsMax) {
      const oldest = this.proposals.keys().next().value;
      if (oldest !== undefined) this.proposals.delete(oldest);
    }
  }

  /** Mixes a value into the digest without recording a line (e.g. a final state digest). */
  mix(n: number): void {
    this.digestCurrent = hashNumber(n, this.digestCurrent);
  }

  /** The retained lines, oldest first. */
  lines(): string[] {
    const out: string[] = [];
    const n = this.ring.length;
    for (let i = 0; i < n; i++) {
      const item = this.ring[(this.next + i) % n];
      if (item !== undefined) out.push(formatItem(item));
    }
    return out;
  }

  private push(item: TraceItem): void {
    this.eventCount++;
    if (this.sink !== null) this.sink(formatItem(item));
    if (this.capacity <= 0) return;
    this.ring[this.next] = item;
    this.next = (this.next + 1) % this.ring.length;
  }
}

function formatItem(item: TraceItem): string {
  const time = `${item.timeMs.toFixed(3).padStart(11)}ms`;
  switch (item.kind) {
    case 'text':
      return `${time} ${item.node.padEnd(4)} ${item.text}`;
    case 'message':
      return `${time} ${item.node.padEnd(4)} ${item.verb} ${formatMessage(item.message)}`;
    case 'apply':
      return `${time} ${item.node.padEnd(4)} apply ${formatEntry(item.entry, item.opId)}`;
  }
}

export function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'append': {
      const n = m.entries.length;
      const span = n === 0 ? '' : ` [${m.entries[0]?.index}..${m.entries[n - 1]?.index}]`;
      return `${head} prev ${m.prevIndex}@${m.prevTerm} +${n}${span} commit ${m.commit}`;
    }
    case 'appendAccept':
      return `${head} match ${m.matchIndex}`;
    case 'appendReject':
      return `${head} rejected ${m.rejectedIndex} hint ${m.hintIndex}@${m.hintTerm}`;
    case 'heartbeat':
      return `${head} commit ${m.commit} seq ${m.seq}`;
    case 'heartbeatResponse':
      return `${head} seq ${m.seq}`;
    case 'vote':
    case 'preVote':
      return `${head} last ${m.lastIndex}@${m.lastTerm}${m.transfer ? ' transfer' : ''}`;
    case 'voteResponse':
    case 'preVoteResponse':
      return `${head} ${m.granted ? 'granted' : 'rejected'}`;
    case 'snapshot':
      return `${head} ${m.snapshot.index}@${m.snapshot.term} voters ${m.snapshot.membership.voters.join(',')} learners ${m.snapshot.membership.learners.join(',')}`;
    case 'timeoutNow':
      return head;
    case 'readIndex':
      return `${head} ctx ${m.context}`;
    case 'readIndexResponse':
      return `${head} ctx ${m.context} index ${m.index}`;
  }
}

export function formatEntry(e: Entry, opId?: number): string {
  const at = `${e.index}@${e.term}`;
  if (e.kind === 'conf') return `${at} conf ${e.change.type} ${e.change.node}`;
  if (e.data.length === 0) return `${at} no-op`;
  const op = opId === undefined ? '' : ` op${opId}`;
  try {
    return `${at}${op} ${formatKvEntry(e.data)}`;
  } catch {
    return `${at}${op} (${e.data.length} undecodable bytes)`;
  }
}
