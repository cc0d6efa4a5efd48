import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import { deriveSecondCode, secondCodeSuite } from '../../authz/codes/challenge.js';
import { base32Encode, otpauthUri } from '../../authz/codes/secret.js';
import { Channel, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { balance, type Env, key, type Payer } from '../e2e/harness.js';
import { chromiumAvailable, openTerminalBrowser, pageTimeoutMs, type TerminalBrowser } from './browser.js';
import { card, createPayment, enrollPage, localPin, newMerchant, newPayer, startTerminalEnv, type TerminalEnv, unlockPage } from './terminal-env.js';
import { example, exampleSecretAscii, workedExample } from './worked-example.js';

/**
 * The payer web terminal in real Chromium against a real countersign (servers on port 0): the
 * page enrolls, receives payments over the Connect stream (HTTP/1.1), computes the second code
 * with WebCrypto and confirms; the outcome is checked through the API and the ledger.
 */

const browserTest = chromiumAvailable() ? test.serial : test.serial.skip;
if (!chromiumAvailable()) console.warn('test/web: /usr/bin/chromium missing; run scripts/test-all.sh (installs it) — browser tests skipped');

async function withTerminal(t: ExecutionContext, run: (te: TerminalEnv, browser: TerminalBrowser) => Promise<void>, limits = {}): Promise<void> {
  const te = await startTerminalEnv(limits);
  const browser = await openTerminalBrowser(te.web.url);
  try {
    await run(te, browser);
    t.deepEqual(browser.pageErrors, [], 'the page ran without script errors');
  } finally {
    await browser.close();
    await te.close();
  }
}

/** No secret of the payer's ever reached a log line. */
function assertNoSecretsLogged(t: ExecutionContext, env: Env, secrets: string[]): void {
  const logs = env.logs.join('\n');
  for (const secret of secrets) t.false(logs.includes(secret), 'a secret appeared in the logs');
}

/**
 * Reads the terminal's IndexedDB record in the page, byte fields as hex. The code is a string:
 * the test program has no DOM types, and a compiled function could carry helpers the page lacks.
 */
const readVaultScript = `new Promise((resolve, reject) => {
  const open = indexedDB.open('countersign-terminal');
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    try {
      const get = open.result.transaction('vault').objectStore('vault').get('enrollment');
      get.onerror = () => reject(get.error);
      get.onsuccess = () => {
        const out = {};
        for (const [k, v] of Object.entries(get.result)) {
          const bytes = v instanceof ArrayBuffer ? new Uint8Array(v) : ArrayBuffer.isView(v) ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : undefined;
          out[k] = bytes === undefined ? v : Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
        }
        resolve(out);
      };
    } catch (error) {
      reject(error);
    }
  };
})`;

/** The record, or a rejection after `pageTimeoutMs` (page.evaluate itself waits forever). */
async function readVault(page: Page): Promise<Record<string, unknown>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('reading IndexedDB timed out')), pageTimeoutMs)));
  try {
    return await Promise.race([page.evaluate(readVaultScript) as Promise<Record<string, unknown>>, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const uriOf = (payer: Payer) => otpauthUri({ issuer: 'countersign', account: payer.id, secret: payer.secret, suite: secondCodeSuite });

browserTest('enroll, receive a payment, approve in the browser: SUCCEEDED and the money moved', async (t) => {
  await withTerminal(t, async ({ env }, browser) => {
    const { page } = browser;
    const shop = await newMerchant(env, 0);
    const payer = await newPayer(env, 500_00n);
    await enrollPage(page, payer, payer.secretBase32);
    await page.getByText('Listening: new payments appear here.').waitFor();

    const payment = await createPayment(shop, payer, 12_50n);
    const item = card(page, payment.id);
    await item.locator('.payee', { hasText: 'to Shop' }).waitFor();
    t.is(await item.locator('.amount').textContent(), 'USD 12.50', 'the amount the code is bound to, prominently');
    t.is(await item.locator('.account').textContent(), `payee account ${shop.account}`);
    t.is(await item.getAttribute('data-state'), 'CHALLENGED');
    await browser.screenshot('1-payment-waiting');

    await item.getByRole('button', { name: 'Approve' }).click();
    await page.locator(`li[data-payment-id="${payment.id}"][data-state="SUCCEEDED"]`).waitFor();
    t.is(await item.locator('.state').textContent(), 'Paid');
    t.is(await item.locator('.payee').textContent(), 'to Shop');
    t.is(await item.getByRole('button').count(), 0, 'nothing left to do');
    await browser.screenshot('2-payment-paid');

    const after = await shop.api.payments.getPayment({ paymentId: payment.id });
    t.is(after.payment?.state, PaymentState.SUCCEEDED);
    t.is((await balance(env, shop.account)).posted, 12_50n, 'the merchant was credited the amount');
    t.is((await balance(env, payer.account)).available, 500_00n - 12_50n, 'the payer was debited the amount');
    t.is(browser.apiRequests.filter((p) => p.endsWith('/ConfirmPayment')).length, 1, 'one ConfirmPayment');
    const firstCode = await env.app.payments.firstCodeForTerminal({ kind: 'payer', payerId: payer.id }, (await env.app.payments.record(payment.id))!.payment);
    t.is(firstCode, undefined, 'the first code is gone once the challenge is consumed');
    assertNoSecretsLogged(t, env, [payer.secretBase32, payer.token, localPin]);
  });
});

browserTest('a wrong local PIN is refused in words and sends nothing; the secret is stored only wrapped', async (t) => {
  await withTerminal(t, async ({ env }, browser) => {
    const { page } = browser;
    const payer = await newPayer(env, 0n);
    await enrollPage(page, payer, payer.secretBase32);
    await page.reload();
    await page.locator('#unlock').waitFor({ state: 'visible' });
    browser.apiRequests.length = 0;

    await unlockPage(page, '000000');
    await page.getByText('Wrong local PIN. 4 tries left before this terminal forgets its enrollment.').waitFor();
    t.deepEqual(browser.apiRequests, [], 'no request left the page');
    t.true(await page.locator('#unlock').isVisible());
    await browser.screenshot('3-wrong-local-pin');

    const stored = JSON.stringify(await readVault(page));
    const record = JSON.parse(stored) as Record<string, unknown>;
    t.deepEqual(Object.keys(record).sort(), ['failedUnlocks', 'iterations', 'iv', 'payerId', 'salt', 'sealed', 'suite', 'version']);
    t.is(record.failedUnlocks, 1);
    t.true((record.iterations as number) >= 600_000);
    for (const secret of [payer.secretBase32, payer.token, payer.secret.toString('hex'), Buffer.from(payer.token).toString('hex'), localPin]) {
      t.false(stored.toLowerCase().includes(secret.toLowerCase()), 'a secret is stored in clear');
    }

    await unlockPage(page, localPin);
    await page.locator('#payments').waitFor({ state: 'visible' });
    await page.getByText('No payment is waiting for you.').waitFor();
    t.true(
      browser.apiRequests.some((p) => p.endsWith('/WatchPendingPayments')),
      'the right PIN opens the session',
    );
  });
});

browserTest('an expired payment is shown as expired and nothing is charged', async (t) => {
  await withTerminal(
    t,
    async ({ env }, browser) => {
      const { page } = browser;
      const shop = await newMerchant(env, 0);
      const payer = await newPayer(env, 100_00n);
      await enrollPage(page, payer, payer.secretBase32);
      const payment = await createPayment(shop, payer, 7_00n);
      const item = card(page, payment.id);
      await page.locator(`li[data-payment-id="${payment.id}"][data-state="EXPIRED"]`).waitFor();
      t.is(await item.locator('.state').textContent(), 'Expired');
      t.regex((await item.locator('.detail').textContent()) ?? '', /not approved in time/);
      t.is(await item.getByRole('button', { name: 'Approve' }).count(), 0, 'nothing left to approve');
      await browser.screenshot('4-payment-expired');
      t.is((await shop.api.payments.getPayment({ paymentId: payment.id })).payment?.state, PaymentState.EXPIRED);
      t.is((await balance(env, payer.account)).available, 100_00n, 'nothing charged or reserved');
      t.is((await balance(env, shop.account)).posted, 0n);
    },
    { codeTtlMs: 4_000 },
  );
});

browserTest('the code shown for another terminal is the one the server expects (first code typed from the SMS)', async (t) => {
  await withTerminal(t, async ({ env }, browser) => {
    const { page } = browser;
    const shop = await newMerchant(env, 0);
    const payer = await newPayer(env, 100_00n);
    await enrollPage(page, payer, uriOf(payer));
    const payment = await createPayment(shop, payer, 42_00n, Channel.MERCHANT, 'Concert ticket');
    const item = card(page, payment.id);
    const firstCodeInput = item.locator('input.first-code');
    await firstCodeInput.waitFor();
    const firstCode = env.inbox.firstCodeFor(payment.id)!;
    t.regex(firstCode, /^\d{8}$/);
    await firstCodeInput.fill(firstCode);
    await item.getByRole('button', { name: 'Show code' }).click();
    const shown = ((await item.locator('.second-code').textContent()) ?? '').replace(/\s/g, '');
    const expected = deriveSecondCode(payer.secret, { firstCode, amount: 42_00n, currency: 'USD', payeeAccountId: shop.account });
    t.is(shown, expected, 'the browser computed the same OCRA response as the server');
    await browser.screenshot('5-code-for-another-terminal');
    t.false(
      browser.apiRequests.some((p) => p.endsWith('/ConfirmPayment')),
      'showing a code sends nothing',
    );

    // The payer types it into their other terminal, which confirms.
    const r = await payer.api.payer.confirmPayment({ idempotencyKey: key('typed'), paymentId: payment.id, proof: { case: 'secondCode', value: shown } });
    t.is(r.payment?.state, PaymentState.SUCCEEDED);
    await page.locator(`li[data-payment-id="${payment.id}"][data-state="SUCCEEDED"]`).waitFor();
    t.is((await balance(env, shop.account)).posted, 42_00n);
    assertNoSecretsLogged(t, env, [payer.secretBase32, payer.token, firstCode, shown]);
  });
});

browserTest('wrong codes: attempts left in words, then declined, then locked out', async (t) => {
  await withTerminal(t, async ({ env }, browser) => {
    const { page } = browser;
    const shop = await newMerchant(env, 0);
    const payer = await newPayer(env, 100_00n);
    await enrollPage(page, payer, base32Encode(randomBytes(32))); // not the enrolled secret
    const payment = await createPayment(shop, payer, 5_00n);
    const item = card(page, payment.id);
    const approve = item.getByRole('button', { name: 'Approve' });
    for (let left = 4; left >= 1; left--) {
      await approve.click();
      await item.locator('.note', { hasText: `Wrong code. ${left} ${left === 1 ? 'attempt' : 'attempts'} left.` }).waitFor();
    }
    await browser.screenshot('6-wrong-code');
    await approve.click();
    await page.locator(`li[data-payment-id="${payment.id}"][data-state="DECLINED"]`).waitFor();
    t.regex((await item.textContent()) ?? '', /Too many wrong codes: the payment was declined|Locked out after repeated wrong answers/);
    t.is((await shop.api.payments.getPayment({ paymentId: payment.id })).payment?.state, PaymentState.DECLINED);

    const next = await createPayment(shop, payer, 6_00n);
    const nextItem = card(page, next.id);
    await nextItem.getByRole('button', { name: 'Approve' }).click();
    await nextItem.locator('.note', { hasText: /^Locked out after repeated wrong answers\. Try again in \d+ (seconds|minutes)\.$/ }).waitFor();
    await browser.screenshot('7-locked-out');
    t.is((await balance(env, payer.account)).available, 100_00n, 'nothing charged');
    t.is((await balance(env, shop.account)).posted, 0n);
  });
});

browserTest('with the stream down the terminal polls ListPendingPayments and still approves', async (t) => {
  await withTerminal(t, async ({ env }, browser) => {
    const { page } = browser;
    await page.route('**/countersign.v1.PayerService/WatchPendingPayments', (route) => route.abort('connectionrefused'));
    const shop = await newMerchant(env, 0);
    const payer = await newPayer(env, 100_00n);
    await enrollPage(page, payer, payer.secretBase32);
    await page.getByText('Reconnecting… checking for payments every few seconds.').waitFor();
    const payment = await createPayment(shop, payer, 3_25n);
    const item = card(page, payment.id);
    await item.getByRole('button', { name: 'Approve' }).click();
    await page.locator(`li[data-payment-id="${payment.id}"][data-state="SUCCEEDED"]`).waitFor();
    t.true(
      browser.apiRequests.some((p) => p.endsWith('/ListPendingPayments')),
      'found by polling',
    );
    t.is((await balance(env, shop.account)).posted, 3_25n);
  });
});

browserTest("Chromium reproduces SECOND_CODE.md's worked example with the terminal's WebCrypto OCRA", async (t) => {
  await withTerminal(t, async (_te, browser) => {
    const bundled = await build({
      entryPoints: [new URL('../../services/web/client/ocra.mts', import.meta.url).pathname],
      bundle: true,
      write: false,
      format: 'iife',
      globalName: 'terminalOcra',
      platform: 'browser',
      logLevel: 'silent',
    });
    await browser.page.evaluate(`${bundled.outputFiles[0]!.text}; globalThis.terminalOcra = terminalOcra;`); // Playwright's evaluation, not the page's own script (its CSP has no unsafe-eval)
    const cases = workedExample.map(([change]) => {
      const f = { ...example, ...change };
      return { ...f, amount: String(f.amount) };
    });
    const codes = await browser.page.evaluate(`(async () => {
      const o = globalThis.terminalOcra;
      const key = await o.importOcraKey(new TextEncoder().encode(${JSON.stringify(exampleSecretAscii)}), o.parseTerminalSuite(o.secondCodeSuite));
      const out = [];
      for (const c of ${JSON.stringify(cases)}) out.push(await o.secondCode(key, o.secondCodeSuite, { ...c, amount: BigInt(c.amount) }));
      return out;
    })()`);
    t.deepEqual(
      codes,
      workedExample.map(([, code]) => code),
    );
  });
});
