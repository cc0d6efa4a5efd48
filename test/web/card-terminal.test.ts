import test from 'ava';
import { Channel, DeclineReason, Factor, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { startPayerWebTerminal } from '../../services/server.js';
import { balance, key, type Merchant, newMerchant, newPayer, type Payer, startEnv } from '../e2e/harness.js';
import { startBankProcess } from './bank-process.js';
import { chromiumAvailable, openTerminalBrowser } from './browser.js';
import { card, enrollPage } from './terminal-env.js';

/**
 * M5 on the reference card terminal, in Chromium: card number and PIN typed into the page are
 * sealed there (WebCrypto HPKE to the bank key from GetChallenge), relayed by countersign, and
 * decided by the real `countersign bank-frontend` process (its demo card table).
 */

const browserTest = chromiumAvailable() ? test.serial : test.serial.skip;
const demoCard = { pan: '4000000000000002', expiry: '12/30', pin: '1234' };

const cardPayment = async (shop: Merchant, payer: Payer, amount: bigint) =>
  (
    await shop.api.payments.createPayment({
      idempotencyKey: key('card'),
      payer: { case: 'payerId', value: payer.id },
      payeeAccountId: shop.account,
      amount,
      currency: 'USD',
      description: 'Headphones',
      channel: Channel.WEB,
      requestedFactors: [Factor.BANK_CARD_PIN],
    })
  ).payment!;

browserTest('the card terminal: the bank approves the right PIN and declines a wrong one; no card data leaves the page in clear', async (t) => {
  const bank = await startBankProcess();
  const env = await startEnv('connect', 'memory', {}, { bank: bank.address, bankDeadlineMs: 5_000 });
  const web = await startPayerWebTerminal(env.app, { host: '127.0.0.1', port: 0 });
  const browser = await openTerminalBrowser(web.url);
  try {
    const { page } = browser;
    const confirmBodies: string[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/ConfirmPayment')) confirmBodies.push(r.postData() ?? '');
    });
    const shop = await newMerchant(env, 0);
    // The payer's own policy asks nothing up to 1000.00: card and PIN are the whole proof.
    const payer = await newPayer(env, 0n, { noFactorBelow: 1000_00n, oneFactorUpTo: 1000_00n });
    await enrollPage(page, payer, payer.secretBase32);

    const good = await cardPayment(shop, payer, 120_00n);
    const item = card(page, good.id);
    await item.getByText('Reference card terminal (M5)').waitFor();
    t.is(await item.getByRole('button', { name: 'Approve' }).count(), 0, 'no second code asked');
    await item.getByLabel('Card number').fill(demoCard.pan);
    await item.getByLabel('Expiry (MM/YY)').fill(demoCard.expiry);
    await item.getByLabel('Card PIN').fill(demoCard.pin);
    await browser.screenshot('8-card-terminal');
    await item.getByRole('button', { name: 'Pay with card' }).click();
    await page.locator(`li[data-payment-id="${good.id}"][data-state="SUCCEEDED"]`).waitFor();
    const paid = (await shop.api.payments.getPayment({ paymentId: good.id })).payment!;
    t.is(paid.state, PaymentState.SUCCEEDED);
    t.regex(paid.bankAuthorizationCode, /^\w{6}$/);
    t.is((await balance(env, shop.account)).posted, 120_00n, 'the merchant was paid');
    t.is((await balance(env, payer.account)).posted, 0n, "the payer's prepaid account is untouched: the bank paid");

    const wrong = await cardPayment(shop, payer, 30_00n);
    const wrongItem = card(page, wrong.id);
    await wrongItem.getByLabel('Card number').fill(demoCard.pan);
    await wrongItem.getByLabel('Expiry (MM/YY)').fill(demoCard.expiry);
    await wrongItem.getByLabel('Card PIN').fill('9999');
    await wrongItem.getByRole('button', { name: 'Pay with card' }).click();
    await page.locator(`li[data-payment-id="${wrong.id}"][data-state="DECLINED"]`).waitFor();
    t.regex((await wrongItem.locator('.detail').textContent()) ?? '', /^Your bank declined the card payment\. \(bank: 55/);
    await browser.screenshot('9-card-declined');
    const declined = (await shop.api.payments.getPayment({ paymentId: wrong.id })).payment!;
    t.deepEqual([declined.state, declined.declineReason], [PaymentState.DECLINED, DeclineReason.BANK_DECLINED]);
    t.is((await balance(env, shop.account)).posted, 120_00n, 'the declined payment moved nothing');

    t.is(confirmBodies.length, 2);
    const leaks = [demoCard.pan, '9999', `"${demoCard.pin}"`, '3012'];
    for (const body of confirmBodies) for (const secret of leaks) t.false(body.includes(secret), 'card data in clear on the wire');
    const logs = env.logs.join('\n') + bank.output();
    t.false(logs.includes(demoCard.pan), 'no PAN in any log');
    t.deepEqual(browser.pageErrors, []);
  } finally {
    await browser.close();
    await web.close();
    await env.close();
    await bank.stop();
  }
});
