import { randomBytes } from 'node:crypto';
import { Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { deriveSecondCode } from '../authz/codes/challenge.js';
import { base32Decode } from '../authz/codes/secret.js';
import { InboxNotifier, ConsoleNotifier, type CodeDelivery, type Notifier, type PasswordCall } from '../authz/notifier.js';
import { currencyOf, formatMinor } from '../ledger/chart.js';
import { Factor, PaymentState } from '../gen/countersign/v1/common_pb.js';
import { EnrollmentService } from '../gen/countersign/v1/enrollment_pb.js';
import { LedgerService } from '../gen/countersign/v1/ledger_pb.js';
import { PayerService } from '../gen/countersign/v1/payer_pb.js';
import { PaymentService } from '../gen/countersign/v1/payments_pb.js';
import { createApp } from './app.js';
import type { Config } from './config.js';
import { startServers } from './server.js';
import { ErrorInfoSchema } from './rpc/status-details.js';

type Print = (line: string) => void;
const usd = currencyOf('USD')!;
const money = (minor: bigint) => `USD ${formatMinor(minor, usd)}`;

/** The payer's phone in the demo: prints what arrives and keeps it for the payer's terminal. */
class DemoPhone implements Notifier {
  readonly channel = 'CONSOLE';
  readonly inbox = new InboxNotifier();
  private readonly console: ConsoleNotifier;
  constructor(print: Print) {
    this.console = new ConsoleNotifier((line) => print(`    ${line}`), (amount, code) => `${code} ${formatMinor(amount, currencyOf(code)!)}`);
  }
  async deliverFirstCode(d: CodeDelivery): Promise<void> {
    await this.console.deliverFirstCode(d);
    await this.inbox.deliverFirstCode(d);
  }
  async callForPassword(c: PasswordCall): Promise<void> {
    await this.console.callForPassword(c);
    await this.inbox.callForPassword(c);
  }
}

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
  const left = info?.metadata?.['attempts_left'];
  return `${Code[e.code]}: ${e.rawMessage}${left === undefined ? '' : ` (${left} attempts left)`}`;
}

/**
 * `countersign demo`: starts the servers in process on free loopback ports and walks a merchant
 * and a payer through countersign over real gRPC: enroll, fund, a frictionless payment, a
 * second-code payment, a wrong code then the right one, a declined payment and one that exceeds
 * the payer's funds — printing each step and the balances.
 */
export async function runDemo(config: Config, print: Print): Promise<{ payerBalance: bigint; merchantBalance: bigint }> {
  const phone = new DemoPhone(print);
  const app = await createApp({
    config: { ...config, masterKey: randomBytes(32).toString('base64'), adminKey: `cs_admin_${randomBytes(16).toString('hex')}`, redisUrl: undefined },
    memoryLedger: true,
    memoryDirectory: true,
    notifier: phone,
    logger: (await import('pino')).pino({ level: 'silent' }),
  });
  const servers = await startServers(app, { host: '127.0.0.1', grpcPort: 0, connectPort: 0 });
  try {
    return await walkThrough(`http://127.0.0.1:${servers.grpcPort}`, app.adminKey, phone, print);
  } finally {
    await servers.close();
    await app.close();
  }
}

async function walkThrough(baseUrl: string, adminKey: string, phone: DemoPhone, print: Print) {
  const admin = clientsFor(baseUrl, adminKey);
  print(`countersign demo — servers on ${baseUrl} (gRPC, grpc-js)\n`);
  const merchant = await admin.enrollment.enrollMerchant({ idempotencyKey: 'demo-merchant', name: 'Corner Bakery', currencies: ['USD'], feeBasisPoints: 100 });
  print(`1. Enrolled merchant "Corner Bakery" (fee 1.00 %), account ${merchant.payeeAccountIds['USD']}`);
  const enrolled = await admin.enrollment.enrollPayer({
    idempotencyKey: 'demo-payer',
    phone: '+14155550123',
    displayName: 'Alice',
    currencies: ['USD'],
    policies: [{ currency: 'USD', noFactorBelow: 5_00n, oneFactorUpTo: 500_00n, oneFactor: Factor.SECOND_CODE, moreFactors: [Factor.SECOND_CODE, Factor.FIRST_CODE_AND_PIN] }],
  });
  const payer = enrolled.payer!;
  print(`2. Enrolled payer Alice (+14155550123): no factor below USD 5.00, the second code up to USD 500.00`);
  print(`   her terminal stores the verification secret (shown once, base32, ${enrolled.verificationSecretBase32.length} characters) and uses ${enrolled.ocraSuite}`);
  const payerAccount = payer.prepaidAccountIds['USD']!;
  const merchantAccount = merchant.payeeAccountIds['USD']!;
  await admin.ledger.fundAccount({ idempotencyKey: 'demo-deposit', accountId: payerAccount, amount: 200_00n, currency: 'USD' });
  const shop = clientsFor(baseUrl, merchant.apiKey).payments;
  const terminal = clientsFor(baseUrl, enrolled.payerToken).payer;
  const balances = async () => {
    const [p, m] = await Promise.all([admin.ledger.getAccount({ accountId: payerAccount }), admin.ledger.getAccount({ accountId: merchantAccount })]);
    const payerBalance = p.account!.creditsPosted - p.account!.debitsPosted;
    const merchantBalance = m.account!.creditsPosted - m.account!.debitsPosted;
    print(`   balances: Alice ${money(payerBalance)} (reserved ${money(p.account!.debitsPending)}), Corner Bakery ${money(merchantBalance)}\n`);
    return { payerBalance, merchantBalance };
  };
  print('3. Funded Alice with USD 200.00');
  await balances();

  const small = await shop.createPayment({ idempotencyKey: 'order-1', payer: { case: 'payerId', value: payer.id }, amount: 3_50n, currency: 'USD', description: 'Croissant' });
  print(`4. USD 3.50 croissant: below Alice's threshold → ${PaymentState[small.payment!.state]} at once (frictionless)`);
  await balances();

  print('5. Alice buys a USD 42.00 cake:');
  const cake = await shop.createPayment({ idempotencyKey: 'order-2', payer: { case: 'payerId', value: payer.id }, amount: 42_00n, currency: 'USD', description: 'Birthday cake' });
  const cakeId = cake.payment!.id;
  print(`   → ${PaymentState[cake.payment!.state]}: countersign reserved the money and sent Alice the first code above`);
  const firstCode = phone.inbox.firstCodeFor(cakeId)!;
  const secret = base32Decode(enrolled.verificationSecretBase32);
  const secondCode = deriveSecondCode(secret, { firstCode, amount: 42_00n, currency: 'USD', payeeAccountId: merchantAccount });
  print(`   Alice's terminal computes the second code over that first code, USD 42.00 and the payee`);
  const wrong = secondCode === '00000000' ? '11111111' : '00000000';
  const refused = await outcome(terminal.confirmPayment({ idempotencyKey: 'confirm-1', paymentId: cakeId, proof: { case: 'secondCode', value: wrong } }));
  print(`   she mistypes it (${wrong}) → ${refused instanceof ConnectError ? describe(refused) : 'accepted?!'}`);
  const done = await terminal.confirmPayment({ idempotencyKey: 'confirm-2', paymentId: cakeId, proof: { case: 'secondCode', value: secondCode } });
  print(`   she types the right one → ${PaymentState[done.payment!.state]} (posted with the USD 0.42 fee, linked)`);
  await balances();

  print('6. Alice is asked to pay USD 60.00 for a gift box she did not order:');
  const gift = await shop.createPayment({ idempotencyKey: 'order-3', payer: { case: 'payerId', value: payer.id }, amount: 60_00n, currency: 'USD', description: 'Gift box' });
  const declined = await terminal.declinePayment({ idempotencyKey: 'decline-1', paymentId: gift.payment!.id, reason: 'not mine' });
  print(`   → ${PaymentState[gift.payment!.state]}; she declines it → ${PaymentState[declined.payment!.state]}, the reservation is voided`);
  await balances();

  const big = await outcome(shop.createPayment({ idempotencyKey: 'order-4', payer: { case: 'payerId', value: payer.id }, amount: 400_00n, currency: 'USD', description: 'Wedding cake' }));
  print(`7. USD 400.00 wedding cake → ${big instanceof ConnectError ? describe(big) : PaymentState[big.payment!.state]}: more than Alice has`);
  return balances();
}
