import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { EmbeddedLedger } from '../../ledger/embedded/engine.js';
import { batchAmount, crashAccounts, crashOperator, crashTransferId } from './fixtures/crash-plan.js';
import { runAndKill } from './fixtures/kill-writer.js';

const writer = fileURLToPath(new URL('./fixtures/checkpoint-writer.ts', import.meta.url));
/** Events per batch: ~1 MiB of journal per batch. */
const batchSizeEvents = 8189;
/** Below one batch's record: every batch starts a checkpoint, written while the next batch runs. */
const checkpointEveryJournalBytes = 512 * 1024;
const batchesMax = 40;
const roundsMax = 4;
const roundTimeoutMs = 60_000;
/** The kill lands up to this long after an acknowledgement: inside the checkpoint or the next batch. */
const killWithinMs = 40;

test('SIGKILL while checkpoints are written: every acknowledged batch survives, none is half there or doubled', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-ckpt-crash-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const rounds: { runTag: bigint; acked: number; opened: string }[] = [];
  for (let r = 0; r < roundsMax; r++) {
    const runTag = BigInt(r + 1);
    const killAfter = 2 + Math.floor(Math.random() * 5);
    const args = [dataDir, String(runTag), String(batchesMax), String(batchSizeEvents), String(checkpointEveryJournalBytes)];
    const round = await runAndKill(writer, args, killAfter, { timeoutMs: roundTimeoutMs, killWithinMs });
    t.true(round.killedAfterReady, 'the writer was killed while writing batches');
    rounds.push({ runTag, acked: round.acked, opened: round.reported.get('opened') ?? '?' });
  }

  const ledger = await EmbeddedLedger.open({ dataDir });
  t.teardown(() => ledger.close());
  t.log(
    `acked per round: ${rounds.map((r) => r.acked).join(', ')}; opened with checkpoint transfers/sealed segments: ${rounds.map((r) => r.opened).join(', ')}, finally ${ledger.recovered.checkpointTransfers}/${ledger.recovered.segments}`,
  );
  t.true(ledger.recovered.checkpointTransfers > 0, 'the data directory holds a checkpoint');
  let expectedTotal = 0n;
  for (const { runTag, acked } of rounds) {
    for (let b = 0; b < batchesMax; b++) {
      const ids = Array.from({ length: batchSizeEvents }, (_, i) => crashTransferId(runTag, b, i));
      const found = (await ledger.lookupTransfers(ids)).length;
      t.true(found === 0 || found === batchSizeEvents, `run ${runTag} batch ${b}: ${found} of ${batchSizeEvents} transfers`);
      if (b < acked) t.is(found, batchSizeEvents, `run ${runTag} batch ${b} was acknowledged`);
      if (found === batchSizeEvents) expectedTotal += batchAmount(batchSizeEvents);
    }
  }
  const [operator] = await ledger.lookupAccounts([crashOperator]);
  const credited = (await ledger.lookupAccounts(crashAccounts)).reduce((sum, a) => sum + a.credits_posted + a.credits_pending, 0n);
  t.is(operator!.debits_posted + operator!.debits_pending, expectedTotal, 'operator debits equal the surviving batches, each once');
  t.is(credited, expectedTotal, 'credits equal debits');
});
