import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { findSourceMap } from 'node:module';

/**
 * The V8 CPU profiler of this process (the one `node --cpu-prof` drives), started and stopped on
 * request so a profile covers one measured window only. The written `.cpuprofile` has its
 * TypeScript frames mapped back to source lines when the process runs with
 * `--enable-source-maps` (tsx compiles each file to one line), so any viewer (Chrome DevTools,
 * speedscope, bench/profile-top.ts) shows file:line of the .ts source.
 *
 * The same window is also sampled for allocations (V8's sampling heap profiler, every
 * `heapSamplingBytes` allocated on average, counting objects that were collected since: the
 * allocation volume, which is what garbage collection pays for), written beside it as
 * `.heapprofile` (Chrome DevTools' Memory tab, or `bench/profile-top.ts`).
 */

/** Sampling interval, microseconds (`--cpu-prof` uses 1000). */
export const profileSamplingMicros = 500;
/** Mean bytes allocated between two heap samples (V8's default is 32 KiB). */
export const heapSamplingBytes = 16_384;

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

export class WindowProfiler {
  private session: Session | undefined;

  async start(): Promise<void> {
    if (this.session !== undefined) throw new Error('the profiler is already running');
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: profileSamplingMicros });
    await session.post('Profiler.start');
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: heapSamplingBytes,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    } as never);
    this.session = session;
  }

  async stop(file: string): Promise<{ file: string }> {
    const session = this.session;
    if (session === undefined) throw new Error('the profiler is not running');
    this.session = undefined;
    const { profile } = await session.post('Profiler.stop');
    const { profile: heap } = await session.post('HeapProfiler.stopSampling');
    session.disconnect();
    for (const node of profile.nodes) mapFrame(node.callFrame);
    writeFileSync(file, JSON.stringify(profile));
    const heapFile = `${file.replace(/\.cpuprofile$/, '')}.heapprofile`;
    const mapTree = (node: { callFrame: CallFrame; children: unknown[] }): void => {
      mapFrame(node.callFrame);
      for (const child of node.children) mapTree(child as typeof node);
    };
    mapTree(heap.head);
    writeFileSync(heapFile, JSON.stringify(heap));
    return { file };
  }
}

/** Rewrites a frame of a transpiled file to its original position, when a source map is known. */
function mapFrame(frame: CallFrame): void {
  if (!frame.url.startsWith('file://') || frame.lineNumber < 0) return;
  const map = findSourceMap(frame.url);
  if (map === undefined) return;
  const entry = map.findEntry(frame.lineNumber, frame.columnNumber) as { originalLine?: number; originalColumn?: number };
  if (entry.originalLine === undefined) return;
  frame.lineNumber = entry.originalLine;
  frame.columnNumber = entry.originalColumn ?? 0;
}
