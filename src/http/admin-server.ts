/**
 * The per-node admin HTTP server: liveness, readiness, status, Prometheus
 * metrics and manual failover. It only reads the node's state, except for
 * the transfer-leadership endpoint.
 *
 * @example
 * const admin = new AdminServer({ node, host: '127.0.0.1', port: 8379, logger });
 * const address = await admin.start();   // { host: '127.0.0.1', port: 8379 }
 * // curl http://127.0.0.1:8379/ready
 * await admin.close();
 */

import { Readable } from 'node:stream';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Reply } from '../kv/reply.js';
import type { BackupMeta } from '../node/backup.js';
import type { Alarm, MemberRecord } from '../node/member-registry.js';
import type { AdminAnswer } from '../node/membership-admin.js';
import { bestTransferee } from '../node/membership-rules.js';
import { RaftRefusedError } from '../node/raft-driver.js';
import type { NodeInfo } from '../node/tandem-node.js';
import type { NodeId, Role } from '../raft/types.js';
import { nodeId } from '../raft/types.js';
import { type FilesNode, fileRoutes } from './file-routes.js';

/** What the admin server needs from a node (TandemNode provides it). */
export interface AdminNode {
  readonly isLeader: boolean;
  /** The data directory's identity (see src/node/member-registry.ts). */
  readonly incarnation: string;
  info(): NodeInfo;
  /** The member registry: each member's addresses and incarnation. */
  members(): readonly MemberRecord[];
  /** Raised alarms (NOSPACE), cluster-wide. */
  alarms(): readonly Alarm[];
  /** Reports each durable write's time from storage hand-over to fsync done (ms). */
  onPersisted(listener: (ms: number) => void): void;
  addMember(record: MemberRecord): Promise<AdminAnswer>;
  promoteMember(id: string, force: boolean): Promise<AdminAnswer>;
  removeMember(id: string, force: boolean): Promise<AdminAnswer>;
  peerStats(): Readonly<Record<string, PeerCounters>>;
  driverStats(): {
    readonly proposals: number;
    readonly applied: number;
    readonly persists: number;
    readonly slowPersists: number;
    readonly snapshots: number;
    readonly readRounds: number;
    readonly walBatches: number;
    readonly walBytes: number;
    readonly walPreparedRotations: number;
    readonly walPlainRotations: number;
  };
  transferLeadership(to: NodeId): void;
  /** A backup as of a committed index (see src/node/backup.ts), or the error why not. */
  backup(): Promise<{ meta: BackupMeta; stream: AsyncIterable<Uint8Array> } | Reply>;
  /** Counters kept by the node itself. */
  readonly counters: { readonly degradedHandovers: number };
  /** SHA-256 of the keyspace and the applied index it is as of (one synchronous read). */
  digest(): { readonly applied: number; readonly digest: string };
  /** The kv string arena's bytes (off the JS heap) and compactions, and the key tables' bytes. */
  kvArena(): {
    readonly reservedBytes: number;
    readonly liveBytes: number;
    readonly freeBytes: number;
    readonly compactions: number;
    readonly keyTableBytes: number;
  };
}

/** What the metrics read of one peer link. */
export interface PeerCounters {
  readonly connected: boolean;
  readonly queueBytes: number;
  readonly framesSent: number;
  readonly framesReceived: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

export interface AdminServerOptions {
  readonly node: AdminNode;
  readonly host: string;
  readonly port: number;
  /** Fastify logs through it (request logging is off); omit to disable logging. */
  readonly logger?: Logger;
  /** How far `applied` may trail `commit` for /ready to answer 200. */
  readonly readyLagEntriesMax?: number;
  /** Serves the file API (issue 6, file-routes.ts) when given. */
  readonly files?: { readonly node: FilesNode; readonly uploadBytesMax?: number };
}

export type Readiness =
  | { readonly ready: true }
  | { readonly ready: false; readonly reason: string };

const roles: readonly Role[] = ['follower', 'preCandidate', 'candidate', 'leader'];
const readyLagEntriesDefault = 100;

/** Whether a node can serve linearizable requests now. Pure, for tests and /ready. */
export function readiness(info: NodeInfo, draining: boolean, lagEntriesMax: number): Readiness {
  if (draining) return { ready: false, reason: 'the node is shutting down' };
  if (info.leader === '') return { ready: false, reason: 'no leader: an election is in progress' };
  const lag = info.commit - info.applied;
  if (lag > lagEntriesMax) {
    return {
      ready: false,
      reason: `applying the log: applied ${info.applied} trails commit ${info.commit} by ${lag} entries (at most ${lagEntriesMax})`,
    };
  }
  return { ready: true };
}

/** File paths (file-routes.ts) are long params, and a bad one deserves a clear 400. */
const routerOptions = {
  routerOptions: { maxParamLength: 2048 },
  frameworkErrors: (
    failure: { code?: string; message: string },
    _request: unknown,
    reply: FastifyReply,
  ) => {
    const bad = failure.code === 'FST_ERR_BAD_URL';
    reply.code(bad ? 400 : 500).send({
      error: bad
        ? 'the URL path is not valid percent-encoded UTF-8; encode the file path as UTF-8'
        : failure.message,
    });
  },
};

export class AdminServer {
  readonly app: FastifyInstance;
  readonly registry = new Registry();
  private draining = false;

  constructor(private readonly options: AdminServerOptions) {
    // Widened so the instance type does not depend on which logger was passed.
    const logger: FastifyBaseLogger | undefined = options.logger;
    this.app =
      logger === undefined
        ? Fastify({ logger: false, ...routerOptions })
        : Fastify({
            ...routerOptions,
            loggerInstance: logger,
            logController: new LogController({ disableRequestLogging: true }),
          });
    this.registerMetrics();
    this.registerRoutes();
    const files = options.files;
    if (files !== undefined) {
      this.registerFileMetrics(files.node);
      this.app.register(fileRoutes, {
        node: files.node,
        ...(files.uploadBytesMax === undefined ? {} : { uploadBytesMax: files.uploadBytesMax }),
      });
    }
  }

  /** Listens on exactly the configured host; resolves with the bound address. */
  async start(): Promise<{ host: string; port: number }> {
    await this.app.listen({ host: this.options.host, port: this.options.port });
    const address = this.app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    return { host: this.options.host, port };
  }

  /** From now on /ready answers 503, so load balancers stop sending traffic. */
  setDraining(): void {
    this.draining = true;
  }

  async close(): Promise<void> {
    await this.app.close();
  }

  private registerRoutes(): void {
    const node = this.options.node;
    const lagMax = this.options.readyLagEntriesMax ?? readyLagEntriesDefault;

    this.app.get('/health', async () => ({ status: 'ok' }));

    this.app.get('/ready', async (_request, reply) => {
      const info = node.info();
      const state = readiness(info, this.draining, lagMax);
      const body = { leader: info.leader, commit: info.commit, applied: info.applied };
      if (state.ready) return { status: 'ready', ...body };
      return reply.code(503).send({ status: 'unavailable', reason: state.reason, ...body });
    });

    this.app.get('/status', async () => ({
      ...node.info(),
      incarnation: node.incarnation,
      members: node.members(),
      alarms: node.alarms(),
      draining: this.draining,
      peers: node.peerStats(),
      driver: node.driverStats(),
    }));

    // Cross-node convergence checks (the chaos suite): equal applied, equal digest.
    this.app.get('/v1/admin/digest', async () => node.digest());

    this.app.get('/metrics', async (_request, reply) => {
      const text = await this.registry.metrics();
      return reply.type(this.registry.contentType).send(text);
    });

    this.app.post<{ Querystring: { to?: string } }>(
      '/v1/admin/transfer-leadership',
      async (request, reply) => {
        const info = node.info();
        if (!node.isLeader) {
          return reply.code(409).send({
            error: `${info.id} is not the leader; send this to the leader`,
            leader: info.leader === '' ? null : info.leader,
          });
        }
        const to = request.query.to ?? bestTransferee(info);
        if (to === undefined || to === '') {
          return reply.code(409).send({ error: 'no other voter to transfer leadership to' });
        }
        try {
          node.transferLeadership(nodeId(to));
        } catch (failure) {
          if (!(failure instanceof RaftRefusedError)) throw failure;
          const code = failure.refusal.kind === 'notLeader' ? 409 : 400;
          return reply.code(code).send({ error: failure.message, leader: node.info().leader });
        }
        return reply.code(202).send({ from: info.id, to, term: info.term });
      },
    );
    this.registerMembershipRoutes();
  }

  /**
   * Membership: list, add (as a learner), promote, remove. Changes go to the
   * leader; another node answers 421 with the leader's admin address.
   */
  private registerMembershipRoutes(): void {
    const node = this.options.node;
    const answer = (result: AdminAnswer, reply: FastifyReply) => {
      if (result.ok) return reply.code(200).send({ message: result.message });
      const leader = node.info().leader;
      const leaderHttp = node.members().find((m) => m.id === leader)?.http ?? '';
      return reply.code(result.status).send({ error: result.error, leader, leaderHttp });
    };
    this.app.get('/v1/admin/backup', async (_request, reply) => {
      const backup = await node.backup();
      if (!('stream' in backup)) {
        return reply.code(503).send({ error: 'message' in backup ? backup.message : 'no backup' });
      }
      const { snapshot } = backup.meta;
      return reply
        .type('application/octet-stream')
        .header('x-tandem-backup-index', String(snapshot.index))
        .header('x-tandem-backup-term', String(snapshot.term))
        .send(Readable.from(backup.stream));
    });
    this.app.get('/v1/admin/members', async () => {
      const info = node.info();
      return {
        leader: info.leader,
        voters: info.voters,
        learners: info.learners,
        members: node.members(),
        followers: info.followers,
      };
    });
    this.app.post<{ Body: MemberRecord }>(
      '/v1/admin/members',
      { schema: { body: memberBodySchema } },
      async (request, reply) => answer(await node.addMember(request.body), reply),
    );
    this.app.post<{ Params: { id: string }; Querystring: { force?: boolean } }>(
      '/v1/admin/members/:id/promote',
      { schema: { querystring: forceSchema } },
      async (request, reply) =>
        answer(await node.promoteMember(request.params.id, request.query.force === true), reply),
    );
    this.app.delete<{ Params: { id: string }; Querystring: { force?: boolean } }>(
      '/v1/admin/members/:id',
      { schema: { querystring: forceSchema } },
      async (request, reply) =>
        answer(await node.removeMember(request.params.id, request.query.force === true), reply),
    );
  }

  /** The file store's counters (issue 6), read when scraped. */
  private registerFileMetrics(node: FilesNode): void {
    const metric = scraped(this.registry);
    metric.gauge('tandem_files', 'Files visible on this node (manifests applied)', () =>
      node.files.fileCount(),
    );
    const stats = node.files.stats;
    metric.counter(
      'tandem_file_chunks_fetched_total',
      'Chunks this node fetched from a peer (missing after a snapshot, or corrupt here)',
      () => stats.fetched,
    );
    metric.counter(
      'tandem_file_chunks_corrupt_total',
      'Chunks found corrupt on this node when read (never served; replaced from a peer)',
      () => stats.corruptFound,
    );
    metric.counter(
      'tandem_file_chunks_collected_total',
      'Chunks no file referred to, deleted by garbage collection',
      () => stats.collected,
    );
  }

  /** Gauges and counters read the node when scraped, never in the background. */
  private registerMetrics(): void {
    const node = this.options.node;
    collectDefaultMetrics({ register: this.registry });
    const metric = scraped(this.registry, () => node.peerStats());
    const persisted = new Histogram({
      name: 'tandem_wal_persist_duration_seconds',
      help:
        'Time from handing entries (or a vote) to storage until they were durable: the WAL ' +
        "write with its fsync and any wait behind the previous batch (etcd's wal_fsync_duration)",
      buckets: [
        0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256,
        0.512, 1.024, 2.048,
      ],
      registers: [this.registry],
    });
    node.onPersisted((ms) => persisted.observe(ms / 1000));

    new Gauge({
      name: 'tandem_role',
      help: 'Current Raft role (1 for the current role, 0 otherwise)',
      labelNames: ['role'],
      registers: [this.registry],
      collect() {
        const role = node.info().role;
        for (const r of roles) this.set({ role: r }, r === role ? 1 : 0);
      },
    });
    metric.gauge('tandem_term', 'Current Raft term', () => node.info().term);
    metric.gauge(
      'tandem_commit_index',
      'Highest log index known committed',
      () => node.info().commit,
    );
    metric.gauge(
      'tandem_applied_index',
      'Highest log index applied to the state machine',
      () => node.info().applied,
    );

    const driver = (field: keyof ReturnType<AdminNode['driverStats']>) => () =>
      node.driverStats()[field];
    metric.counter(
      'tandem_proposals_total',
      'Entries proposed by this node as leader',
      driver('proposals'),
    );
    metric.counter(
      'tandem_applied_total',
      'Entries applied to the state machine',
      driver('applied'),
    );
    metric.counter(
      'tandem_slow_fsyncs_total',
      'Persists slower than the slow-disk threshold',
      driver('slowPersists'),
    );
    metric.counter('tandem_snapshots_total', 'Snapshots taken', driver('snapshots'));
    metric.counter(
      'tandem_persists_total',
      'Raft Readys persisted (entries and hard state handed to the WAL)',
      driver('persists'),
    );
    metric.counter(
      'tandem_read_rounds_total',
      'Read index rounds started (each serves every linearizable read queued before it)',
      driver('readRounds'),
    );
    metric.counter(
      'tandem_wal_syncs_total',
      'WAL batches written, one fdatasync each (group commit: entries per sync = appends / this)',
      driver('walBatches'),
    );
    metric.counter('tandem_wal_bytes_total', 'Bytes written to the WAL', driver('walBytes'));
    metric.counter(
      'tandem_wal_prepared_rotations_total',
      'WAL segment rotations into a segment prepared (zero-filled) in the background',
      driver('walPreparedRotations'),
    );
    metric.counter(
      'tandem_wal_plain_rotations_total',
      'WAL segment rotations into a new unprepared segment (none ready, or too little disk space to prepare)',
      driver('walPlainRotations'),
    );
    new Gauge({
      name: 'tandem_kv_arena_bytes',
      help:
        'Bytes of the kv string arena, outside the JS heap: reserved (pages held), live ' +
        '(slots holding values) and free (slots on the free lists)',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const arena = node.kvArena();
        this.set({ state: 'reserved' }, arena.reservedBytes);
        this.set({ state: 'live' }, arena.liveBytes);
        this.set({ state: 'free' }, arena.freeBytes);
      },
    });
    new Gauge({
      name: 'tandem_kv_key_table_bytes',
      help: 'Bytes of the kv key tables (hash indexes and key records), outside the JS heap',
      registers: [this.registry],
      collect() {
        this.set(node.kvArena().keyTableBytes);
      },
    });
    metric.counter(
      'tandem_kv_arena_compactions_total',
      'Times the kv string arena moved its values into a fresh one to give free slots back',
      () => node.kvArena().compactions,
    );
    metric.counter(
      'tandem_degraded_handovers_total',
      'Times this node, as a slow leader (fsync or event-loop delay), handed leadership over',
      () => node.counters.degradedHandovers,
    );

    new Gauge({
      name: 'tandem_peer_lag_entries',
      help: "Entries a follower trails the leader's log by (reported by the leader only)",
      labelNames: ['peer'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const f of node.info().followers) this.set({ peer: f.id }, f.lag);
      },
    });
    metric.perPeer(
      'gauge',
      'tandem_peer_connected',
      'Whether the peer link is up (1) or down (0)',
      (s) => (s.connected ? 1 : 0),
    );
    metric.perPeer(
      'gauge',
      'tandem_peer_queue_bytes',
      'Bytes queued for the peer',
      (s) => s.queueBytes,
    );
    metric.perPeer(
      'counter',
      'tandem_peer_frames_sent_total',
      'Frames sent to the peer',
      (s) => s.framesSent,
    );
    metric.perPeer(
      'counter',
      'tandem_peer_frames_received_total',
      'Frames received from the peer',
      (s) => s.framesReceived,
    );
    metric.perPeer(
      'counter',
      'tandem_peer_bytes_sent_total',
      'Bytes sent to the peer',
      (s) => s.bytesSent,
    );
    metric.perPeer(
      'counter',
      'tandem_peer_bytes_received_total',
      'Bytes received from the peer',
      (s) => s.bytesReceived,
    );
  }
}

/** A host:port field of a member record, as the API takes it. */
const hostPortText = { type: 'string', maxLength: 300 } as const;

/** A member record as the API takes it: id and peer required. */
const memberBodySchema = {
  type: 'object',
  required: ['id', 'peer'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' },
    peer: { type: 'string', minLength: 3, maxLength: 300 },
    resp: { ...hostPortText, default: '' },
    http: { ...hostPortText, default: '' },
    incarnation: { type: 'string', pattern: '^([0-9a-f]{32})?$', default: '' },
    learner: { type: 'boolean' },
  },
} as const;

const forceSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { force: { type: 'boolean', default: false } },
} as const;

/**
 * Metrics whose value is read from the node when scraped: a gauge or a
 * counter of one number, or one series per peer.
 */
function scraped(
  registry: Registry,
  peerStats: () => Readonly<Record<string, PeerCounters>> = () => ({}),
) {
  const registers = [registry];
  return {
    gauge(name: string, help: string, read: () => number): void {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    },
    counter(name: string, help: string, read: () => number): void {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    },
    perPeer(
      kind: 'gauge' | 'counter',
      name: string,
      help: string,
      read: (s: PeerCounters) => number,
    ): void {
      const collect = (set: (peer: string, value: number) => void): void => {
        for (const [peer, s] of Object.entries(peerStats())) set(peer, read(s));
      };
      if (kind === 'gauge') {
        new Gauge({
          name,
          help,
          labelNames: ['peer'],
          registers,
          collect() {
            this.reset();
            collect((peer, value) => this.set({ peer }, value));
          },
        });
      } else {
        new Counter({
          name,
          help,
          labelNames: ['peer'],
          registers,
          collect() {
            this.reset();
            collect((peer, value) => this.inc({ peer }, value));
          },
        });
      }
    },
  };
}
