import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { JournalPaymentStore } from '../../../authz/store/journal/journal-store.js';
import { crashBatch, crashBatchesMax, crashBatchItems, crashConfirms, crashPipelines } from './fixtures/journal-crash-plan.js';

const child = fileURLToPath(new URL('./fixtures/journal-crash-child.ts', import.meta.url));
/** Kill rounds on one data directory: each round first recovers what the previous kill left. */
const roundsMax = 4;
/** Upper bound on one round, so a stuck child cannot hang the suite. */
const roundTimeoutMs = 60_000;

interface Round {
  run: number;
  created: Set<number>;
  confirmed: Set<number>;
  /** What the child found when it opened the previous round's directory. */
  ready: string;
}

/** Runs the child until `killAfter` steps are acknowledged, then SIGKILLs it a few milliseconds later. */
function runAndKill(dataDir: string, run: number, t0: number, killAfter: number): Promise<Round> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import=tsx', child, dataDir, String(run), String(t0)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const round: Round = { run, created: new Set(), confirmed: new Set(), ready: '' };
    let stderr = '';
    let pending = '';
    let killing = false;
    const timer = setTimeout(() => proc.kill('SIGKILL'), roundTimeoutMs);
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.stdout.on('data', (d: Buffer) => {
      const lines = (pending + d.toString()).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const [what, n] = line.split(' ');
        if (what === 'ready') round.ready = line;
        if (what === 'created') round.created.add(Number(n));
        if (what === 'confirmed') round.confirmed.add(Number(n));
      }
      if (!killing && round.created.size + round.confirmed.size >= killAfter) {
        killing = true;
        setTimeout(() => proc.kill('SIGKILL'), Math.floor(Math.random() * 8));
      }
    });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`child exited with ${code}: ${stderr}`));
      else resolve(round);
    });
  });
}

test('SIGKILL during creates and confirms: every acknowledged payment and key survives, every step is all or nothing', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-pay-crash-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const t0 = Date.now();
  const rounds: Round[] = [];
  for (let run = 1; run <= roundsMax; run++) {
    const round = await runAndKill(dataDir, run, t0, 4 + Math.floor(Math.random() * 40));
    t.true(round.ready !== '', `round ${run} was killed after it opened the store`);
    rounds.push(round);
  }
  const store = await JournalPaymentStore.open({ dataDir });
  t.teardown(() => store.close());
  t.log(`acknowledged creates per round: ${rounds.map((r) => r.created.size).join(', ')}; confirms: ${rounds.map((r) => r.confirmed.size).join(', ')}`);
  const r = store.recovered;
  const last = `torn=${r.tornBytes} frames=${r.replayedFrames} checkpoint=${r.checkpoint} removed=${r.removed.join(',') || '-'}`;
  t.log(`each reopen found: ${[...rounds.slice(1).map((round) => round.ready.slice(6)), last].join(' | ')}`);
  for (const round of rounds) await checkRound(t, store, t0, round);
});

async function checkRound(t: ExecutionContext, store: JournalPaymentStore, t0: number, round: Round): Promise<void> {
  let ok = true;
  // Batches start in order, at most `crashPipelines` ahead of the last acknowledged one; one more
  // pipeline's worth is checked to show nothing beyond them exists.
  const started = Math.min(crashBatchesMax, Math.max(-1, ...round.created) + 2 * crashPipelines + 1);
  for (let b = 0; b < started && ok; b++) {
    const items = crashBatch(t0, round.run, b);
    const records = await store.get(items.map((c) => c.payment.id));
    const present = records.filter((r) => r !== undefined).length;
    const confirmed = records.filter((r) => r?.version === 2).length;
    ok &&= t.true(
      present === 0 || present === crashBatchItems,
      `run ${round.run} batch ${b}: ${present} of ${crashBatchItems} creates survived (a step is all or nothing)`,
    );
    ok &&= t.true(confirmed === 0 || confirmed === crashBatchItems, `run ${round.run} batch ${b}: ${confirmed} of ${crashBatchItems} confirms survived`);
    if (round.created.has(b)) {
      const replays = await store.create(items);
      ok &&= t.true(
        replays.every((o) => o.outcome === 'replayed'),
        `run ${round.run} batch ${b}: acknowledged creates replay from their keys`,
      );
    }
    if (round.confirmed.has(b)) {
      ok &&= t.is(confirmed, crashBatchItems, `run ${round.run} batch ${b}: acknowledged confirms survived`);
      ok &&= t.true(
        records.every((r, i) => r!.payment.state === (i % 2 === 0 ? 'APPROVED' : 'CHALLENGED')),
        `run ${round.run} batch ${b}: states`,
      );
      const replays = await store.confirm(crashConfirms(t0, round.run, b));
      ok &&= t.true(
        replays.every((o) => o.outcome === 'replayed'),
        `run ${round.run} batch ${b}: acknowledged confirms replay from their keys`,
      );
    }
  }
}
