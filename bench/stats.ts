/**
 * What the load generator records during a measured window: per RPC method, every latency
 * sample (exact percentiles; bounded by `latencySamplesMax` per method) and errors by gRPC
 * status; authorizations completed; the generator's own CPU time.
 */

/** Latency samples kept per method and window; further calls are still counted. */
export const latencySamplesMax = 4_000_000;

export interface Latency {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface MethodStats extends Latency {
  method: string;
  errors: Record<string, number>;
}

export interface WindowStats {
  seconds: number;
  authorizations: number;
  rpcs: number;
  /** Calls or batch items that failed (or ended in a state other than SUCCEEDED), by status. */
  errors: Record<string, number>;
  methods: MethodStats[];
  /** All RPCs of the window together. */
  all: Latency;
  clientCpuMicros: number;
  /** Ledger scenario: transfers applied in the window (authorization scenarios: 0). */
  transfers: number;
}

class MethodRecorder {
  private samples = new Float64Array(1024);
  private length = 0;
  count = 0;
  readonly errors: Record<string, number> = {};

  add(ms: number): void {
    this.count += 1;
    if (this.length === latencySamplesMax) return;
    if (this.length === this.samples.length) {
      const grown = new Float64Array(Math.min(this.samples.length * 2, latencySamplesMax));
      grown.set(this.samples);
      this.samples = grown;
    }
    this.samples[this.length++] = ms;
  }

  values(): Float64Array {
    return this.samples.subarray(0, this.length);
  }
}

export class Recorder {
  private methods = new Map<string, MethodRecorder>();
  private startedAt = 0;
  private cpuAtStart = process.cpuUsage();
  recording = false;
  authorizations = 0;
  rpcs = 0;
  transfers = 0;
  readonly errors: Record<string, number> = {};

  /** Starts a fresh window. */
  start(): void {
    this.methods = new Map();
    this.authorizations = 0;
    this.rpcs = 0;
    this.transfers = 0;
    for (const key of Object.keys(this.errors)) delete this.errors[key];
    this.startedAt = performance.now();
    this.cpuAtStart = process.cpuUsage();
    this.recording = true;
  }

  rpc(method: string, startedMs: number): void {
    if (!this.recording) return;
    this.rpcs += 1;
    this.of(method).add(performance.now() - startedMs);
  }

  /** A failed RPC (counted as an RPC, with its latency, and as an error of its status). */
  failed(method: string, startedMs: number, status: string): void {
    if (!this.recording) return;
    this.rpc(method, startedMs);
    const m = this.of(method);
    m.errors[status] = (m.errors[status] ?? 0) + 1;
    this.errors[status] = (this.errors[status] ?? 0) + 1;
  }

  /** A batch item or an authorization step that failed inside a successful RPC. */
  itemFailed(status: string): void {
    if (!this.recording) return;
    this.errors[status] = (this.errors[status] ?? 0) + 1;
  }

  authorized(count = 1): void {
    if (this.recording) this.authorizations += count;
  }

  /** Ends the window and summarizes it. */
  stop(): WindowStats {
    this.recording = false;
    const seconds = (performance.now() - this.startedAt) / 1000;
    const cpu = process.cpuUsage(this.cpuAtStart);
    const methods = [...this.methods.entries()].map(([method, m]) => ({ method, ...latency(m.values(), m.count), errors: { ...m.errors } }));
    const all = new Float64Array(methods.reduce((n, m) => n + this.of(m.method).values().length, 0));
    let at = 0;
    for (const m of this.methods.values()) {
      all.set(m.values(), at);
      at += m.values().length;
    }
    return {
      seconds,
      authorizations: this.authorizations,
      rpcs: this.rpcs,
      errors: { ...this.errors },
      methods,
      all: latency(all, this.rpcs),
      clientCpuMicros: cpu.user + cpu.system,
      transfers: this.transfers,
    };
  }

  private of(method: string): MethodRecorder {
    let m = this.methods.get(method);
    if (m === undefined) this.methods.set(method, (m = new MethodRecorder()));
    return m;
  }
}

/** Nearest-rank percentiles of the samples. */
export function latency(samples: Float64Array, count: number): Latency {
  if (samples.length === 0) return { count, p50Ms: 0, p90Ms: 0, p99Ms: 0, maxMs: 0 };
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return { count, p50Ms: at(0.5), p90Ms: at(0.9), p99Ms: at(0.99), maxMs: sorted[sorted.length - 1]! };
}
