/**
 * What the load generator records during a measured window: per RPC method, every latency
 * sample (exact percentiles; bounded by `latencySamplesMax` per method) and errors by gRPC
 * status; authorizations completed; the generator's own CPU time.
 */

import { type IntervalHistogram, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

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
  /** The generator's own event loop in the window: how late it ran callbacks, and its GC pauses. */
  clientLoop: LoopStats;
  /** Ledger scenario: transfers applied in the window (authorization scenarios: 0). */
  transfers: number;
}

/** A process's event loop over a window: timer lateness (p99, max) and garbage-collection pauses. */
export interface LoopStats {
  delayP99Ms: number;
  delayMaxMs: number;
  gcPauses: number;
  gcPauseTotalMs: number;
  gcPauseMaxMs: number;
  /** The longest pause's kind: minor (scavenge), major (mark-compact), incremental, weakcb. */
  gcPauseMaxKind: string;
}

/** perf_hooks' `NODE_PERFORMANCE_GC_*` flags by value. */
const gcKinds: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };

/** Event-loop delay sampling resolution, milliseconds. */
const loopResolutionMs = 10;

/**
 * Watches this process's event loop: `monitorEventLoopDelay` (how late a 10 ms timer fires) and
 * every GC pause (`PerformanceObserver` on `gc`). `reset()` starts a window, `read()` ends it.
 * Tells a tail latency caused by a stalled loop from one caused by queueing.
 */
export class LoopWatch {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: loopResolutionMs });
  private gcPauses = 0;
  private gcPauseTotalMs = 0;
  private gcPauseMaxMs = 0;
  private gcPauseMaxKind = '';
  private readonly observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      this.gcPauses += 1;
      this.gcPauseTotalMs += entry.duration;
      if (entry.duration > this.gcPauseMaxMs) {
        this.gcPauseMaxMs = entry.duration;
        this.gcPauseMaxKind = gcKinds[(entry as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0] ?? 'other';
      }
    }
  });

  constructor() {
    this.histogram.enable();
    this.observer.observe({ entryTypes: ['gc'] });
  }

  reset(): void {
    this.histogram.reset();
    this.gcPauses = 0;
    this.gcPauseTotalMs = 0;
    this.gcPauseMaxMs = 0;
    this.gcPauseMaxKind = '';
  }

  read(): LoopStats {
    const ms = (ns: number) => ns / 1e6;
    // The histogram records the whole delay including the resolution; report the lateness.
    const late = (ns: number) => Math.max(0, ms(ns) - loopResolutionMs);
    return {
      delayP99Ms: this.histogram.count === 0 ? 0 : late(this.histogram.percentile(99)),
      delayMaxMs: this.histogram.count === 0 ? 0 : late(this.histogram.max),
      gcPauses: this.gcPauses,
      gcPauseTotalMs: this.gcPauseTotalMs,
      gcPauseMaxMs: this.gcPauseMaxMs,
      gcPauseMaxKind: this.gcPauseMaxKind,
    };
  }
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
  private readonly loop = new LoopWatch();
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
    this.loop.reset();
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
      clientLoop: this.loop.read(),
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
