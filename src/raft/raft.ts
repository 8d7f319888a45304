import { assert, fail } from './assert.js';
import type { PersistedState, RaftConfig, RaftConfigInput } from './config.js';
import { resolveConfig } from './config.js';
import { RaftLog } from './log.js';
import { isVoter, members, validateConfChange } from './membership.js';
import type {
  AppendAcceptMessage,
  AppendMessage,
  AppendRejectMessage,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  Message,
  SnapshotMessage,
  VoteMessage,
  VoteResponseMessage,
} from './messages.js';
import { commitNoticeSeq } from './messages.js';
import { Progress, type ProgressState } from './progress.js';
import { type VoteOutcome, voteOutcome } from './quorum.js';
import { ReadIndexTracker } from './read-index.js';
import type { Ready } from './ready.js';
import type { ProposeResult, Refusal, RequestResult } from './results.js';
import { notLeader } from './results.js';
import { type Rules, raftRules } from './rules.js';
import type {
  ConfChange,
  Entry,
  HardState,
  LogIndex,
  Membership,
  NodeId,
  ReadState,
  Role,
  SnapshotMeta,
  SoftState,
  Term,
} from './types.js';
import { entryBytes, logIndex, noNode, term as toTerm } from './types.js';

export interface FollowerStatus {
  readonly match: LogIndex;
  readonly next: LogIndex;
  readonly state: ProgressState;
  readonly recentActive: boolean;
  /** In 'snapshot' state: the index of the snapshot being sent (0 otherwise). */
  readonly pendingSnapshot: LogIndex;
}

export interface Status {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: Term;
  readonly vote: NodeId;
  readonly leader: NodeId;
  readonly commit: LogIndex;
  readonly applied: LogIndex;
  readonly stable: LogIndex;
  readonly firstIndex: LogIndex;
  readonly lastIndex: LogIndex;
  readonly membership: Membership;
  /**
   * The newest snapshot stored durably (a leader sends this one). Entries
   * from `firstIndex` on are in memory, which may start before it.
   */
  readonly snapshot: SnapshotMeta;
  readonly leadTransferee: NodeId;
  /** The leader's view of each other member; empty on followers. */
  readonly progress: ReadonlyMap<NodeId, FollowerStatus>;
}

type CampaignKind = 'preElection' | 'election' | 'transfer';
/** What a follower is owed at the leader's next flush: entries it lacks, or an append even if empty. */
type AppendOwed = 'nothing' | 'entries' | 'evenIfEmpty';

const emptyData = new Uint8Array(0);

/**
 * One member of a Raft group, as a deterministic state machine with no I/O
 * (the etcd-raft design). The runtime feeds it time (`tick`), messages
 * (`step`) and requests (`propose`, `readIndex`...), and carries out what
 * `ready()` returns: persist, send, apply; then calls `advance()`.
 *
 * Section numbers refer to the Raft paper (Ongaro & Ousterhout, 2014) as §N,
 * and to Ongaro's thesis (2014) as "thesis §N".
 *
 * @example
 * const node = new RaftNode({ id: nodeId('n1'), random: new Prng(1) }, bootstrapState([nodeId('n1')]));
 * for (let i = 0; i < 30 && node.status().role !== 'leader'; i++) node.tick();
 * node.propose(new TextEncoder().encode('hello'));
 * const rd = node.ready(); // persist rd.entries, send rd.messages, apply rd.committedEntries
 * node.advance(rd);
 */
export class RaftNode {
  private readonly cfg: RaftConfig;
  private readonly rules: Rules;
  private readonly log: RaftLog;
  private readonly id: NodeId;

  /** Invariant: never decreases (§5.1). */
  private term: Term;
  /** Invariant: set at most once per term (§5.2). */
  private vote: NodeId;
  private leader: NodeId = noNode;
  private role: Role = 'follower';

  /** Ticks since this node started; the leader's clock for leases. */
  private ticks = 0;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /**
   * Ticks since this node last heard from a leader of its term, or since it
   * started: while below the election timeout it ignores candidates (thesis
   * §4.2.3, §6.2). Counting from start keeps the promise a leader's lease
   * relies on across a restart of this node.
   */
  private leaderContactElapsed = 0;

  private readonly votes = new Map<NodeId, boolean>();
  /** Leader only: one entry per other member. */
  private readonly progress = new Map<NodeId, Progress>();
  /**
   * Leader only: what each follower is owed at the next flush. Every
   * follower keeps its key and `flush` resets the value, rather than a
   * cleared Map: a Map's clear allocates a new table, in the old generation
   * once the Map is there, and flush runs once per batch.
   */
  private readonly needsAppend = new Map<NodeId, AppendOwed>();
  private leadTransferee: NodeId = noNode;
  /** maybeCommit's match index per voter, in the order of the voters. */
  private matchScratch: number[] = [];
  /** Set once a TimeoutNow went out: the target may win despite followers' leases. */
  private leaseRevoked = false;
  private uncommittedBytes = 0;
  private reads: ReadIndexTracker;
  /** Reads that arrived before this leader committed an entry of its term (thesis §6.4 step 1). */
  private readsAwaitingTermCommit: { requester: NodeId; context: string }[] = [];

  private msgs: Message[] = [];
  private msgsAfterPersist: Message[] = [];
  private readStates: ReadState[] = [];
  private prevSoft: SoftState;
  private prevHard: HardState;
  /** The term and vote last acknowledged durable through `advance()` (or recovered). */
  private durableTerm: Term;
  private durableVote: NodeId;

  constructor(config: RaftConfigInput, persisted: PersistedState, rules: Rules = raftRules) {
    this.cfg = resolveConfig(config);
    this.rules = rules;
    this.id = this.cfg.id;
    const hs = persisted.hardState;
    this.log = new RaftLog(persisted.snapshot, persisted.entries, hs.commit);
    this.term = hs.term;
    this.vote = hs.vote;
    this.reads = new ReadIndexTracker(this.cfg.pendingReadsMax);
    this.resetRandomizedElectionTimeout();
    this.prevSoft = { role: this.role, leader: this.leader };
    this.prevHard = hs;
    this.durableTerm = hs.term;
    this.durableVote = hs.vote;
  }

  // ---------------------------------------------------------------------
  // Inputs

  /** Advances logical time by one tick. */
  tick(): void {
    this.ticks++;
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
    this.checkInvariants();
  }

  /** Handles a message from another member. */
  step(m: Message): void {
    if (m.to !== this.id) fail(`message for ${m.to} stepped into ${this.id}`);
    if (m.from === this.id) fail(`message from self (${m.type})`);
    if (!this.stepTerm(m)) return;
    if (m.type === 'vote' || m.type === 'preVote') {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        break;
      case 'follower':
        this.stepFollower(m);
        break;
    }
    this.checkInvariants();
  }

  /** Appends `data` to the log if this node leads. */
  propose(data: Uint8Array): ProposeResult {
    const refusal = this.checkCanPropose('a write');
    if (refusal !== null) return { ok: false, refusal };
    const e: Entry = { kind: 'normal', term: this.term, index: this.nextIndex(), data };
    const bytes = entryBytes(e);
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.cfg.uncommittedBytesMax) {
      return {
        ok: false,
        refusal: {
          kind: 'overloaded',
          message: `${this.uncommittedBytes} bytes are waiting to commit (limit ${this.cfg.uncommittedBytesMax}); retry when the followers catch up`,
        },
      };
    }
    this.appendAsLeader(e);
    return { ok: true, index: e.index, term: e.term };
  }

  /**
   * Proposes a change of one member (thesis §4.1). Refused while another
   * change is uncommitted, and before this leader committed an entry of its
   * own term (the single-server change fix).
   */
  proposeConfChange(change: ConfChange): ProposeResult {
    const refusal = this.checkCanPropose('a membership change') ?? this.checkConfChange(change);
    if (refusal !== null) return { ok: false, refusal };
    const e: Entry = { kind: 'conf', term: this.term, index: this.nextIndex(), change };
    this.appendAsLeader(e);
    this.syncProgressWithMembership();
    return { ok: true, index: e.index, term: e.term };
  }

  /**
   * Asks for a linearizable read point (thesis §6.4). The answer appears in
   * `Ready.readStates` with the same context; serve the read once the state
   * machine has applied that index. On a follower, the leader is asked.
   */
  readIndex(context: string): RequestResult {
    if (this.role === 'leader') return this.handleReadRequest(this.id, context);
    if (this.leader === noNode)
      return { ok: false, refusal: notLeader(noNode, 'a linearizable read') };
    this.send({ type: 'readIndex', from: this.id, to: this.leader, term: this.term, context });
    return { ok: true };
  }

  /**
   * On a leader, tells each follower the commit index it has not heard yet
   * (a commit notice: a heartbeat it does not answer). Raft spreads the
   * commit index with the next append or heartbeat (§5.3); the runtime calls
   * this shortly after the commit advances, so that followers apply (and
   * serve stale reads) without waiting for a heartbeat, while under load the
   * appends sent meanwhile carry the commit and no notice is needed. etcd
   * broadcasts at once instead, at two messages per commit when idle.
   */
  spreadCommit(): void {
    if (this.role !== 'leader') return;
    for (const id of this.progress.keys()) this.sendCommitNotice(id);
  }

  /** Whether `spreadCommit` would tell some follower anything now. */
  hasUntoldCommit(): boolean {
    if (this.role !== 'leader') return false;
    for (const pr of this.progress.values()) {
      if (Math.min(pr.match, this.log.committed) > pr.commitSent) return true;
    }
    return false;
  }

  /** Hands leadership to `to` (thesis §3.10). */
  transferLeadership(to: NodeId): RequestResult {
    if (this.role !== 'leader') {
      return { ok: false, refusal: notLeader(this.leader, 'a leadership transfer') };
    }
    const problem =
      to === this.id
        ? `${to} is already the leader`
        : !isVoter(this.log.membership(), to)
          ? `${to} is not a voting member`
          : null;
    if (problem !== null)
      return { ok: false, refusal: { kind: 'invalidTransfer', message: problem } };
    if (this.leadTransferee === to) return { ok: true };
    this.leadTransferee = to;
    // The transfer must finish within an election timeout or it is abandoned.
    this.electionElapsed = 0;
    const pr = this.progress.get(to);
    assert(pr !== undefined, `no progress for voter ${to}`);
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.needsAppend.set(to, 'evenIfEmpty');
    return { ok: true };
  }

  /**
   * The application durably saved a snapshot of its state at `index` (<=
   * applied) (§7); it is the one sent to followers from now on. Entries up
   * to `compactTo` (<= the latest snapshot's index; default `index`) are
   * discarded. Keeping some before the snapshot lets followers a little
   * behind catch up by appends instead of a whole snapshot; calling again
   * with the same `index` and a higher `compactTo` discards more.
   */
  compact(index: LogIndex, compactTo: LogIndex = index): void {
    this.log.compact(index, compactTo);
  }

  /** The runtime finished (ok) or gave up streaming a snapshot to `to`. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.progress.get(to);
    if (this.role !== 'leader' || pr === undefined || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = logIndex(0);
    pr.becomeProbe();
    // Wait for the follower's answer (or a heartbeat response) before probing.
    pr.probeSent = true;
  }

  /** The runtime could not reach `to`: stop pipelining to it. */
  reportUnreachable(to: NodeId): void {
    const pr = this.progress.get(to);
    if (this.role === 'leader' && pr !== undefined && pr.state === 'replicate') pr.becomeProbe();
  }

  // ---------------------------------------------------------------------
  // Output

  hasReady(): boolean {
    this.flush();
    return (
      this.msgs.length > 0 ||
      this.msgsAfterPersist.length > 0 ||
      this.readStates.length > 0 ||
      this.log.hasUnpersisted() ||
      this.log.hasSnapshotToInstall() ||
      this.log.hasCommittedToApply() ||
      this.softChanged() ||
      this.hardChanged()
    );
  }

  ready(): Ready {
    this.flush();
    const hs = this.hardState();
    const hardChanged = this.hardChanged();
    const soft = this.softState();
    const snapshot = this.log.takeSnapshotToInstall();
    const entries = this.log.takeUnpersisted();
    // Every message carries the current term. Until that term (and vote) is
    // durable, nothing may leave: a node that crashed before the write would
    // come back in the old term and could reuse the new one for different
    // entries (a single voter wins without asking anyone, so its appends are
    // the first messages of its term).
    const termDurable = this.durableTerm === this.term && this.durableVote === this.vote;
    const messages = termDurable ? this.msgs : [];
    const messagesAfterPersist = termDurable
      ? this.msgsAfterPersist
      : [...this.msgs, ...this.msgsAfterPersist];
    const rd: Ready = {
      softState: this.softChanged() ? soft : null,
      hardState: hardChanged ? hs : null,
      snapshot,
      entries,
      mustSync:
        entries.length > 0 ||
        snapshot !== null ||
        hs.term !== this.prevHard.term ||
        hs.vote !== this.prevHard.vote,
      messages,
      messagesAfterPersist,
      committedEntries: this.log.takeCommitted(this.cfg.appendBytesMax * 4),
      readStates: this.readStates,
    };
    this.msgs = [];
    this.msgsAfterPersist = [];
    this.readStates = [];
    this.prevSoft = soft;
    this.prevHard = hs;
    return rd;
  }

  /** Acknowledges a Ready: persisted, sent, applied. Call in the order Readys were handed out. */
  advance(rd: Ready): void {
    if (rd.hardState !== null) {
      this.durableTerm = rd.hardState.term;
      this.durableVote = rd.hardState.vote;
    }
    if (rd.snapshot !== null) this.log.snapshotInstalled(rd.snapshot);
    const last = rd.entries.at(-1);
    if (last !== undefined) this.log.stableTo(last.index, last.term);
    const applied = rd.committedEntries.at(-1);
    if (applied !== undefined) this.log.appliedTo(applied.index);
    // The leader counts its own durable entries towards the quorum (thesis §10.2.1).
    if (this.role === 'leader' && last !== undefined) this.maybeCommit();
    this.checkInvariants();
  }

  // ---------------------------------------------------------------------
  // Inspection

  status(): Status {
    const progress = new Map<NodeId, FollowerStatus>();
    for (const [id, pr] of this.progress) {
      progress.set(id, {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        recentActive: pr.recentActive,
        pendingSnapshot: pr.pendingSnapshot,
      });
    }
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.leader,
      commit: this.log.committed,
      applied: this.log.applied,
      stable: this.log.stable,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      membership: this.log.membership(),
      snapshot: this.log.latestSnapshot,
      leadTransferee: this.leadTransferee,
      progress,
    };
  }

  /** The entry at `index`, if in memory (after the snapshot). */
  entry(index: LogIndex): Entry | undefined {
    return this.log.entry(index);
  }

  /** What the entry at `index` counts against byte limits (`entryBytes`), if in memory. */
  entryBytesAt(index: LogIndex): number | undefined {
    return this.log.entryBytesAt(index);
  }

  // ---------------------------------------------------------------------
  // Terms and roles (§5.1, §5.2)

  /**
   * Applies the term rules common to every message. Returns whether the
   * message should be processed further.
   */
  private stepTerm(m: Message): boolean {
    if (m.term > this.term) return this.stepHigherTerm(m);
    if (this.rules.isStale(m.type, m.term, this.term)) {
      this.answerStaleMessage(m);
      return false;
    }
    return true;
  }

  private stepHigherTerm(m: Message): boolean {
    if (m.type === 'vote' || m.type === 'preVote') {
      if (!m.transfer && this.inLease()) return false;
      // A pre-vote changes nothing until the candidate wins it (thesis §9.6).
      if (m.type === 'preVote') return true;
      this.becomeFollower(m.term, noNode);
      return true;
    }
    // A granted pre-vote carries the term the candidate asked for.
    if (m.type === 'preVoteResponse' && m.granted) return true;
    const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot';
    this.becomeFollower(m.term, fromLeader ? m.from : noNode);
    return true;
  }

  /**
   * A deposed leader may keep sending after this node moved on (e.g. after a
   * partition). With CheckQuorum or PreVote, terms do not rise on their own,
   * so tell it the current term, or it would never step down.
   */
  private answerStaleMessage(m: Message): void {
    if (
      (this.cfg.checkQuorum || this.cfg.preVote) &&
      (m.type === 'append' || m.type === 'heartbeat')
    ) {
      this.send({ type: 'heartbeatResponse', from: this.id, to: m.from, term: this.term, seq: 0 });
    } else if (m.type === 'preVote') {
      this.send({
        type: 'preVoteResponse',
        from: this.id,
        to: m.from,
        term: this.term,
        granted: false,
      });
    }
  }

  /** Thesis §6.2: has this node heard from a leader within an election timeout? */
  private inLease(): boolean {
    if (!this.cfg.checkQuorum) return false;
    return this.role === 'leader' || this.leaderContactElapsed < this.cfg.electionTimeoutTicks;
  }

  private handleVoteRequest(m: VoteMessage): void {
    const isPre = m.type === 'preVote';
    const mayVote = this.rules.mayVoteFor(
      m.from,
      this.vote,
      this.leader,
      isPre && m.term > this.term,
    );
    const upToDate = this.rules.isUpToDate(
      m.lastIndex,
      m.lastTerm,
      this.log.lastIndex(),
      this.log.lastTerm(),
    );
    const granted = mayVote && upToDate;
    const responseType = isPre ? 'preVoteResponse' : 'voteResponse';
    if (granted && !isPre) {
      assert(this.vote === noNode || this.vote === m.from, `second vote in term ${this.term}`);
      this.vote = m.from;
      this.electionElapsed = 0;
    }
    const response: VoteResponseMessage = {
      type: responseType,
      from: this.id,
      to: m.from,
      // A granted pre-vote answers in the candidate's future term so it is not stale.
      term: granted && isPre ? m.term : this.term,
      granted,
    };
    // A vote must be durable before the candidate may count it (Figure 2).
    this.send(response, !isPre);
  }

  private becomeFollower(t: Term, leader: NodeId): void {
    this.reset(t);
    this.role = 'follower';
    this.leader = leader;
    if (leader !== noNode) this.leaderContactElapsed = 0;
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become pre-candidate');
    // Thesis §9.6: no term change and no vote until the pre-vote is won.
    this.votes.clear();
    this.progress.clear();
    this.leader = noNode;
    this.role = 'preCandidate';
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become candidate');
    this.reset(toTerm(this.term + 1));
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', `${this.role} cannot become leader`);
    this.reset(this.term);
    this.role = 'leader';
    this.leader = this.id;
    this.leaseRevoked = false;
    this.syncProgressWithMembership();
    for (const pr of this.progress.values()) pr.recentActive = true;
    // §8: a new leader commits an entry of its own term to learn what is committed.
    this.appendAsLeader({
      kind: 'normal',
      term: this.term,
      index: this.nextIndex(),
      data: emptyData,
    });
  }

  private reset(t: Term): void {
    if (t !== this.term) {
      assert(t > this.term, `term moving back from ${this.term} to ${t}`);
      this.term = t;
      this.vote = noNode;
    }
    this.leader = noNode;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.votes.clear();
    this.progress.clear();
    this.needsAppend.clear();
    this.leadTransferee = noNode;
    this.uncommittedBytes = 0;
    this.reads = new ReadIndexTracker(this.cfg.pendingReadsMax);
    this.readsAwaitingTermCommit = [];
  }

  private resetRandomizedElectionTimeout(): void {
    const base = this.cfg.electionTimeoutTicks;
    this.randomizedElectionTimeout = base + this.cfg.random.int(base);
  }

  /**
   * May this node campaign? A voter of the latest membership may. So may a
   * node removed by a change that is not committed yet: it may have to lead
   * to get that change committed (a removed leader that lost its term before
   * the removal committed would otherwise leave the cluster stuck). It counts
   * votes by the latest membership, so election safety holds either way.
   */
  private promotable(): boolean {
    const log = this.log;
    if (isVoter(log.membership(), this.id)) return true;
    const lastConf = log.lastConfIndex();
    return lastConf > log.committed && isVoter(log.membershipAt(logIndex(lastConf - 1)), this.id);
  }

  // ---------------------------------------------------------------------
  // Elections (§5.2, thesis §9.6)

  private tickElection(): void {
    this.electionElapsed++;
    this.leaderContactElapsed++;
    if (!this.promotable() || this.electionElapsed < this.randomizedElectionTimeout) return;
    this.electionElapsed = 0;
    this.campaign(this.cfg.preVote ? 'preElection' : 'election');
  }

  private campaign(kind: CampaignKind): void {
    if (!this.promotable()) return;
    const isPre = kind === 'preElection';
    if (isPre) this.becomePreCandidate();
    else this.becomeCandidate();
    const voteTerm = isPre ? toTerm(this.term + 1) : this.term;
    if (this.poll(this.id, true) === 'won') {
      this.onElectionWon();
      return;
    }
    for (const voter of this.log.membership().voters) {
      if (voter === this.id) continue;
      const request: VoteMessage = {
        type: isPre ? 'preVote' : 'vote',
        from: this.id,
        to: voter,
        term: voteTerm,
        lastIndex: this.log.lastIndex(),
        lastTerm: this.log.lastTerm(),
        transfer: kind === 'transfer',
      };
      // The candidate's vote for itself must be durable before it asks (Figure 2).
      this.send(request, !isPre);
    }
  }

  private poll(from: NodeId, granted: boolean): VoteOutcome {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    return voteOutcome(this.log.membership().voters, this.votes);
  }

  private onElectionWon(): void {
    if (this.role === 'preCandidate') this.campaign('election');
    else this.becomeLeader();
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // A leader exists in this term (§5.2): recognize it.
        this.becomeFollower(this.term, m.from);
        this.stepFollower(m);
        return;
      case 'voteResponse':
      case 'preVoteResponse': {
        if ((m.type === 'voteResponse') !== (this.role === 'candidate')) return;
        const outcome = this.poll(m.from, m.granted);
        if (outcome === 'won') this.onElectionWon();
        else if (outcome === 'lost') this.becomeFollower(this.term, noNode);
        return;
      }
      default:
        return;
    }
  }

  // ---------------------------------------------------------------------
  // Followers (§5.3, §7)

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.heardFromLeader(m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.heardFromLeader(m.from);
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.heardFromLeader(m.from);
        this.handleSnapshot(m);
        return;
      case 'timeoutNow':
        // Thesis §3.10: campaign at once, skipping the pre-vote; voters set aside their lease.
        this.campaign('transfer');
        return;
      case 'readIndexResponse':
        this.readStates.push({ context: m.context, index: m.index });
        return;
      default:
        return;
    }
  }

  private heardFromLeader(from: NodeId): void {
    this.electionElapsed = 0;
    this.leaderContactElapsed = 0;
    this.leader = from;
  }

  private handleAppend(m: AppendMessage): void {
    const committed = this.log.committed;
    if (m.prevIndex < committed) {
      // Everything up to our commit index matches the leader's log already.
      this.sendAppendAccept(m.from, committed);
      return;
    }
    if (!this.rules.logMatches(this.log.term(m.prevIndex), m.prevTerm)) {
      this.sendAppendReject(m);
      return;
    }
    const lastNew = this.log.acceptFromLeader(m.prevIndex, m.entries);
    this.log.commitTo(logIndex(Math.min(m.commit, lastNew)));
    this.sendAppendAccept(m.from, lastNew);
  }

  private sendAppendAccept(to: NodeId, matchIndex: LogIndex): void {
    const accept: AppendAcceptMessage = {
      type: 'appendAccept',
      from: this.id,
      to,
      term: this.term,
      matchIndex,
    };
    // Acknowledges entries, so only once they are durable (Figure 2).
    this.send(accept, true);
  }

  /** §5.3 back-off hint: the conflicting term and the first index this log holds for it. */
  private sendAppendReject(m: AppendMessage): void {
    const last = this.log.lastIndex();
    let hintIndex: LogIndex;
    let hintTerm: Term;
    if (m.prevIndex > last) {
      hintIndex = logIndex(last + 1);
      hintTerm = toTerm(0);
    } else {
      const t = this.log.term(m.prevIndex);
      if (t === undefined) {
        fail(`term unknown at ${m.prevIndex} above commit ${this.log.committed}`);
      }
      hintTerm = t;
      hintIndex = logIndex(
        Math.max(this.log.firstIndexOfTermAt(m.prevIndex), this.log.committed + 1),
      );
    }
    const reject: AppendRejectMessage = {
      type: 'appendReject',
      from: this.id,
      to: m.from,
      term: this.term,
      rejectedIndex: m.prevIndex,
      hintIndex,
      hintTerm,
    };
    this.send(reject);
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    // The leader sends min(match, commit), so every entry up to it is here.
    this.log.commitTo(m.commit);
    if (m.seq === commitNoticeSeq) return; // a commit notice wants no answer
    const response: HeartbeatResponseMessage = {
      type: 'heartbeatResponse',
      from: this.id,
      to: m.from,
      term: this.term,
      seq: m.seq,
    };
    this.send(response);
  }

  private handleSnapshot(m: SnapshotMessage): void {
    const s = m.snapshot;
    if (s.index <= this.log.committed) {
      this.sendAppendAccept(m.from, this.log.committed);
      return;
    }
    if (this.log.matchTerm(s.index, s.term)) {
      // We already hold the entries the snapshot covers (§7: retain the log after it).
      this.log.commitTo(s.index);
    } else {
      this.log.restore(s);
    }
    this.sendAppendAccept(m.from, s.index);
  }

  // ---------------------------------------------------------------------
  // Leaders (§5.3, §5.4, §6.4, thesis §3.10, §4)

  private tickLeader(): void {
    this.electionElapsed++;
    this.heartbeatElapsed++;
    if (this.electionElapsed >= this.cfg.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum && !this.quorumActive()) {
        // Thesis §6.2: without a quorum this leader could be deposed unawares.
        this.becomeFollower(this.term, noNode);
        return;
      }
      for (const pr of this.progress.values()) pr.recentActive = false;
      if (this.leadTransferee !== noNode) this.leadTransferee = noNode;
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
  }

  private quorumActive(): boolean {
    const voters = this.log.membership().voters;
    const active = voters.filter(
      (v) => v === this.id || this.progress.get(v)?.recentActive === true,
    ).length;
    return active >= Math.floor(voters.length / 2) + 1;
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'appendAccept':
        this.handleAppendAccept(m);
        return;
      case 'appendReject':
        this.handleAppendReject(m);
        return;
      case 'heartbeatResponse':
        this.handleHeartbeatResponse(m);
        return;
      case 'readIndex':
        this.handleReadRequest(m.from, m.context);
        return;
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        assert(false, `two leaders in term ${this.term}: ${this.id} and ${m.from}`);
        return;
      default:
        return;
    }
  }

  private handleAppendAccept(m: AppendAcceptMessage): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    if (m.matchIndex > this.log.lastIndex()) {
      fail(`${m.from} matched ${m.matchIndex} beyond our log`);
    }
    pr.recentActive = true;
    if (!pr.maybeUpdate(m.matchIndex, this.ticks)) return;
    if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else {
      pr.inflights.freeLE(m.matchIndex);
    }
    this.maybeCommit();
    if (pr.match < this.log.lastIndex()) this.oweEntries(m.from);
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.sendTimeoutNow(m.from);
    }
  }

  private handleAppendReject(m: AppendRejectMessage): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (pr.maybeDecrTo(m.rejectedIndex, this.nextFromHint(m))) {
      this.needsAppend.set(m.from, 'evenIfEmpty');
    }
  }

  /** Where to retry after a rejection, from the follower's hint (§5.3). */
  private nextFromHint(m: AppendRejectMessage): LogIndex {
    if (m.hintTerm === 0) return m.hintIndex;
    const j = this.log.lastIndexOfTerm(m.hintTerm, m.rejectedIndex);
    return j === undefined ? m.hintIndex : logIndex(j + 1);
  }

  private handleHeartbeatResponse(m: HeartbeatResponseMessage): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.probeSent = false;
    // The link works again: let one more append through even if the window is full.
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirst();
    // §5.3: the leader retries appends until the follower has every entry.
    // The link works, so resend (an empty append probes the follower's log
    // end) unless the pipeline is draining: in replicate state, a follower
    // whose match moved during this tick is answering the appends in flight.
    // An append it lost shows up as a rejection of the next one, or, if none
    // follows, at a heartbeat response in a later tick (heartbeats go out
    // every heartbeatTicks). etcd retries on every heartbeat response; with
    // reads and writes together (read rounds at ~1,000/s) that was an empty
    // append and its answer per round and follower.
    if (pr.match < this.log.lastIndex() && (pr.state !== 'replicate' || pr.stalledIn(this.ticks))) {
      this.needsAppend.set(m.from, 'evenIfEmpty');
    }
    this.reads.ack(m.from, m.seq);
    this.releaseConfirmedReads();
  }

  /**
   * §5.3, §5.4.2: commit the highest index stored on a majority of voters,
   * if it is of the current term. Appends and heartbeats spread it, and
   * `spreadCommit` (commit notices) when none did soon enough.
   */
  private maybeCommit(): void {
    const voters = this.log.membership().voters;
    // Reused: this runs per acknowledgement, and a fresh array and closure
    // per call were garbage on every write's path.
    if (this.matchScratch.length !== voters.length) this.matchScratch = voters.map(() => 0);
    const matches = this.matchScratch;
    for (let i = 0; i < voters.length; i++) {
      const v = voters[i] as NodeId;
      matches[i] = v === this.id ? this.log.stable : (this.progress.get(v)?.match ?? 0);
    }
    const candidate = logIndex(this.rules.quorumValue(matches));
    if (candidate <= this.log.committed) return;
    const t = this.log.term(candidate);
    if (t === undefined) fail(`quorum index ${candidate} not in the log`);
    if (!this.rules.mayCommitByCounting(t, this.term)) return;
    const before = this.log.committed;
    this.log.commitTo(candidate);
    this.uncommittedBytes = Math.max(
      0,
      this.uncommittedBytes - this.log.bytesBetween(logIndex(before + 1), candidate),
    );
    this.onCommitAdvanced();
  }

  private onCommitAdvanced(): void {
    if (
      this.log.term(this.log.committed) === this.term &&
      this.readsAwaitingTermCommit.length > 0
    ) {
      const waiting = this.readsAwaitingTermCommit;
      this.readsAwaitingTermCommit = [];
      for (const r of waiting) this.handleReadRequest(r.requester, r.context);
    }
    // Thesis §4.2.2: a leader removed from the membership steps down once that is committed.
    if (!this.promotable() && this.log.committed >= this.log.lastConfIndex()) {
      this.becomeFollower(this.term, noNode);
    }
  }

  private appendAsLeader(e: Entry): void {
    assert(this.role === 'leader', 'only a leader appends its own entries');
    if (e.term !== this.term) fail(`leader appending entry of term ${e.term} in term ${this.term}`);
    this.log.append([e]);
    this.uncommittedBytes += entryBytes(e);
    for (const id of this.progress.keys()) this.oweEntries(id);
  }

  /** `id` is owed the entries it lacks at the next flush (an empty append only if already owed). */
  private oweEntries(id: NodeId): void {
    const owed = this.needsAppend.get(id);
    if (owed === undefined || owed === 'nothing') this.needsAppend.set(id, 'entries');
  }

  private nextIndex(): LogIndex {
    return logIndex(this.log.lastIndex() + 1);
  }

  private checkCanPropose(what: string): Refusal | null {
    if (this.role !== 'leader') return notLeader(this.leader, what);
    if (this.leadTransferee !== noNode) {
      return {
        kind: 'transferInProgress',
        message: `leadership is being handed to ${this.leadTransferee}; retry there shortly`,
      };
    }
    return null;
  }

  private checkConfChange(change: ConfChange): Refusal | null {
    if (this.log.term(this.log.committed) !== this.term) {
      return {
        kind: 'leaderNotReady',
        message:
          'the new leader has not yet committed an entry of its term (thesis §4.1); retry shortly',
      };
    }
    if (this.log.lastConfIndex() > this.log.committed) {
      return {
        kind: 'confChangeInProgress',
        message: `the membership change at index ${this.log.lastConfIndex()} is not committed yet; retry when it is`,
      };
    }
    const problem = validateConfChange(this.log.membership(), change);
    return problem === null ? null : { kind: 'invalidConfChange', message: problem };
  }

  /** Keeps one Progress per other member of the (latest) membership. */
  private syncProgressWithMembership(): void {
    const current = new Set(members(this.log.membership()));
    for (const id of this.progress.keys()) {
      if (!current.has(id)) {
        this.progress.delete(id);
        this.needsAppend.delete(id);
        if (this.leadTransferee === id) this.leadTransferee = noNode;
      }
    }
    for (const id of current) {
      if (id === this.id || this.progress.has(id)) continue;
      const pr = new Progress(
        this.nextIndex(),
        this.cfg.inflightMessagesMax,
        this.cfg.inflightBytesMax,
      );
      this.progress.set(id, pr);
      this.needsAppend.set(id, 'evenIfEmpty');
    }
  }

  private sendTimeoutNow(to: NodeId): void {
    // From here on the target may be elected without waiting out followers'
    // leases, so this leader's lease can no longer be trusted.
    this.leaseRevoked = true;
    this.send({ type: 'timeoutNow', from: this.id, to, term: this.term });
  }

  // ---------------------------------------------------------------------
  // Replication: batched, pipelined, flow-controlled

  /** Turns pending work into messages: a new read round, then appends. */
  private flush(): void {
    if (this.role !== 'leader') return;
    if (this.reads.wantsRound()) this.broadcastHeartbeat();
    for (const [id, owed] of this.needsAppend) {
      if (owed === 'nothing') continue;
      this.needsAppend.set(id, 'nothing');
      let sent = this.sendAppend(id, owed === 'evenIfEmpty');
      for (let i = 0; sent && i < this.cfg.inflightMessagesMax; i++)
        sent = this.sendAppend(id, false);
    }
  }

  /**
   * Tells `to` as much of the commit index as it can act on, min(match,
   * commit) as in a heartbeat, unless an append or heartbeat already told
   * it: a heartbeat with seq `commitNoticeSeq`, which the follower does not
   * answer. It costs no reply, nor an append the follower must check against
   * its log. A lost notice delays the follower's apply until the next
   * heartbeat; the commit index is never acted on unsafely, since the
   * follower holds every entry up to its match.
   */
  private sendCommitNotice(to: NodeId): void {
    const pr = this.progress.get(to);
    if (pr === undefined) return;
    const commit = logIndex(Math.min(pr.match, this.log.committed));
    if (!pr.toldCommit(commit)) return;
    this.send({
      type: 'heartbeat',
      from: this.id,
      to,
      term: this.term,
      commit,
      seq: commitNoticeSeq,
    });
  }

  /** Sends one append (or a snapshot) to `to`. Returns whether more may follow. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const last = this.log.lastIndex();
    if (pr.next > last + 1) fail(`next ${pr.next} for ${to} beyond last index ${last}`);
    const prevIndex = logIndex(pr.next - 1);
    const prevTerm = this.log.term(prevIndex);
    const entries = this.log.slice(
      pr.next,
      logIndex(last + 1),
      this.cfg.appendEntriesMax,
      this.cfg.appendBytesMax,
    );
    if (prevTerm === undefined || entries === undefined) {
      this.sendSnapshot(to, pr);
      return false;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    const append: AppendMessage = {
      type: 'append',
      from: this.id,
      to,
      term: this.term,
      prevIndex,
      prevTerm,
      entries,
      commit: this.log.committed,
    };
    this.send(append);
    // Accepted, it commits up to the last entry it carries (handleAppend).
    const told = logIndex(Math.min(append.commit, prevIndex + entries.length));
    pr.toldCommit(told);
    let bytes = 0;
    for (const e of entries) bytes += entryBytes(e);
    pr.sentAppend(logIndex(prevIndex + entries.length), bytes, entries.length);
    return entries.length > 0 && pr.state === 'replicate';
  }

  private sendSnapshot(to: NodeId, pr: Progress): void {
    // The newest one: the log holds every entry after it (it is at or after
    // the point the log was compacted to), so the follower continues by appends.
    const snapshot = this.log.latestSnapshot;
    pr.becomeSnapshot(snapshot.index);
    this.send({ type: 'snapshot', from: this.id, to, term: this.term, snapshot });
  }

  private broadcastHeartbeat(): void {
    const round = this.reads.startRound(this.ticks);
    for (const [id, pr] of this.progress) {
      const heartbeat: HeartbeatMessage = {
        type: 'heartbeat',
        from: this.id,
        to: id,
        term: this.term,
        commit: logIndex(Math.min(pr.match, this.log.committed)),
        seq: round,
      };
      pr.toldCommit(heartbeat.commit);
      this.send(heartbeat);
    }
    this.releaseConfirmedReads();
  }

  // ---------------------------------------------------------------------
  // Linearizable reads (thesis §6.4)

  private handleReadRequest(requester: NodeId, context: string): RequestResult {
    if (this.reads.isFull() || this.readsAwaitingTermCommit.length >= this.cfg.pendingReadsMax) {
      return {
        ok: false,
        refusal: {
          kind: 'overloaded',
          message: `${this.cfg.pendingReadsMax} reads are already waiting for confirmation; retry shortly`,
        },
      };
    }
    if (this.log.term(this.log.committed) !== this.term) {
      // Until an entry of this term commits, our commit index may be stale.
      this.readsAwaitingTermCommit.push({ requester, context });
      return { ok: true };
    }
    const index = this.log.committed;
    if (this.isSoleVoter() || this.leaseHolds()) {
      this.answerRead(requester, context, index);
    } else {
      this.reads.add(requester, context, index);
    }
    return { ok: true };
  }

  /** Only then can no other leader exist: a leader removed from the membership is not it. */
  private isSoleVoter(): boolean {
    const voters = this.log.membership().voters;
    return voters.length === 1 && voters[0] === this.id;
  }

  private confirmedRound(): number {
    const voters = this.log.membership().voters;
    const acked = voters.map((v) =>
      v === this.id ? this.reads.currentRound() : this.reads.ackedRound(v),
    );
    return this.rules.quorumValue(acked);
  }

  private releaseConfirmedReads(): void {
    if (this.reads.pendingCount() === 0) return;
    for (const r of this.reads.release(this.confirmedRound())) {
      this.answerRead(r.requester, r.context, r.index);
    }
  }

  private answerRead(requester: NodeId, context: string, index: LogIndex): void {
    if (requester === this.id) {
      this.readStates.push({ context, index });
    } else {
      // The follower serves the read once it applied `index`: tell it the
      // commit first rather than leave it to the next append or heartbeat.
      this.sendCommitNotice(requester);
      this.send({
        type: 'readIndexResponse',
        from: this.id,
        to: requester,
        term: this.term,
        context,
        index,
      });
    }
  }

  /**
   * A lease holds while a quorum acknowledged a heartbeat round sent less
   * than (election timeout − margin) ticks ago: those followers ignore
   * candidates for a full election timeout after receiving it.
   */
  private leaseHolds(): boolean {
    if (this.cfg.readMode !== 'lease' || this.leaseRevoked || this.leadTransferee !== noNode) {
      return false;
    }
    const sent = this.reads.sentTick(this.confirmedRound());
    if (sent === undefined) return false;
    return this.ticks - sent < this.cfg.electionTimeoutTicks - this.cfg.leaseMarginTicks;
  }

  // ---------------------------------------------------------------------
  // Helpers

  /**
   * Cheap whole-state invariants, checked after every input. Conditions are
   * tested inline so no message is built unless one fails.
   */
  private checkInvariants(): void {
    const log = this.log;
    const last = log.lastIndex();
    // The snapshot may be ahead of applied while the runtime installs it.
    if (
      !(
        log.snapshot.index <= log.latestSnapshot.index &&
        log.latestSnapshot.index <= log.applying &&
        log.applied <= log.applying &&
        log.applying <= log.committed &&
        log.committed <= last
      )
    ) {
      fail(
        `log marks out of order: compacted to ${log.snapshot.index} latest snapshot ${log.latestSnapshot.index} applied ${log.applied} applying ${log.applying} committed ${log.committed} last ${last}`,
      );
    }
    if (!(log.stable <= log.persisting && log.persisting <= last)) {
      fail(
        `persistence marks out of order: stable ${log.stable} persisting ${log.persisting} last ${last}`,
      );
    }
    const p = this.prevHard;
    if (log.committed < p.commit) fail(`commit went back from ${p.commit} to ${log.committed}`);
    if (this.term < p.term) fail(`term went back from ${p.term} to ${this.term}`);
    if (this.term === p.term && p.vote !== noNode && this.vote !== p.vote) {
      fail(`vote changed from ${p.vote} to ${this.vote} within term ${this.term}`);
    }
    if (log.lastTerm() > this.term)
      fail(`log term ${log.lastTerm()} above current term ${this.term}`);
    if ((this.role === 'leader') !== (this.leader === this.id)) {
      fail(`role ${this.role} with leader ${this.leader}`);
    }
  }

  private send(m: Message, afterPersist = false): void {
    if (m.to === this.id) fail(`sending ${m.type} to self`);
    if (afterPersist) this.msgsAfterPersist.push(m);
    else this.msgs.push(m);
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private softState(): SoftState {
    return { role: this.role, leader: this.leader };
  }

  private hardChanged(): boolean {
    const p = this.prevHard;
    return p.term !== this.term || p.vote !== this.vote || p.commit !== this.log.committed;
  }

  private softChanged(): boolean {
    return this.prevSoft.role !== this.role || this.prevSoft.leader !== this.leader;
  }
}
