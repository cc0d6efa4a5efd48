import type { Page } from 'playwright-core';
import type { PaymentLimits } from '../../authz/payments.js';
import { Channel } from '../../gen/countersign/v1/common_pb.js';
import { startPayerWebTerminal } from '../../services/server.js';
import type { RunningWebTerminal } from '../../services/web/web-terminal.js';
import { type Env, key, type Merchant, newMerchant, newPayer, type Payer, startEnv } from '../e2e/harness.js';

/** A countersign (memory stores, real servers on port 0) with its payer web terminal. */
export interface TerminalEnv {
  readonly env: Env;
  readonly web: RunningWebTerminal;
  close(): Promise<void>;
}

export async function startTerminalEnv(limits: Partial<PaymentLimits> = {}): Promise<TerminalEnv> {
  const env = await startEnv('connect', 'memory', limits);
  const web = await startPayerWebTerminal(env.app, { host: '127.0.0.1', port: 0 });
  return {
    env,
    web,
    async close() {
      await web.close();
      await env.close();
    },
  };
}

export const localPin = '731905';

/** Fills the enrollment form as the payer would, from what EnrollPayer returned. */
export async function enrollPage(page: Page, payer: { id: string; token: string }, secret: string, pin = localPin): Promise<void> {
  const form = page.locator('#enroll-form');
  await form.getByLabel('Payer id').fill(payer.id);
  await form.getByLabel('Terminal token').fill(payer.token);
  await form.getByLabel('Verification secret').fill(secret);
  await form.getByLabel('New local PIN').fill(pin);
  await form.getByLabel('Repeat the local PIN').fill(pin);
  await form.getByRole('button', { name: 'Enroll' }).click();
  await page.locator('#payments').waitFor({ state: 'visible' });
}

export async function unlockPage(page: Page, pin: string): Promise<void> {
  const form = page.locator('#unlock-form');
  await form.getByLabel('Local PIN').fill(pin);
  await form.getByRole('button', { name: 'Unlock' }).click();
}

/** A merchant's payment to `payer`, from `channel` (APP/WEB: the terminal gets the first code). */
export async function createPayment(shop: Merchant, payer: Payer, amount: bigint, channel = Channel.WEB, description = 'Coffee beans, 1 kg') {
  const r = await shop.api.payments.createPayment({
    idempotencyKey: key('web-pay'),
    payer: { case: 'payerId', value: payer.id },
    payeeAccountId: shop.account,
    amount,
    currency: 'USD',
    description,
    channel,
  });
  return r.payment!;
}

export { newMerchant, newPayer };

/** The card of one payment on the page. */
export function card(page: Page, paymentId: string) {
  return page.locator(`li.payment[data-payment-id="${paymentId}"]`);
}
