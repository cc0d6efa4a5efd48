import fs from 'node:fs';
import os from 'node:os';
import test from 'ava';
import { EmbeddedLedger } from '../../ledger/embedded/engine.js';
import { acct, bal, balances, injectedTime, withTime, xfer } from './contract/helpers.js';
import { ledgerContract } from './contract.js';
import { manualClock } from './fixtures/workload.js';

// Each engine runs on a clock of its own that moves only when a case advances it (the expiry
// case), so no outcome depends on how fast the machine is.
const memoryClock = manualClock();
ledgerContract('embedded (memory)', { open: async () => withTime(await EmbeddedLedger.open({ clockNs: memoryClock.now }), injectedTime(memoryClock)) });

const dataDir = fs.mkdtempSync(`${os.tmpdir()}/cs-ledger-`);
const journalClock = manualClock();
ledgerContract('embedded (journal)', {
  open: async () => withTime(await EmbeddedLedger.open({ dataDir, clockNs: journalClock.now }), injectedTime(journalClock)),
});

test.after.always('remove the journal directory', () => {
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('embedded (journal) state survives close and reopen', async (t) => {
  const dir = fs.mkdtempSync(`${os.tmpdir()}/cs-ledger-`);
  try {
    const first = await EmbeddedLedger.open({ dataDir: dir });
    const [x, y] = [acct(), acct()];
    t.deepEqual(await first.createAccounts([x, y]), ['ok', 'ok']);
    const tr = xfer({ debit_account_id: x.id, credit_account_id: y.id, amount: 42n });
    t.deepEqual(await first.createTransfers([tr]), ['ok']);
    await first.close();

    const second = await EmbeddedLedger.open({ dataDir: dir });
    t.deepEqual(await balances(second, [x.id, y.id]), [bal({ dpo: 42n }), bal({ cpo: 42n })]);
    t.deepEqual(await second.createTransfers([tr]), ['exists'], 'ids are still known after replay');
    t.deepEqual(await balances(second, [x.id, y.id]), [bal({ dpo: 42n }), bal({ cpo: 42n })]);
    await second.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
