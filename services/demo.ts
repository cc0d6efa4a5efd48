import { randomBytes } from 'node:crypto';
import { Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { pino } from 'pino';
import { deriveSecondCode } from '../authz/codes/challenge.js';
import { base32Decode } from '../authz/codes/secret.js';
import { Channel, DeclineReason, Factor, PasswordKind, PaymentState } from '../gen/countersign/v1/common_pb.js';
import { EnrollmentService } from '../gen/countersign/v1/enrollment_pb.js';
import { LedgerService } from '../gen/countersign/v1/ledger_pb.js';
import { PayerService } from '../gen/countersign/v1/payer_pb.js';
import { PaymentService } from '../gen/countersign/v1/payments_pb.js';
import { currencyOf, formatMinor } from '../ledger/chart.js';
import { Handset } from '../telco-bridge/simulator/handset.js';
import { type Smsc, startSmsc } from '../telco-bridge/simulator/smsc.js';
import { startVoiceProvider, type VoiceProvider } from '../telco-bridge/simulator/voice-provider.js';
import { createApp } from './app.js';
import { startBankServer } from './bank/bank-server.js';
import { demoCards } from './bank/cards.js';
import { BankFrontEnd } from './bank/frontend.js';
import { generateX25519KeyPair } from './bank/hpke.js';
import type { Config } from './config.js';
import { carrierBilling, methodFive, methodFour } from './demo-methods.js';
import { ErrorInfoSchema } from './rpc/status-details.js';
import { startServers } from './server.js';
import { freePort, startBridge } from './telco.js';

type Print = (line: string) => void;
const usd = currencyOf('USD')!;
const money = (minor: bigint) => `USD ${formatMinor(minor, usd)}`;
/** Every wait for the simulated phone network, milliseconds. */
const networkWaitMs = 15_000;

type Clients = ReturnType<typeof clientsFor>;

function bearer(key: string): Interceptor {
  return (next) => (req) => {
    req.header.set('authorization', `Bearer ${key}`);
    return next(req);
  };
}

function clientsFor(baseUrl: string, key: string) {
  const transport = createGrpcTransport({ baseUrl, interceptors: [bearer(key)] });
  return {
    payments: createClient(PaymentService, transport),
    payer: createClient(PayerService, transport),
    enrollment: createClient(EnrollmentService, transport),
    ledger: createClient(LedgerService, transport),
  };
}

async function outcome<T>(call: Promise<T>): Promise<T | ConnectError> {
  try {
    return await call;
  } catch (error) {
    return ConnectError.from(error);
  }
}

function describe(e: ConnectError): string {
  const info = e.findDetails(ErrorInfoSchema)[0] as { metadata?: Record<string, string> } | undefined;
  const left = info?.metadata?.attempts_left;
  return `${Code[e.code]}: ${e.rawMessage}${left === undefined ? '' : ` (${left} attempts left)`}`;
}

/** The simulated phone network: an SMSC (SMPP) and a voice provider (TwiML), with the payers' handsets. */
interface Network {
  smsc: Smsc;
  voice: VoiceProvider;
  phone(number: string): Handset;
}

export interface DemoResult {
  payerBalance: bigint;
  merchantBalance: bigint;
  m2Balance: bigint;
  m3Balance: bigint;
  m4Balance: bigint;
  /** M3c: charged to Erin's line this period. */
  lineCharged: bigint;
  /** M5: paid by Frank's card. */
  cardPaid: bigint;
}

/** Where the demo runs: what `demoBanner` prints first. */
export interface DemoWiring {
  /** authz's gRPC address (host:port). */
  authz: string;
  /** The app's own `describe`: ledger, holds, payment store and directory (services/app.ts). */
  describe: readonly string[];
  /** The telco bridge's gRPC address, the simulated SMSC's address and the voice provider's URL. */
  bridge: string;
  smsc: string;
  voice: string;
  /** The reference bank front-end's gRPC address. */
  bank: string;
}

/**
 * The demo's first lines: the ledger and stores exactly as the app describes them (one entry a
 * line), then the channels and the bank this demo wired, then a blank line.
 */
export function demoBanner(w: DemoWiring): string[] {
  const [first = '', ...rest] = w.describe;
  return [
    'countersign demo: authz, telco bridge and bank in this process on loopback; a merchant and six payers over real gRPC',
    `  authz (gRPC)             ${w.authz}`,
    `  ledger and stores        ${first}`,
    ...rest.map((line) => `                           ${line}`),
    `  SMS and calls            telco bridge in process at ${w.bridge}: SMS over SMPP 3.4 to a simulated SMSC at ${w.smsc},`,
    `                           calls over TwiML to a simulated voice provider at ${w.voice}`,
    `  bank (M5)                reference bank front-end in process at ${w.bank}`,
    '',
  ];
}

/**
 * `countersign demo`: starts authz, the telco bridge and the reference bank in process on free
 * loopback ports, with a simulated phone network (an SMSC over SMPP 3.4 and a TwiML voice
 * provider), prints where everything runs (`demoBanner`) and walks a merchant and six payers
 * through countersign over real gRPC: Alice M1 (frictionless, second code with a wrong code then
 * the right one, a decline, insufficient funds), Bob M2 (SMS code, reply, call, payment password),
 * Carol M3 (login, authentication password, call, authorization password), Dave M4 (a paired
 * watch answering on a second path), Erin M3c (charges onto a mobile line with a monthly credit)
 * and Frank M5 (a pay number, card + PIN sealed for the in-process reference bank) — printing
 * each step and the balances.
 *
 * The ledger is the configured one (TigerBeetle when COUNTERSIGN_TB_ADDRESSES is set, else the
 * embedded ledger in memory); payments and the directory are always kept in memory.
 */
export async function runDemo(config: Config, print: Print): Promise<DemoResult> {
  // Whatever started is closed, last first, even when a later start fails (an unreachable TigerBeetle, a busy port).
  const started: (() => Promise<void>)[] = [];
  try {
    const smppPassword = randomBytes(8).toString('hex');
    const smsc = await startSmsc({ systemId: 'countersign', password: smppPassword });
    started.push(() => smsc.close());
    const voiceToken = randomBytes(16).toString('hex');
    const voice = await startVoiceProvider({ accountSid: 'ACdemo', authToken: voiceToken });
    started.push(() => voice.close());
    const telcoKey = `cs_telco_${randomBytes(16).toString('hex')}`;
    const bridgePort = await freePort('127.0.0.1');
    const logger = pino({ level: 'silent' });
    const bankFrontEnd = new BankFrontEnd({ privateKey: generateX25519KeyPair().privateKey, cards: await demoCards(), logger, now: Date.now });
    const bank = await startBankServer({ bank: bankFrontEnd, host: '127.0.0.1', port: 0, logger });
    started.push(() => bank.close());
    const app = await createApp({
      config: {
        ...config,
        masterKey: randomBytes(32).toString('base64'),
        adminKey: `cs_admin_${randomBytes(16).toString('hex')}`,
        redisUrl: undefined,
        redisCluster: undefined,
        telcoKey,
        telcoBridge: `127.0.0.1:${bridgePort}`,
        bank: `127.0.0.1:${bank.port}`,
        authorizers: [],
      },
      memoryLedger: true,
      memoryDirectory: true,
      memoryStore: true,
      logger,
    });
    started.push(() => app.close());
    const servers = await startServers(app, { host: '127.0.0.1', grpcPort: 0, connectPort: 0 });
    started.push(() => servers.close());
    const sms = {
      kind: 'smpp' as const,
      host: '127.0.0.1',
      port: smsc.port,
      systemId: 'countersign',
      password: smppPassword,
      sourceAddr: 'countersign',
      windowMax: 10,
      ratePerSecondMax: 50,
    };
    const bridge = await startBridge(
      {
        host: '127.0.0.1',
        grpcPort: bridgePort,
        webhookPort: 0,
        publicWebhookBaseUrl: undefined,
        sms,
        voice: { kind: 'twilio', baseUrl: voice.baseUrl, accountSid: 'ACdemo', authToken: voiceToken, from: '+15550001000' },
        key: telcoKey,
      },
      `127.0.0.1:${servers.grpcPort}`,
      logger,
    );
    started.push(() => bridge.close());
    const wiring = {
      authz: `127.0.0.1:${servers.grpcPort}`,
      describe: app.describe,
      bridge: `127.0.0.1:${bridgePort}`,
      smsc: `127.0.0.1:${smsc.port}`,
      voice: voice.baseUrl,
      bank: `127.0.0.1:${bank.port}`,
    };
    for (const line of demoBanner(wiring)) print(line);
    await bridge.whenSmsReady(networkWaitMs);
    const network: Network = { smsc, voice, phone: (number) => new Handset(number, smsc, voice) };
    return await walkThrough(`http://127.0.0.1:${servers.grpcPort}`, app.adminKey, network, print);
  } finally {
    for (const close of started.reverse()) await close();
  }
}

async function walkThrough(baseUrl: string, adminKey: string, network: Network, print: Print): Promise<DemoResult> {
  const admin = clientsFor(baseUrl, adminKey);
  const merchant = await admin.enrollment.enrollMerchant({ idempotencyKey: 'demo-merchant', name: 'Corner Bakery', currencies: ['USD'], feeBasisPoints: 100 });
  const merchantAccount = merchant.payeeAccountIds.USD!;
  print(`1. Enrolled merchant "Corner Bakery" (fee 1.00 %), account ${merchantAccount}`);
  const shop = clientsFor(baseUrl, merchant.apiKey).payments;
  const balanceOf = async (account: string) => {
    const a = (await admin.ledger.getAccount({ accountId: account })).account!;
    return { posted: a.balance, reserved: a.balance - a.available };
  };
  const m1 = await methodOne(baseUrl, admin, shop, network, merchantAccount, balanceOf, print);
  const m2Balance = await methodTwo(admin, shop, network, balanceOf, print);
  const m3Balance = await methodThree(admin, shop, network, balanceOf, print);
  const context = {
    baseUrl,
    adminKey,
    merchantApiKey: merchant.apiKey,
    merchantAccount,
    print,
    smsCode: (phone: string, index: number) => smsCode(network.phone(phone), index, print),
  };
  const m4Balance = await methodFour(context);
  const lineCharged = await carrierBilling(context);
  const cardPaid = await methodFive(context);
  const merchantBalance = (await balanceOf(merchantAccount)).posted;
  print(`\nCorner Bakery's balance: ${money(merchantBalance)}`);
  return { payerBalance: m1, merchantBalance, m2Balance, m3Balance, m4Balance, lineCharged, cardPaid };
}

type BalanceOf = (account: string) => Promise<{ posted: bigint; reserved: bigint }>;

/** The payer's phone: prints each SMS as it arrives and returns the code in it. */
async function smsCode(phone: Handset, index: number, print: Print): Promise<string> {
  const sms = await phone.waitForSms(networkWaitMs, index);
  print(`    [SMS → ${phone.number}] ${sms.text}`);
  return /code (\d{8})/.exec(sms.text)![1]!;
}

async function methodOne(
  baseUrl: string,
  admin: Clients,
  shop: Clients['payments'],
  network: Network,
  merchantAccount: string,
  balanceOf: BalanceOf,
  print: Print,
): Promise<bigint> {
  const enrolled = await admin.enrollment.enrollPayer({
    idempotencyKey: 'demo-alice',
    phone: '+14155550123',
    displayName: 'Alice',
    currencies: ['USD'],
    policies: [
      {
        currency: 'USD',
        noFactorBelow: 5_00n,
        oneFactorUpTo: 500_00n,
        oneFactor: Factor.SECOND_CODE,
        moreFactors: [Factor.SECOND_CODE, Factor.FIRST_CODE_AND_PIN],
      },
    ],
  });
  const alice = enrolled.payer!;
  const account = alice.prepaidAccountIds.USD!;
  const phone = network.phone(alice.phone);
  print(`\nM1 — first and second transaction code. Payer Alice (${alice.phone}): no factor below USD 5.00, the second code up to USD 500.00;`);
  print(`   her terminal stores the verification secret (shown once, base32) and uses ${enrolled.ocraSuite}`);
  await admin.ledger.fundAccount({ idempotencyKey: 'demo-deposit-alice', accountId: account, amount: 200_00n, currency: 'USD' });
  const alicePays = clientsFor(baseUrl, enrolled.payerToken).payer;
  const show = async () => {
    const b = await balanceOf(account);
    print(`   Alice: ${money(b.posted)} (reserved ${money(b.reserved)})`);
    return b.posted;
  };
  print('2. Funded Alice with USD 200.00');
  await show();
  const small = await shop.createPayment({
    idempotencyKey: 'order-1',
    payer: { case: 'payerId', value: alice.id },
    amount: 3_50n,
    currency: 'USD',
    description: 'Croissant',
  });
  print(`3. USD 3.50 croissant: below Alice's threshold → ${PaymentState[small.payment!.state]} at once (frictionless)`);
  await show();
  print('4. Alice buys a USD 42.00 cake:');
  const cake = await shop.createPayment({
    idempotencyKey: 'order-2',
    payer: { case: 'payerId', value: alice.id },
    amount: 42_00n,
    currency: 'USD',
    description: 'Birthday cake',
  });
  const firstCode = await smsCode(phone, 0, print);
  print(
    `   → ${PaymentState[cake.payment!.state]}: nothing is held until she consents; her terminal computes the second code over that code, USD 42.00 and the payee`,
  );
  const secondCode = deriveSecondCode(base32Decode(enrolled.verificationSecretBase32), {
    firstCode,
    amount: 42_00n,
    currency: 'USD',
    payeeAccountId: merchantAccount,
  });
  const wrong = secondCode === '00000000' ? '11111111' : '00000000';
  const refused = await outcome(
    alicePays.confirmPayment({ idempotencyKey: 'confirm-1', paymentId: cake.payment!.id, proof: { case: 'secondCode', value: wrong } }),
  );
  print(`   she mistypes it (${wrong}) → ${refused instanceof ConnectError ? describe(refused) : 'accepted?!'}`);
  const done = await alicePays.confirmPayment({ idempotencyKey: 'confirm-2', paymentId: cake.payment!.id, proof: { case: 'secondCode', value: secondCode } });
  print(`   she types the right one → ${PaymentState[done.payment!.state]} (posted with the USD 0.42 fee, linked)`);
  await show();
  print('5. Alice is asked to pay USD 60.00 for a gift box she did not order:');
  const gift = await shop.createPayment({
    idempotencyKey: 'order-3',
    payer: { case: 'payerId', value: alice.id },
    amount: 60_00n,
    currency: 'USD',
    description: 'Gift box',
  });
  await smsCode(phone, 1, print);
  const declined = await alicePays.declinePayment({ idempotencyKey: 'decline-1', paymentId: gift.payment!.id, reason: 'not mine' });
  print(`   → ${PaymentState[gift.payment!.state]}; she declines it → ${PaymentState[declined.payment!.state]}, no money moved`);
  await show();
  const big = await shop.createPayment({
    idempotencyKey: 'order-4',
    payer: { case: 'payerId', value: alice.id },
    amount: 400_00n,
    currency: 'USD',
    description: 'Wedding cake',
  });
  const bigCode = await smsCode(phone, 2, print);
  const bigSecond = deriveSecondCode(base32Decode(enrolled.verificationSecretBase32), {
    firstCode: bigCode,
    amount: 400_00n,
    currency: 'USD',
    payeeAccountId: merchantAccount,
  });
  const tooMuch = (await alicePays.confirmPayment({ idempotencyKey: 'confirm-3', paymentId: big.payment!.id, proof: { case: 'secondCode', value: bigSecond } }))
    .payment!;
  print(
    `6. USD 400.00 wedding cake → ${PaymentState[big.payment!.state]} (nothing held); she confirms → ${PaymentState[tooMuch.state]} (${DeclineReason[tooMuch.declineReason]}): more than Alice has, nothing moved`,
  );
  return show();
}

async function methodTwo(admin: Clients, shop: Clients['payments'], network: Network, balanceOf: BalanceOf, print: Print): Promise<bigint> {
  const enrolled = await admin.enrollment.enrollPayer({
    idempotencyKey: 'demo-bob',
    phone: '+14155550124',
    displayName: 'Bob',
    currencies: ['USD'],
    policies: [{ currency: 'USD', noFactorBelow: 0n, oneFactorUpTo: 0n, oneFactor: Factor.SMS_OTP, moreFactors: [Factor.SMS_OTP, Factor.IVR_PASSWORD] }],
  });
  const bob = enrolled.payer!;
  await admin.enrollment.setPassword({ idempotencyKey: 'demo-bob-pw', payerId: bob.id, kind: PasswordKind.IVR, password: '8642' });
  await admin.ledger.fundAccount({ idempotencyKey: 'demo-deposit-bob', accountId: bob.prepaidAccountIds.USD!, amount: 100_00n, currency: 'USD' });
  print(`\nM2 — SMS code, then a call for the payment password. Payer Bob (${bob.phone}), funded with USD 100.00, payment password set.`);
  const phone = network.phone(bob.phone);
  phone.answerCallsWith('8642#');
  const p = await shop.createPayment({
    idempotencyKey: 'order-5',
    payer: { case: 'payerId', value: bob.id },
    amount: 30_00n,
    currency: 'USD',
    description: 'Sourdough subscription',
    channel: Channel.INSTANT_MESSAGING,
  });
  print(`7. USD 30.00 sourdough subscription, ordered over instant messaging → ${PaymentState[p.payment!.state]}`);
  const code = await smsCode(phone, 0, print);
  print(`    [SMS ← ${phone.number}] Bob replies with the code`);
  await phone.reply(code);
  const call = await phone.waitForCallEnd(networkWaitMs);
  transcript(phone, call.says, print);
  const after = await waitForState(shop, p.payment!.id, PaymentState.SUCCEEDED);
  print(`   → ${PaymentState[after]}`);
  const b = await balanceOf(bob.prepaidAccountIds.USD!);
  print(`   Bob: ${money(b.posted)} (reserved ${money(b.reserved)})`);
  return b.posted;
}

async function methodThree(admin: Clients, shop: Clients['payments'], network: Network, balanceOf: BalanceOf, print: Print): Promise<bigint> {
  const enrolled = await admin.enrollment.enrollPayer({
    idempotencyKey: 'demo-carol',
    phone: '+14155550125',
    loginAccount: 'carol',
    displayName: 'Carol',
    currencies: ['USD'],
    policies: [
      {
        currency: 'USD',
        noFactorBelow: 10_00n,
        oneFactorUpTo: 100_00n,
        oneFactor: Factor.IVR_PASSWORD,
        moreFactors: [Factor.AUTH_PASSWORD, Factor.IVR_PASSWORD],
      },
    ],
  });
  const carol = enrolled.payer!;
  await admin.enrollment.setPassword({ idempotencyKey: 'demo-carol-authz', payerId: carol.id, kind: PasswordKind.AUTHORIZATION, password: '2468' });
  await admin.enrollment.setPassword({ idempotencyKey: 'demo-carol-auth', payerId: carol.id, kind: PasswordKind.AUTH, password: 'open sesame 42' });
  await admin.ledger.fundAccount({ idempotencyKey: 'demo-deposit-carol', accountId: carol.prepaidAccountIds.USD!, amount: 500_00n, currency: 'USD' });
  print(`\nM3 — login account, authentication password, a call for the authorization password. Payer Carol (login "carol"), USD 500.00:`);
  print('   no password below USD 10.00; the authorization password up to USD 100.00; both passwords above.');
  const small = await shop.createPayment({
    idempotencyKey: 'order-6',
    payer: { case: 'loginAccount', value: 'carol' },
    amount: 4_00n,
    currency: 'USD',
    description: 'Coffee',
  });
  print(`8. USD 4.00 coffee by login "carol" → ${PaymentState[small.payment!.state]} (no password at this amount)`);
  const phone = network.phone(carol.phone);
  phone.answerCallsWith('2468#');
  const big = await shop.createPayment({
    idempotencyKey: 'order-7',
    payer: { case: 'loginAccount', value: 'carol' },
    amount: 250_00n,
    currency: 'USD',
    description: 'Wedding cake',
    authPassword: 'open sesame 42',
  });
  print(`9. USD 250.00 wedding cake by login "carol" with her authentication password → ${PaymentState[big.payment!.state]}; the phone rings:`);
  const call = await phone.waitForCallEnd(networkWaitMs);
  transcript(phone, call.says, print);
  print(`   → ${PaymentState[await waitForState(shop, big.payment!.id, PaymentState.SUCCEEDED)]}`);
  const b = await balanceOf(carol.prepaidAccountIds.USD!);
  print(`   Carol: ${money(b.posted)} (reserved ${money(b.reserved)})`);
  return b.posted;
}

/** What the payer heard on the call, with the moment they keyed the password (masked). */
function transcript(phone: Handset, says: readonly string[], print: Print): void {
  for (const said of says) {
    print(`    [call → ${phone.number}] "${said}"`);
    if (/password/i.test(said) && /enter/i.test(said)) print(`    [keys on ${phone.number}] ****#`);
  }
}

/** Polls a payment until it reaches `state` (the last step happens in the bridge's webhook), bounded by `networkWaitMs`. */
async function waitForState(shop: Clients['payments'], paymentId: string, state: PaymentState): Promise<PaymentState> {
  const deadline = Date.now() + networkWaitMs;
  for (;;) {
    const current = (await shop.getPayment({ paymentId })).payment!.state;
    if (current === state || Date.now() > deadline) return current;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
