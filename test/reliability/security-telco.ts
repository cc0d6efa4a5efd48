import { createHmac, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Code } from '@connectrpc/connect';
import { rateWindowOf } from '../../authz/store/port.js';
import { Channel, Factor, PasswordKind, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { type EnrollMerchantResponse, EnrollmentService, type EnrollPayerResponse } from '../../gen/countersign/v1/enrollment_pb.js';
import { LedgerService } from '../../gen/countersign/v1/ledger_pb.js';
import { type CreatePaymentResponse, type GetPaymentResponse, type ListPaymentsResponse, PaymentService } from '../../gen/countersign/v1/payments_pb.js';
import { freePort } from '../../services/net.js';
import { startTelcoBridge, type TelcoBridge } from '../../services/telco.js';
import { type Smsc, startSmsc } from '../../telco-bridge/simulator/smsc.js';
import { startVoiceProvider, type VoiceProvider } from '../../telco-bridge/simulator/voice-provider.js';
import { twilioSignature } from '../../telco-bridge/twilio-signature.js';
import { fileLogger, type ReliabilityEnv } from './security-env.js';
import { type Outcome, statusName } from './security-rpc.js';

/**
 * The telco side of the security scenario: a real telco bridge (SMPP to a simulated SMSC,
 * TwiML webhooks from a simulated voice provider) in front of the authz server. Forged voice
 * webhooks must be refused with 403 and change nothing; the SMS-pumping limits (per
 * destination, per payer, per number prefix) must refuse the code that would cross them with
 * RESOURCE_EXHAUSTED, send nothing and reserve nothing.
 */

export interface TelcoWorld {
  smsc: Smsc;
  voice: VoiceProvider;
  bridge: TelcoBridge | undefined;
  bridgePort: number;
  telcoKey: string;
  authToken: string;
  smppPassword: string;
  close(): Promise<void>;
}

const accountSid = 'AC5ec0000000000000000000000000001';
/** Bound on waiting for the bridge's SMPP bind and for each SMS, milliseconds. */
const telcoWaitMs = 15_000;

/** The simulators and the bridge's port, before the authz server starts (it needs the bridge's address). */
export async function startTelcoSimulators(): Promise<Omit<TelcoWorld, 'bridge'>> {
  const smppPassword = `smpp-${randomBytes(6).toString('hex')}`;
  const authToken = `voice-${randomBytes(16).toString('hex')}`;
  const smsc = await startSmsc({ systemId: 'countersign', password: smppPassword });
  const voice = await startVoiceProvider({ accountSid, authToken });
  return {
    smsc,
    voice,
    bridgePort: await freePort(),
    telcoKey: `cs_telco_${randomBytes(18).toString('base64url')}`,
    authToken,
    smppPassword,
    async close() {
      await voice.close();
      await smsc.close();
    },
  };
}

export async function startBridge(sims: Omit<TelcoWorld, 'bridge'>, env: ReliabilityEnv, logDir: string): Promise<TelcoWorld> {
  const log = fileLogger(join(logDir, 'security-telco-bridge.log'), 'countersign-telco-bridge');
  const bridge = await startTelcoBridge({
    host: '127.0.0.1',
    grpcPort: sims.bridgePort,
    webhookPort: 0,
    serviceKey: sims.telcoKey,
    sms: {
      kind: 'smpp',
      host: '127.0.0.1',
      port: sims.smsc.port,
      systemId: 'countersign',
      password: sims.smppPassword,
      sourceAddr: 'countersign',
      windowMax: 10,
      ratePerSecondMax: 200,
      reconnectDelayMsMax: 500,
    },
    voice: { kind: 'twilio', baseUrl: sims.voice.baseUrl, accountSid, authToken: sims.authToken, from: '+15550001000' },
    authz: { address: `127.0.0.1:${env.grpcPort}`, serviceKey: sims.telcoKey },
    logger: log.logger,
  });
  if (!(await bridge.whenSmsReady(telcoWaitMs))) throw new Error(`the telco bridge did not bind to the SMSC within ${telcoWaitMs} ms`);
  return {
    ...sims,
    bridge,
    async close() {
      await bridge.close();
      log.flush();
      await sims.close();
    },
  };
}

interface Shop {
  id: string;
  key: string;
}

async function enrollShop(env: ReliabilityEnv, secrets: Set<string>): Promise<Shop> {
  const r = await env.rpc.unary(
    'grpc-js',
    EnrollmentService,
    'enrollMerchant',
    { idempotencyKey: `shop-${randomBytes(6).toString('hex')}`, name: 'Telco shop', currencies: ['USD'], feeBasisPoints: 0 },
    { key: env.adminKey },
  );
  if (!r.ok) throw new Error(`enroll merchant: ${statusName(r)}`);
  const m = r.value as EnrollMerchantResponse;
  secrets.add(m.apiKey);
  return { id: m.merchantId, key: m.apiKey };
}

async function enrollPayer(env: ReliabilityEnv, phone: string, funds: bigint, policy: object, secrets: Set<string>): Promise<{ id: string; account: string }> {
  const r = await env.rpc.unary(
    'grpc-js',
    EnrollmentService,
    'enrollPayer',
    {
      idempotencyKey: `tp-${randomBytes(6).toString('hex')}`,
      phone,
      displayName: 'Telco payer',
      currencies: ['USD'],
      policies: [{ currency: 'USD', ...policy }],
    },
    { key: env.adminKey },
  );
  if (!r.ok) throw new Error(`enroll payer ${phone}: ${statusName(r)} ${r.message}`);
  const p = r.value as EnrollPayerResponse;
  secrets.add(p.payerToken);
  secrets.add(p.verificationSecretBase32);
  const account = p.payer!.prepaidAccountIds.USD!;
  if (funds > 0n) {
    const f = await env.rpc.unary(
      'grpc-js',
      LedgerService,
      'fundAccount',
      { idempotencyKey: `tf-${randomBytes(6).toString('hex')}`, accountId: account, amount: funds, currency: 'USD' },
      { key: env.adminKey },
    );
    if (!f.ok) throw new Error(`fund ${phone}: ${statusName(f)}`);
  }
  return { id: p.payer!.id, account };
}

/** How many payments `shop` has for `payerId` (a refused create records none). */
async function paymentsFor(env: ReliabilityEnv, shop: Shop, payerId: string): Promise<number> {
  const r = await env.rpc.unary('grpc-js', PaymentService, 'listPayments', { payerId, pageSize: 1000 }, { key: shop.key });
  return r.ok ? (r.value as ListPaymentsResponse).payments.length : -1;
}

// ------------------------------------------------------------------------------ forged webhooks

/**
 * A payment waiting for its IVR password while the call rings; then webhooks the voice provider
 * never sent: unsigned, signed with another token, signed for other digits, signed for another
 * URL, signed then given an extra parameter. Each must be 403 and leave the payment as it was.
 */
export async function checkForgedWebhooks(
  env: ReliabilityEnv,
  telco: TelcoWorld,
  secrets: Set<string>,
  counts: Record<string, number>,
  violations: string[],
): Promise<void> {
  const bridge = telco.bridge!;
  const shop = await enrollShop(env, secrets);
  const phone = `+1628900${String(Math.floor(Math.random() * 1e4)).padStart(4, '0')}`;
  const payer = await enrollPayer(
    env,
    phone,
    100_00n,
    { noFactorBelow: 0n, oneFactorUpTo: 1000_00n, oneFactor: Factor.IVR_PASSWORD, moreFactors: [Factor.IVR_PASSWORD] },
    secrets,
  );
  const password = String(100_000 + Math.floor(Math.random() * 899_999));
  secrets.add(password);
  const set = await env.rpc.unary(
    'grpc-js',
    EnrollmentService,
    'setPassword',
    { idempotencyKey: `pw-${randomBytes(4).toString('hex')}`, payerId: payer.id, kind: PasswordKind.IVR, password },
    { key: env.adminKey },
  );
  if (!set.ok) throw new Error(`set password: ${statusName(set)}`);
  telco.voice.pauseAnswering(); // the call rings while the forgeries arrive
  const created = await env.rpc.unary(
    'grpc-js',
    PaymentService,
    'createPayment',
    {
      idempotencyKey: `ivr-${randomBytes(4).toString('hex')}`,
      payer: { case: 'payerId', value: payer.id },
      amount: 5_00n,
      currency: 'USD',
      description: 'forgery target',
      channel: Channel.MERCHANT,
    },
    { key: shop.key },
  );
  if (!created.ok) throw new Error(`create IVR payment: ${statusName(created)} ${created.message}`);
  const id = (created.value as CreatePaymentResponse).payment!.id;
  const base = bridge.webhookBaseUrl.replace(/\/+$/, '');
  const digitsUrl = `${base}/voice/digits?ref=${id}`;
  const params: [string, string][] = [
    ['CallSid', 'CA00000000000000000000000000000001'],
    ['Digits', password],
    ['From', '+15550001000'],
    ['To', phone],
  ];
  const forgeries: { name: string; url: string; params: [string, string][]; signature: string | undefined }[] = [
    { name: 'unsigned', url: digitsUrl, params, signature: undefined },
    { name: 'signed with another auth token', url: digitsUrl, params, signature: twilioSignature(`not-${telco.authToken}`, digitsUrl, params) },
    {
      name: 'signature of other digits',
      url: digitsUrl,
      params,
      signature: twilioSignature(
        telco.authToken,
        digitsUrl,
        params.map(([k, v]) => [k, k === 'Digits' ? '0000' : v]),
      ),
    },
    { name: 'signature of another URL', url: digitsUrl, params, signature: twilioSignature(telco.authToken, `${base}/voice/answer?ref=${id}`, params) },
    {
      name: 'signed, then a parameter added',
      url: digitsUrl,
      params: [...params, ['SpeechResult', password]],
      signature: twilioSignature(telco.authToken, digitsUrl, params),
    },
    { name: 'a garbage signature', url: digitsUrl, params, signature: createHmac('sha256', 'x').update('y').digest('base64') },
  ];
  for (const f of forgeries) {
    const response = await fetch(f.url, {
      method: 'POST',
      body: new URLSearchParams(f.params),
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(f.signature === undefined ? {} : { 'x-twilio-signature': f.signature }) },
      signal: AbortSignal.timeout(telcoWaitMs),
    }).catch((e: unknown) => ({ status: `no answer (${String(e)})` }));
    counts.forgedWebhooks = (counts.forgedWebhooks ?? 0) + 1;
    if (response.status !== 403) violations.push(`telco: a forged voice webhook (${f.name}) to /voice/digits was answered ${response.status}, expected 403`);
  }
  const after = await env.rpc.unary('grpc-js', PaymentService, 'getPayment', { paymentId: id }, { key: shop.key });
  const p = after.ok ? (after.value as GetPaymentResponse).payment : undefined;
  if (p?.state !== PaymentState.CHALLENGED || p.satisfiedFactors.length !== 0 || p.attemptsLeft !== 5) {
    violations.push(
      `telco: after forged webhooks the IVR payment is ${p === undefined ? statusName(after) : `${PaymentState[p.state]}, satisfied [${p.satisfiedFactors.join(',')}], attempts left ${p.attemptsLeft}`}; expected CHALLENGED, nothing satisfied, 5 attempts`,
    );
  }
  telco.voice.resumeAnswering();
  await env.rpc.unary(
    'grpc-js',
    PaymentService,
    'cancelPayment',
    { idempotencyKey: `ivr-cancel-${id}`, paymentId: id, reason: 'forgery test done' },
    { key: shop.key },
  );
}

// ------------------------------------------------------------------------------ SMS pumping

const pumpPolicy = { noFactorBelow: 0n, oneFactorUpTo: 1000_00n, oneFactor: Factor.SECOND_CODE, moreFactors: [Factor.SECOND_CODE] };
const pumpAmount = 1_00n;

interface Limits {
  codesPerDestinationMax: number;
  codesPerPayerMax: number;
  codesPerPrefixMax: number;
  codeRateWindowMs: number;
}

/** Creates a payment whose code goes out by SMS (channel MERCHANT). */
function createSmsPayment(env: ReliabilityEnv, shop: Shop, payerId: string): Promise<Outcome> {
  return env.rpc.unary(
    'grpc-js',
    PaymentService,
    'createPayment',
    {
      idempotencyKey: `pump-${randomBytes(6).toString('hex')}`,
      payer: { case: 'payerId', value: payerId },
      amount: pumpAmount,
      currency: 'USD',
      description: 'pump',
      channel: Channel.MERCHANT,
    },
    { key: shop.key },
  );
}

/** Waits (bounded) until the SMSC holds `count` messages to `phone`. */
async function smsCount(telco: TelcoWorld, phone: string, count: number): Promise<number> {
  const endAt = Date.now() + telcoWaitMs;
  while (telco.smsc.messagesTo(phone).length < count && Date.now() < endAt) await new Promise((r) => setTimeout(r, 20));
  return telco.smsc.messagesTo(phone).length;
}

function expectRateRefusal(o: Outcome, reason: string, what: string, violations: string[]): void {
  if (o.ok || o.code !== Code.ResourceExhausted || o.reason !== reason)
    violations.push(
      `SMS pumping: ${what} was answered ${statusName(o)}${o.ok ? '' : ` (reason ${o.reason ?? 'none'})`}, expected RESOURCE_EXHAUSTED with reason ${reason}`,
    );
}

/**
 * Per destination: the code past the limit to one number is refused. Per payer: codes to a
 * payer whose number changed still count (the directory is edited in process — there is no API
 * to change a phone). Per prefix: numbers sharing `+` and 6 digits share a budget.
 */
export async function checkSmsPumping(
  env: ReliabilityEnv,
  telco: TelcoWorld,
  limits: Limits,
  secrets: Set<string>,
  counts: Record<string, number>,
  violations: string[],
): Promise<void> {
  const shop = await enrollShop(env, secrets);
  const pump: Pump = { env, telco, shop, limits, secrets, funds: pumpAmount * BigInt(limits.codesPerPayerMax + 2) };
  const before = telco.smsc.messages.length;
  await inOneWindow(limits, violations, (v) => checkPerDestination(pump, v));
  await inOneWindow(limits, violations, (v) => checkPerPayer(pump, v));
  // No other check's numbers start with +162893 or +162896 (the prefix of a second run).
  await inOneWindow(limits, violations, (v, attempt) => checkPerPrefix(pump, v, attempt === 1 ? '+162893' : '+162896'));
  counts.smsSent = telco.smsc.messages.length - before;
}

/** What every SMS-pumping check works with: the server, the telco world, one shop, the limits, and the funds each payer gets. */
interface Pump {
  env: ReliabilityEnv;
  telco: TelcoWorld;
  shop: Shop;
  limits: Limits;
  secrets: Set<string>;
  funds: bigint;
}

/**
 * Runs a check of the code-rate limits within one of their windows. The counters are per aligned
 * window (`codeRateWindowMs`, 600 s by default, from the Unix epoch: store/port.ts `rateWindowOf`),
 * so a check that crosses a window's end sees its counts start over and the limit not reached —
 * what the limits promise, not a violation. Its findings then do not count and it runs once more
 * (`attempt` 2), with counters the first run did not touch (new numbers, a new payer, another
 * prefix: the first run's codes after the crossing count in the new window); it takes well under
 * a window, so a second crossing cannot happen.
 */
async function inOneWindow(limits: Limits, violations: string[], check: (violations: string[], attempt: 1 | 2) => Promise<void>): Promise<void> {
  const found: string[] = [];
  const window = rateWindowOf(Date.now(), limits.codeRateWindowMs);
  await check(found, 1);
  if (rateWindowOf(Date.now(), limits.codeRateWindowMs) === window) violations.push(...found);
  else await check(violations, 2);
}

async function checkPerDestination({ env, telco, shop, limits, secrets, funds }: Pump, violations: string[]): Promise<void> {
  const destinationPhone = `+1628911${String(Math.floor(Math.random() * 1e4)).padStart(4, '0')}`;
  const d = await enrollPayer(env, destinationPhone, funds, pumpPolicy, secrets);
  for (let i = 0; i < limits.codesPerDestinationMax; i += 1) {
    const o = await createSmsPayment(env, shop, d.id);
    if (!o.ok) violations.push(`SMS pumping: code ${i + 1} of ${limits.codesPerDestinationMax} to one number was refused: ${statusName(o)} ${o.message}`);
  }
  expectRateRefusal(await createSmsPayment(env, shop, d.id), 'CODE_RATE_DESTINATION', `code ${limits.codesPerDestinationMax + 1} to one number`, violations);
  const sentD = await smsCount(telco, destinationPhone, limits.codesPerDestinationMax);
  if (sentD !== limits.codesPerDestinationMax) violations.push(`SMS pumping: ${sentD} SMS reached the number, expected ${limits.codesPerDestinationMax}`);
  const recordedD = await paymentsFor(env, shop, d.id);
  if (recordedD !== limits.codesPerDestinationMax)
    violations.push(
      `SMS pumping: ${recordedD} payments recorded after the refused code, expected ${limits.codesPerDestinationMax} (nothing for the refused one)`,
    );
}

async function checkPerPayer({ env, telco, shop, limits, secrets, funds }: Pump, violations: string[]): Promise<void> {
  const phones = Array.from({ length: 3 }, (_, i) => `+1628922${i}${String(Math.floor(Math.random() * 1e3)).padStart(3, '0')}`);
  const q = await enrollPayer(env, phones[0]!, funds, pumpPolicy, secrets);
  let sent = 0;
  for (const phone of phones.slice(0, 2)) {
    const payer = await env.app.directory.getPayer(q.id);
    await env.app.directory.putPayer({ ...payer!, phone });
    for (let i = 0; i < limits.codesPerPayerMax / 2 && sent < limits.codesPerPayerMax; i += 1, sent += 1) {
      const o = await createSmsPayment(env, shop, q.id);
      if (!o.ok) violations.push(`SMS pumping: code ${sent + 1} of ${limits.codesPerPayerMax} for one payer was refused: ${statusName(o)} ${o.message}`);
    }
  }
  const payer = await env.app.directory.getPayer(q.id);
  await env.app.directory.putPayer({ ...payer!, phone: phones[2]! });
  expectRateRefusal(
    await createSmsPayment(env, shop, q.id),
    'CODE_RATE_PAYER',
    `code ${limits.codesPerPayerMax + 1} for one payer (to a third number)`,
    violations,
  );
  if (telco.smsc.messagesTo(phones[2]!).length !== 0) violations.push('SMS pumping: the payer-limited code reached its number');
}

/** `prefix` is `+` and 6 digits: every number of the check starts with it; each number takes its destination limit's worth. */
async function checkPerPrefix({ env, telco, shop, limits, secrets }: Pump, violations: string[], prefix: string): Promise<void> {
  const perNumber = limits.codesPerDestinationMax;
  const numbers = Math.ceil(limits.codesPerPrefixMax / perNumber) + 1;
  const suffix = randomBytes(2).readUInt16BE(0) % 100;
  const toPrefix = () => telco.smsc.messages.filter((m) => m.to.startsWith(prefix)).length;
  let sent = 0;
  let refusedAt = -1;
  for (let n = 0; n < numbers && refusedAt < 0; n += 1) {
    const phone = `${prefix}3${String(suffix).padStart(2, '0')}${String(n).padStart(2, '0')}`;
    const p = await enrollPayer(env, phone, pumpAmount * BigInt(perNumber + 1), pumpPolicy, secrets);
    for (let i = 0; i < perNumber && refusedAt < 0; i += 1) {
      const o = await createSmsPayment(env, shop, p.id);
      if (o.ok) sent += 1;
      else {
        refusedAt = sent;
        expectRateRefusal(o, 'CODE_RATE_PREFIX', `code ${sent + 1} to the prefix ${prefix}`, violations);
      }
    }
  }
  if (refusedAt !== limits.codesPerPrefixMax)
    violations.push(`SMS pumping: the prefix limit refused at code ${refusedAt + 1}, expected at ${limits.codesPerPrefixMax + 1}`);
  const endAt = Date.now() + telcoWaitMs;
  while (toPrefix() < sent && Date.now() < endAt) await new Promise((r) => setTimeout(r, 20));
  const delivered = toPrefix();
  if (delivered !== sent) violations.push(`SMS pumping: ${delivered} SMS reached the prefix for ${sent} accepted codes`);
  if (delivered > limits.codesPerPrefixMax) violations.push(`SMS pumping: ${delivered} SMS reached the prefix, at most ${limits.codesPerPrefixMax} allowed`);
}
