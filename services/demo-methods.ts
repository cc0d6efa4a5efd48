import { createClient, type Interceptor } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { Channel, DeclineReason, Factor, PaymentState } from '../gen/countersign/v1/common_pb.js';
import { BillingPeriod, EnrollmentService, LineKind } from '../gen/countersign/v1/enrollment_pb.js';
import { LedgerService } from '../gen/countersign/v1/ledger_pb.js';
import { PayerService } from '../gen/countersign/v1/payer_pb.js';
import { PaymentService } from '../gen/countersign/v1/payments_pb.js';
import { currencyOf, formatMinor } from '../ledger/chart.js';
import { demoCardSpecs } from './bank/cards.js';
import { sealCard } from './bank/envelope.js';

/** The demo's later steps: M4 (paired device), M3c (carrier billing) and M5 (card + PIN at the bank). */

type Print = (line: string) => void;
const usd = currencyOf('USD')!;
const money = (minor: bigint) => `USD ${formatMinor(minor, usd)}`;

function clientsFor(baseUrl: string, key: string) {
  const bearer: Interceptor = (next) => (req) => (req.header.set('authorization', `Bearer ${key}`), next(req));
  const transport = createGrpcTransport({ baseUrl, interceptors: [bearer] });
  return {
    payments: createClient(PaymentService, transport),
    payer: createClient(PayerService, transport),
    enrollment: createClient(EnrollmentService, transport),
    ledger: createClient(LedgerService, transport),
  };
}

export interface DemoContext {
  baseUrl: string;
  adminKey: string;
  merchantApiKey: string;
  merchantAccount: string;
  print: Print;
  /** The first code the platform sent to a number (the simulated handset's inbox). */
  smsCode(phone: string, index: number): Promise<string>;
}

const mainSim = { iccid: '8901410321234567890', imsi: '310410123456789', msisdn: '+14155550126' };
const watchSim = { iccid: '8901410329876543210', imsi: '310410987654321', msisdn: '+14155550127' };

/** M4: Dave's phone asks to pay through its main SIM; his paired watch sends the first code back over the data network. */
export async function methodFour(c: DemoContext): Promise<bigint> {
  const admin = clientsFor(c.baseUrl, c.adminKey);
  const shop = clientsFor(c.baseUrl, c.merchantApiKey).payments;
  const enrolled = await admin.enrollment.enrollPayer({
    idempotencyKey: 'demo-dave',
    phone: mainSim.msisdn,
    displayName: 'Dave',
    currencies: ['USD'],
    policies: [{ currency: 'USD', noFactorBelow: 1_00n, oneFactorUpTo: 10_000_00n, oneFactor: Factor.PAIRED_DEVICE, moreFactors: [Factor.PAIRED_DEVICE] }],
  });
  const dave = enrolled.payer!;
  const account = dave.prepaidAccountIds.USD!;
  await admin.ledger.fundAccount({ idempotencyKey: 'demo-deposit-dave', accountId: account, amount: 80_00n, currency: 'USD' });
  const paired = (await admin.enrollment.pairDevice({ idempotencyKey: 'demo-dave-watch', payerId: dave.id, mainSim, auxiliarySim: watchSim, label: 'watch' }))
    .device!;
  c.print(`\nM4 — two-path SIM binding. Payer Dave (${dave.phone}), USD 80.00; his watch (SIM ${watchSim.msisdn}) is paired with his phone's main SIM.`);
  const order = await shop.createPayment({
    idempotencyKey: 'order-8',
    payer: { case: 'payerId', value: dave.id },
    amount: 18_00n,
    currency: 'USD',
    description: 'Lunch',
    channel: Channel.MOBILE_NETWORK,
    originSim: mainSim,
  });
  c.print(
    `10. USD 18.00 lunch requested from Dave's phone through its main SIM → ${PaymentState[order.payment!.state]}; the first code comes back to the phone:`,
  );
  const code = await c.smsCode(mainSim.msisdn, 0);
  const watch = clientsFor(c.baseUrl, enrolled.payerToken).payer;
  const wrongSim = { ...watchSim, imsi: '310410000000001' };
  const other = await shop.createPayment({
    idempotencyKey: 'order-9',
    payer: { case: 'payerId', value: dave.id },
    amount: 5_00n,
    currency: 'USD',
    description: 'Snack',
    channel: Channel.MOBILE_NETWORK,
    originSim: mainSim,
  });
  const otherCode = await c.smsCode(mainSim.msisdn, 1);
  const forged = await watch.confirmPayment({
    idempotencyKey: 'watch-0',
    paymentId: other.payment!.id,
    proof: { case: 'pairedDevice', value: { firstCode: otherCode, auxiliarySim: wrongSim, deviceId: paired.id } },
  });
  c.print(
    `    a device with another SIM sends the code of a USD 5.00 snack → ${PaymentState[forged.payment!.state]} (${DeclineReason[forged.payment!.declineReason]}), released`,
  );
  const done = await watch.confirmPayment({
    idempotencyKey: 'watch-1',
    paymentId: order.payment!.id,
    proof: { case: 'pairedDevice', value: { firstCode: code, auxiliarySim: watchSim, deviceId: paired.id } },
  });
  c.print(`    Dave's paired watch sends the code over the data network with its own SIM → ${PaymentState[done.payment!.state]}`);
  const a = (await admin.ledger.getAccount({ accountId: account })).account!;
  const posted = a.creditsPosted - a.debitsPosted;
  c.print(`   Dave: ${money(posted)} (reserved ${money(a.debitsPending)})`);
  return posted;
}

/** M3c: Erin charges purchases to her mobile line; the line's monthly credit is enforced by the ledger. */
export async function carrierBilling(c: DemoContext): Promise<bigint> {
  const admin = clientsFor(c.baseUrl, c.adminKey);
  const shop = clientsFor(c.baseUrl, c.merchantApiKey).payments;
  const erin = (
    await admin.enrollment.enrollPayer({
      idempotencyKey: 'demo-erin',
      phone: '+14155550128',
      displayName: 'Erin',
      currencies: ['USD'],
      policies: [{ currency: 'USD', noFactorBelow: 100_00n, oneFactorUpTo: 100_00n, oneFactor: Factor.SECOND_CODE, moreFactors: [Factor.SECOND_CODE] }],
    })
  ).payer!;
  const line = (
    await admin.enrollment.addBillableLine({
      idempotencyKey: 'demo-erin-line',
      payerId: erin.id,
      kind: LineKind.MOBILE,
      number: erin.phone,
      currency: 'USD',
      creditLimit: 50_00n,
      billingPeriod: BillingPeriod.MONTHLY,
    })
  ).line!;
  c.print(`\nM3c — carrier billing. Payer Erin's mobile line ${line.number}: credit USD 50.00 per month, enforced inside the ledger.`);
  const charge = (key: string, amount: bigint, description: string) =>
    shop.createPayment({ idempotencyKey: key, payer: { case: 'payerId', value: erin.id }, amount, currency: 'USD', description, billableLineId: line.id });
  const first = await charge('order-10', 30_00n, 'Bus pass');
  c.print(`11. USD 30.00 bus pass onto the line → ${PaymentState[first.payment!.state]}`);
  const refused = await charge('order-11', 25_00n, 'Concert ticket').catch((e: unknown) => e as Error);
  c.print(
    `    USD 25.00 concert ticket → ${refused instanceof Error ? refused.message.replace(/^\[\w+\] /, 'FailedPrecondition: ') : 'accepted?!'}; nothing posted`,
  );
  const st = await admin.ledger.getLineStatement({ lineId: line.id });
  c.print(
    `    statement: limit ${money(st.creditLimit)}, charged ${money(st.chargedTotal)}, reserved ${money(st.reservedTotal)}, available ${money(st.available)}`,
  );
  for (const e of st.entries) c.print(`      ${money(e.amount)}  ${e.description}`);
  return st.chargedTotal;
}

/** M5: Frank gives the merchant a pay number; his phone seals card and PIN for the bank; the bank decides. */
export async function methodFive(c: DemoContext): Promise<bigint> {
  const admin = clientsFor(c.baseUrl, c.adminKey);
  const shop = clientsFor(c.baseUrl, c.merchantApiKey).payments;
  const enrolled = await admin.enrollment.enrollPayer({
    idempotencyKey: 'demo-frank',
    phone: '+14155550129',
    displayName: 'Frank',
    currencies: ['USD'],
    policies: [{ currency: 'USD', noFactorBelow: 10_000_00n, oneFactorUpTo: 10_000_00n, oneFactor: Factor.SECOND_CODE, moreFactors: [Factor.SECOND_CODE] }],
  });
  const frank = clientsFor(c.baseUrl, enrolled.payerToken);
  const card = demoCardSpecs[0];
  c.print(`\nM5 — card and PIN on the phone, decided by the bank. Payer Frank; demo card ****${card.pan.slice(-4)} at the reference bank front-end.`);
  const pay = async (key: string, amount: bigint, description: string, pin: string) => {
    const issued = await frank.enrollment.issuePayNumber({ idempotencyKey: `${key}-number`, payerId: enrolled.payer!.id, ttlSeconds: 300 });
    const p = (
      await shop.createPayment({
        idempotencyKey: key,
        payer: { case: 'payNumber', value: issued.payNumber },
        amount,
        currency: 'USD',
        description,
        requestedFactors: [Factor.BANK_CARD_PIN],
      })
    ).payment!;
    const challenge = await frank.payer.getChallenge({ paymentId: p.id });
    const envelope = await sealCard({
      bankKey: challenge.bankKey!,
      payment: { id: p.id, merchantId: p.merchantId, amount, currency: 'USD' },
      card: { pan: card.pan, expiry: card.expiry },
      pin,
    });
    const done = (await frank.payer.confirmPayment({ idempotencyKey: `${key}-card`, paymentId: p.id, proof: { case: 'bankCard', value: envelope } })).payment!;
    return { issued, p, done };
  };
  const ok = await pay('order-12', 64_00n, 'Headphones', card.pin);
  c.print(`12. Frank's pay number ${ok.issued.payNumber.replace(/(\d{4})(?=\d)/g, '$1 ')} for USD 64.00 headphones → ${PaymentState[ok.p.state]};`);
  c.print(`    his phone seals card + PIN block (ISO 9564 format 4) for the bank's key (HPKE X25519/AES-256-GCM), countersign relays it unopened`);
  c.print(`    → the bank approves (authorization ${ok.done.bankAuthorizationCode}) → ${PaymentState[ok.done.state]}, paid from the bank settlement account`);
  const bad = await pay('order-13', 20_00n, 'Charger', '0000');
  c.print(`13. USD 20.00 charger with a mistyped PIN → ${PaymentState[bad.done.state]} (${bad.done.declineDetail}); the reservation is voided`);
  return ok.done.amount;
}
