import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ScenarioResult } from '../scenario.js';
import type { ScanResult } from './secret-scan.js';

/**
 * The run's one table — `| scenario | payments | kills | outages | fuzzed | guesses | violations |`
 * plus totals — printed and written as Markdown and JSON under test/reliability/results/.
 */

export const columns = ['payments', 'kills', 'outages', 'fuzzed', 'guesses'] as const;

export interface RunReport {
  mode: 'short' | 'soak';
  /** Only some scenarios ran (--only): written beside the full results, never over them. */
  partial?: boolean;
  seed: number;
  startedAt: string;
  durationMs: number;
  node: string;
  scenarios: ScenarioResult[];
  scan: ScanResult;
  notes: string[];
}

export function violationsOf(report: RunReport): string[] {
  return [...report.scenarios.flatMap((s) => s.violations.map((v) => `${s.name}: ${v}`)), ...report.scan.findings.map((f) => `log scan: ${f}`)];
}

function count(result: ScenarioResult, column: string): number {
  return result.counts[column] ?? 0;
}

export function table(report: RunReport): string {
  const rows = report.scenarios.map((s) => [s.name, ...columns.map((c) => String(count(s, c))), String(s.violations.length)]);
  rows.push(['secret scan', '—', '—', '—', '—', '—', String(report.scan.findings.length)]);
  const total = (c: string) => String(report.scenarios.reduce((sum, s) => sum + count(s, c), 0));
  rows.push(['**total**', ...columns.map(total), String(violationsOf(report).length)]);
  const header = ['scenario', ...columns, 'violations'];
  const align = ['---', ...columns.map(() => '--:'), '--:'];
  return [header, align, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function markdown(report: RunReport): string {
  const violations = violationsOf(report);
  const lines = [
    `# countersign reliability: ${report.mode} mode`,
    '',
    `${report.startedAt}, ${report.node}, ${seconds(report.durationMs)} in all, seed ${report.seed}. \`npm run reliability -- --${report.mode} --seed ${report.seed}\` replays the plan (the machine's timing still decides what each fault interrupts).`,
    '',
    table(report),
    '',
    `Secret scan: ${report.scan.files} files (every log, Redis append-only files, authz data directories), ${(report.scan.bytes / 1024 / 1024).toFixed(1)} MiB, for ${report.scan.secretsScanned} registered secrets and the code / card-number patterns.`,
    '',
    '## Scenarios',
    '',
    ...report.scenarios.flatMap((s) => [
      `### ${s.name} (${seconds(s.durationMs)})`,
      '',
      '```',
      JSON.stringify(s.counts, null, 1).replace(/\n\s*/g, ' '),
      '```',
      '',
    ]),
    '## Notes',
    '',
    ...(report.notes.length === 0 ? ['none'] : report.notes.map((n) => `- ${n}`)),
    '',
    '## Violations',
    '',
    ...(violations.length === 0 ? ['none'] : violations.map((v) => `- ${v}`)),
    '',
  ];
  return lines.join('\n');
}

export function writeReport(dir: string, report: RunReport): { markdown: string; json: string } {
  mkdirSync(dir, { recursive: true });
  const base = `reliability-${report.mode}${report.partial === true ? '-partial' : ''}`;
  const paths = { markdown: join(dir, `${base}.md`), json: join(dir, `${base}.json`) };
  writeFileSync(paths.markdown, markdown(report));
  writeFileSync(paths.json, `${JSON.stringify({ ...report, violations: violationsOf(report) }, null, 2)}\n`);
  return paths;
}
