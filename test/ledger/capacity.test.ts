import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { EmbeddedLedger } from '../../ledger/embedded/engine.js';
import { AccountFlags, account, transfer } from '../../ledger/model.js';
import { LedgerCapacityError, LedgerUnavailableError } from '../../ledger/port.js';

const accountsMax = 3;
const transfersMax = 10;

function pay(id: bigint, amount = 1n) {
  return transfer({ id, debit_account_id: 1n, credit_account_id: 2n, amount, ledger: 1, code: 1 });
}

for (const journaled of [false, true]) {
  const engine = journaled ? 'journaled' : 'in memory';

  test(`${engine}: creates past transfersMax / accountsMax are refused whole with LedgerCapacityError, naming the fix`, async (t) => {
    const dataDir = journaled ? mkdtempSync(join(tmpdir(), 'cs-capacity-')) : undefined;
    t.teardown(() => dataDir !== undefined && rmSync(dataDir, { recursive: true, force: true }));
    const ledger = await EmbeddedLedger.open({ dataDir, accountsMax, transfersMax });
    t.teardown(() => ledger.close());
    const limited = account({ id: 1n, ledger: 1, code: 1, flags: AccountFlags.debits_must_not_exceed_credits });
    t.deepEqual(await ledger.createAccounts([limited, account({ id: 2n, ledger: 1, code: 1 })]), ['ok', 'ok']);
    const tooMany = await t.throwsAsync(ledger.createAccounts([account({ id: 3n, ledger: 1, code: 1 }), account({ id: 4n, ledger: 1, code: 1 })]), {
      instanceOf: LedgerCapacityError,
    });
    t.true(tooMany instanceof LedgerUnavailableError, 'callers that handle an unavailable ledger handle it');
    t.is(tooMany?.name, 'LedgerCapacityError');
    t.regex(tooMany!.message, /holds 2 accounts, its limit is 3 \(accountsMax\).*COUNTERSIGN_TB_ADDRESSES.*README "Scale"/);
    t.deepEqual(await ledger.lookupAccounts([3n, 4n]), [], 'nothing of the refused request was applied');

    await ledger.createTransfers([transfer({ id: 90n, debit_account_id: 2n, credit_account_id: 1n, amount: 100n, ledger: 1, code: 1 })]);
    t.deepEqual(await ledger.createTransfers([pay(100n, 1000n)]), ['exceeds_credits'], 'a failed id takes room too');
    t.deepEqual(await ledger.createTransfers([101n, 102n, 103n, 104n, 105n, 106n].map((id) => pay(id))), ['ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
    const full = await t.throwsAsync(ledger.createTransfers([107n, 108n, 109n].map((id) => pay(id))), { instanceOf: LedgerCapacityError });
    t.regex(full!.message, /holds 8 transfers \(and failed transfer ids\), its limit is 10 \(transfersMax\): refused 3 more/);
    t.deepEqual(await ledger.lookupTransfers([107n, 108n, 109n]), []);
    t.deepEqual(await ledger.createTransfers([107n, 108n].map((id) => pay(id))), ['ok', 'ok'], 'up to the bound exactly');
    await t.throwsAsync(ledger.createTransfers([pay(109n)]), { instanceOf: LedgerCapacityError });
    t.deepEqual(ledger.usage.transfers, transfersMax);
    t.is((await ledger.lookupAccounts([1n]))[0]!.debits_posted, 8n, 'reads still work at the bound');
  });
}

test('the bound counts what a reopened journaled ledger loaded', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-capacity-reopen-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const first = await EmbeddedLedger.open({ dataDir, transfersMax });
  await first.createAccounts([account({ id: 1n, ledger: 1, code: 1 }), account({ id: 2n, ledger: 1, code: 1 })]);
  await first.createTransfers([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n].map((id) => pay(id)));
  await first.checkpoint();
  await first.createTransfers([pay(9n)]);
  await first.close();
  const second = await EmbeddedLedger.open({ dataDir, transfersMax });
  t.teardown(() => second.close());
  t.is(second.usage.transfers, 9);
  await t.throwsAsync(second.createTransfers([pay(10n), pay(11n)]), { instanceOf: LedgerCapacityError });
  t.deepEqual(await second.createTransfers([pay(10n)]), ['ok']);
});
