/**
 * What a load generator is asked to do and what it reports, shared by the
 * RESP and etcd generators and the benchmark drivers that spawn them.
 */

export interface LoadSpec {
  readonly host: string;
  /** Where clients connect; client i uses ports[i % ports.length]. */
  readonly ports: readonly number[];
  /** Connections (RESP) or concurrent request loops (etcd). */
  readonly clients: number;
  /** Requests each client sends before waiting for their replies (1 = no pipelining). */
  readonly pipeline: number;
  readonly valueBytes: number;
  /** Fraction of requests that are reads (GET), the rest writes (SET); 0..1. */
  readonly readRatio: number;
  /** Keys are drawn uniformly from key:0 .. key:(keys-1). */
  readonly keys: number;
  /** Measured time, after the warm-up. */
  readonly durationMs: number;
  /** Load is applied but not measured for this long first. */
  readonly warmupMs: number;
  readonly seed: number;
}

export interface LatencySummary {
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly p999Us: number;
  readonly maxUs: number;
  readonly meanUs: number;
}

export interface LoadResult {
  /** Requests answered successfully within the measured window. */
  readonly ops: number;
  readonly reads: number;
  readonly writes: number;
  /** Error replies and failed requests within the measured window. */
  readonly errors: number;
  readonly firstError: string | null;
  readonly seconds: number;
  readonly opsPerSecond: number;
  readonly latency: LatencySummary;
  /** The reads' and the writes' latency apart; null for a kind the run sent none of. */
  readonly readLatency: LatencySummary | null;
  readonly writeLatency: LatencySummary | null;
  /** CPU time the load generator itself used (user + system), in seconds. */
  readonly generatorCpuSeconds: number;
}

/** Limits that keep a mistyped flag from asking for something absurd. */
export const loadLimits = {
  clientsMax: 10_000,
  pipelineMax: 1_024,
  valueBytesMax: 64 * 1024 * 1024,
  keysMax: 100_000_000,
  durationMsMax: 24 * 60 * 60 * 1000,
} as const;

/** Throws with a message naming the field if a spec is out of range. */
export function checkSpec(spec: LoadSpec): void {
  const int = (name: string, value: number, min: number, max: number): void => {
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new Error(`${name} must be an integer in [${min}, ${max}], got ${value}`);
    }
  };
  if (spec.ports.length === 0) throw new Error('at least one port to connect to is needed');
  int('clients', spec.clients, 1, loadLimits.clientsMax);
  int('pipeline', spec.pipeline, 1, loadLimits.pipelineMax);
  int('valueBytes', spec.valueBytes, 1, loadLimits.valueBytesMax);
  int('keys', spec.keys, 1, loadLimits.keysMax);
  int('durationMs', spec.durationMs, 1, loadLimits.durationMsMax);
  int('warmupMs', spec.warmupMs, 0, loadLimits.durationMsMax);
  if (!(spec.readRatio >= 0 && spec.readRatio <= 1)) {
    throw new Error(`readRatio must be within [0, 1], got ${spec.readRatio}`);
  }
}
