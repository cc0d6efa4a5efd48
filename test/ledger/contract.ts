import test from 'ava';
import type { Ledger } from '../../ledger/port.js';
import { accountCases } from './contract/accounts.js';
import { batchCases } from './contract/batch.js';
import { expiryClosingCases } from './contract/expiry-closing.js';
import type { Body, Case } from './contract/helpers.js';
import { limitCases } from './contract/limits.js';
import { linkedCases } from './contract/linked.js';
import { queryCases } from './contract/queries.js';
import { transferCases } from './contract/transfers.js';
import { twoPhaseCases } from './contract/two-phase.js';

/**
 * How the contract gets an engine. `skip`, when set, is the reason the engine cannot run here:
 * the contract then registers one skipped test and prints the reason.
 */
export interface LedgerFactory {
  open(): Promise<Ledger>;
  skip?: string;
}

/**
 * The `Ledger` port's contract: TigerBeetle 0.16 semantics, one case per behaviour, each
 * asserting the whole per-event results array and the balances of the accounts it touched.
 *
 * One ledger per engine is opened lazily and shared by the cases, which run concurrently; every
 * case makes its own accounts with fresh time-ordered ids, so the suite also runs against a
 * persistent TigerBeetle cluster that keeps data across runs.
 */
export function ledgerContract(name: string, factory: LedgerFactory): void {
  if (factory.skip !== undefined) {
    console.log(`[${name}] ${factory.skip}`);
    test.skip(`${name} contract: ${factory.skip}`, (t) => {
      t.fail('skipped');
    });
    return;
  }

  let opened: Promise<Ledger> | undefined;
  const ledger = (): Promise<Ledger> => (opened ??= factory.open());
  const c: Case = (title: string, body: Body) => {
    test(`${name} ${title}`, async (t) => body(t, await ledger()));
  };

  accountCases(c);
  transferCases(c);
  limitCases(c);
  twoPhaseCases(c);
  expiryClosingCases(c);
  linkedCases(c);
  queryCases(c);
  batchCases(c);

  test.after.always(`${name} close`, async () => {
    if (opened !== undefined) await (await opened).close();
  });
}
