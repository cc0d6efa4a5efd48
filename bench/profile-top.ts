/**
 * The top self-time functions of a V8 CPU profile (`.cpuprofile`, as written by
 * `node --cpu-prof` or by `npm run bench -- --profile`), and self time per source area.
 *
 *   npx tsx bench/profile-top.ts bench/results/latest/profiles/server-memory-embedded-unary.cpuprofile [--top 25] [--callers 3] [--inclusive]
 *
 * `--inclusive` adds the functions by inclusive time (their own and their callees', each sample
 * counted once per function however deep the recursion), optionally only those whose file
 * contains `--match` (e.g. `--match authz/`).
 *
 * A `.heapprofile` (written beside the CPU profile by `--profile`: sampled allocations) gets the
 * same tables in bytes allocated instead of milliseconds.
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

/** Inclusive time per function: every sample counts for each distinct function on its stack. */
export function inclusiveFunctions(profile: Profile, root: string): { total: number; functions: TopEntry[] } {
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  const keyOf = new Map<number, { key: string; name: string; where: string }>();
  for (const n of profile.nodes) {
    const f = n.callFrame;
    const file = f.url === '' ? '' : relative(root, f.url.replace(/^file:\/\//, ''));
    const where = file === '' ? '(native)' : `${file}:${f.lineNumber + 1}`;
    const name = f.functionName || '(anonymous)';
    keyOf.set(n.id, { key: `${name} ${where}`, name, where });
  }
  const named = new Map([...keyOf.values()].map((k) => [k.key, k]));
  const micros = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((leaf, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    total += delta;
    const seen = new Set<string>();
    for (let id: number | undefined = leaf; id !== undefined; id = parentOf.get(id)) {
      const k = keyOf.get(id)!.key;
      if (seen.has(k)) continue;
      seen.add(k);
      micros.set(k, (micros.get(k) ?? 0) + delta);
    }
  });
  const functions = [...micros].map(([key, us]) => {
    const { name, where } = named.get(key)!;
    return { name, where, selfMs: us / 1000, percent: (100 * us) / total };
  });
  return { total: total / 1000, functions: functions.sort((a, b) => b.selfMs - a.selfMs) };
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

interface HeapNode {
  callFrame: ProfileNode['callFrame'];
  selfSize: number;
  id: number;
  children: HeapNode[];
}

/** A sampled heap profile as a CPU profile of the same shape: one "sample" per node, its bytes as the time delta (µs → bytes). */
export function heapAsProfile(head: HeapNode): Profile {
  const nodes: ProfileNode[] = [];
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  const walk = (n: HeapNode): void => {
    nodes.push({ id: n.id, callFrame: n.callFrame, children: n.children.map((c) => c.id) });
    if (n.selfSize > 0) samples.push(n.id), timeDeltas.push(n.selfSize);
    for (const c of n.children) walk(c);
  };
  walk(head);
  return { nodes, startTime: 0, endTime: 0, samples, timeDeltas };
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: 'string', default: '25' },
      callers: { type: 'string', default: '0' },
      inclusive: { type: 'boolean', default: false },
      match: { type: 'string', default: '' },
    },
  });
  const top = Number(values.top);
  const callers = Number(values.callers);
  for (const path of positionals) {
    const heap = path.endsWith('.heapprofile');
    const raw = JSON.parse(readFileSync(path, 'utf8')) as Profile | { head: HeapNode };
    const profile = 'head' in raw ? heapAsProfile(raw.head) : raw;
    // For a heap profile the "ms" below are kB allocated (sampled).
    const { total, functions, areas } = topFunctions(profile, process.cwd());
    const unit = heap ? 'kB' : 'ms';
    process.stdout.write(
      heap
        ? `\n${path}: ${(total / 1000).toFixed(1)} MB allocated (sampled)\n\n| self kB | % | function | where |\n|--:|--:|---|---|\n`
        : `\n${path}: ${(total / 1000).toFixed(2)} s sampled\n\n| self ms | % | function | where |\n|--:|--:|---|---|\n`,
    );
    for (const f of functions.slice(0, top)) {
      process.stdout.write(`| ${f.selfMs.toFixed(0)} | ${f.percent.toFixed(1)} | ${f.name} | ${f.where} |\n`);
      const heaviest = [...(f.callers ?? new Map<string, number>())].sort((a, b) => b[1] - a[1]).slice(0, callers);
      for (const [caller, ms] of heaviest) process.stdout.write(`|  | ${ms.toFixed(0)} ${unit} | ← ${caller} | |\n`);
    }
    process.stdout.write(`\n| self ${unit} | % | area |\n|--:|--:|---|\n`);
    for (const a of areas.slice(0, top)) process.stdout.write(`| ${a.selfMs.toFixed(0)} | ${a.percent.toFixed(1)} | ${a.name} |\n`);
    if (!values.inclusive) continue;
    const inclusive = inclusiveFunctions(profile, process.cwd()).functions.filter((f) => f.where.includes(values.match));
    process.stdout.write(`\n| inclusive ${unit} | % | function | where |\n|--:|--:|---|---|\n`);
    for (const f of inclusive.slice(0, top)) process.stdout.write(`| ${f.selfMs.toFixed(0)} | ${f.percent.toFixed(1)} | ${f.name} | ${f.where} |\n`);
  }
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) main();
