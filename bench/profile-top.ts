/**
 * The top self-time functions of a V8 CPU profile (`.cpuprofile`, as written by
 * `node --cpu-prof` or by `npm run bench -- --profile`), and self time per source area.
 *
 *   npx tsx bench/profile-top.ts bench/results/latest/profiles/server-memory-embedded-unary.cpuprofile [--top 25] [--callers 3]
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface TopEntry {
  name: string;
  where: string;
  selfMs: number;
  percent: number;
  /** Where the self time was spent from: the calling frames, heaviest first ("name where" → ms). */
  callers?: Map<string, number>;
}

/** Self time per function (summed over every call site), heaviest first. */
export function topFunctions(profile: Profile, root: string): { total: number; functions: TopEntry[]; areas: TopEntry[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  const label = (id: number | undefined): string => {
    const node = id === undefined ? undefined : byId.get(id);
    if (node === undefined) return '(root)';
    const f = node.callFrame;
    const file = f.url === '' ? '' : relative(root, f.url.replace(/^file:\/\//, ''));
    return `${f.functionName || '(anonymous)'} ${file === '' ? '(native)' : `${file}:${f.lineNumber + 1}`}`;
  };
  const selfMicros = new Map<number, number>();
  profile.samples.forEach((id, i) => selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const functions = new Map<string, TopEntry>();
  const areas = new Map<string, TopEntry>();
  let total = 0;
  for (const [id, micros] of selfMicros) {
    const frame = byId.get(id)!.callFrame;
    total += micros;
    const file = frame.url === '' ? '' : relative(root, frame.url.replace(/^file:\/\//, ''));
    const where = file === '' ? '(native)' : `${file}:${frame.lineNumber + 1}`;
    const name = frame.functionName || '(anonymous)';
    const key = `${name} ${where}`;
    const entry = functions.get(key) ?? { name, where, selfMs: 0, percent: 0, callers: new Map<string, number>() };
    entry.selfMs += micros / 1000;
    const caller = label(parentOf.get(id));
    entry.callers!.set(caller, (entry.callers!.get(caller) ?? 0) + micros / 1000);
    functions.set(key, entry);
    const area = areaOf(file, name);
    const a = areas.get(area) ?? { name: area, where: '', selfMs: 0, percent: 0 };
    a.selfMs += micros / 1000;
    areas.set(area, a);
  }
  const finish = (m: Map<string, TopEntry>) =>
    [...m.values()].map((e) => ({ ...e, percent: (100 * e.selfMs * 1000) / total })).sort((a, b) => b.selfMs - a.selfMs);
  return { total: total / 1000, functions: finish(functions), areas: finish(areas) };
}

/** A coarse owner for a frame: our folders, a package, node internals, or V8 pseudo-frames. */
function areaOf(file: string, name: string): string {
  if (file === '') return name.startsWith('(') ? name : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (pkg !== null) return pkg[1]!;
  if (file.startsWith('node:')) return file.replace(/^node:internal\//, 'node:').split('/')[0]!;
  const folder = file.split('/')[0]!;
  return folder === file ? file : `${folder}/${file.split('/')[1] ?? ''}`;
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, callers: { type: 'string', default: '0' } },
  });
  const top = Number(values.top);
  const callers = Number(values.callers);
  for (const path of positionals) {
    const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
    const { total, functions, areas } = topFunctions(profile, process.cwd());
    process.stdout.write(`\n${path}: ${(total / 1000).toFixed(2)} s sampled\n\n| self ms | % | function | where |\n|--:|--:|---|---|\n`);
    for (const f of functions.slice(0, top)) {
      process.stdout.write(`| ${f.selfMs.toFixed(0)} | ${f.percent.toFixed(1)} | ${f.name} | ${f.where} |\n`);
      const heaviest = [...(f.callers ?? new Map<string, number>())].sort((a, b) => b[1] - a[1]).slice(0, callers);
      for (const [caller, ms] of heaviest) process.stdout.write(`|  | ${ms.toFixed(0)} ms | ← ${caller} | |\n`);
    }
    process.stdout.write(`\n| self ms | % | area |\n|--:|--:|---|\n`);
    for (const a of areas.slice(0, top)) process.stdout.write(`| ${a.selfMs.toFixed(0)} | ${a.percent.toFixed(1)} | ${a.name} |\n`);
  }
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) main();
