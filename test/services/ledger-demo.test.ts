import test from 'ava';
import { EmbeddedLedger } from '../../ledger/embedded/engine.js';
import { runLedgerDemo } from '../../services/ledger-demo.js';

test('the demo walk-through leaves exactly the balances its steps promise', async (t) => {
  const ledger = await EmbeddedLedger.open({});
  t.teardown(() => ledger.close());
  const lines: string[] = [];
  const ids = await runLedgerDemo(ledger, (line) => lines.push(line));
  const [payer, merchant, fees, funding] = await ledger.lookupAccounts([ids.payer, ids.merchant, ids.fees, ids.funding]);
  // Funded 100.00; 25.00 paid (0.75 of it as fee); 40.00 voided; 500.00 refused; 10.00 expired.
  t.deepEqual([payer!.credits_posted, payer!.debits_posted, payer!.debits_pending], [100_00n, 25_00n, 0n]);
  t.deepEqual([merchant!.credits_posted, merchant!.debits_posted, merchant!.credits_pending], [25_00n, 75n, 0n]);
  t.is(fees!.credits_posted, 75n);
  t.is(funding!.debits_posted, 100_00n);
  t.true(
    lines.some((l) => l.includes('exceeds_credits')),
    'the over-limit reservation is refused',
  );
  t.true(
    lines.some((l) => l.includes('pending_transfer_expired')),
    'the expired reservation cannot be posted',
  );
  t.true(
    lines.some((l) => l.includes('exists,linked_event_failed')),
    'the retried post is recognised',
  );
});
