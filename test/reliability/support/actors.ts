import { base32Decode } from '../../../authz/codes/secret.js';
import { Factor } from '../../../gen/countersign/v1/common_pb.js';
import { type CallStats, type Clients, crashRetries, retried } from './clients.js';
import type { Prng } from './prng.js';
import type { World } from './world.js';

/**
 * The people of a scenario: merchants (API key, payee account, fee) and payers (token,
 * verification secret, prepaid account, funding). Enrolled and funded over the public API before
 * any fault is injected: an enrollment's secrets are returned once, so a lost answer would lose
 * the payer.
 */

export interface MerchantActor {
  id: string;
  name: string;
  apiKey: string;
  account: string;
  feeBasisPoints: number;
  api: Clients;
}

/** How a payer proves payments: second codes on a terminal (M1b), or SMS codes replied (M2 pre-step). */
export type PayerKind = 'app' | 'sms-otp';

export interface PayerActor {
  id: string;
  kind: PayerKind;
  phone: string;
  token: string;
  secret: Buffer;
  account: string;
  /** What was deposited, minor units. */
  funding: bigint;
  /** Payments strictly below this need no factor. */
  noFactorBelow: bigint;
  api: Clients;
}

/** Thresholds of every payer's policy, minor units of USD. */
export const noFactorBelow = 2_00n;
export const oneFactorUpTo = 5_000_00n;
/** Enrollments and deposits in flight at once during setup. */
const setupConcurrencyMax = 8;

const merchantFees = [100, 250, 0, 125] as const;

async function must<T>(what: string, call: () => Promise<T>, stats: CallStats): Promise<T> {
  const outcome = await retried(call, crashRetries, stats);
  if (!outcome.ok) throw new Error(`setup: ${what} failed: ${outcome.error.message}`);
  return outcome.value;
}

export async function enrollMerchants(world: World, count: number, secrets: Set<string>, stats: CallStats): Promise<MerchantActor[]> {
  const out: MerchantActor[] = [];
  for (let i = 0; i < count; i++) {
    const feeBasisPoints = merchantFees[i % merchantFees.length]!;
    const name = `Shop ${i + 1}`;
    const r = await must(
      'enroll merchant',
      () => world.admin.enrollment.enrollMerchant({ idempotencyKey: `${world.name}-merchant-${i}`, name, currencies: ['USD'], feeBasisPoints }),
      stats,
    );
    secrets.add(r.apiKey);
    out.push({ id: r.merchantId, name, apiKey: r.apiKey, account: r.payeeAccountIds.USD!, feeBasisPoints, api: world.clients(r.apiKey) });
  }
  return out;
}

/**
 * A distinct E.164 number per payer, spread over many 6-digit prefixes (the SMS-pumping limit
 * counts codes per prefix; real payers do not share one).
 */
export function phoneOf(index: number, salt: number): string {
  const area = 200 + ((index * 7 + salt) % 700);
  const line = String((index * 7919 + salt) % 10_000_000).padStart(7, '0');
  return `+1${area}${line}`;
}

const salts = new Map<string, number>();

/** One salt per world: every payer of a world gets a distinct number. */
function phoneSalt(worldName: string, rng: Prng): number {
  if (!salts.has(worldName)) salts.set(worldName, rng.int(0, 1_000_000));
  return salts.get(worldName)!;
}

export interface PayerPlan {
  kind: PayerKind;
  funding: bigint;
}

/**
 * Enrolls and funds payers; `firstIndex` numbers them after payers enrolled earlier in the same
 * world (distinct numbers give distinct idempotency keys and phone numbers).
 */
export async function enrollPayers(world: World, plans: PayerPlan[], rng: Prng, secrets: Set<string>, stats: CallStats, firstIndex = 0): Promise<PayerActor[]> {
  const salt = phoneSalt(world.name, rng);
  const out: PayerActor[] = new Array(plans.length);
  let next = 0;
  const worker = async () => {
    while (next < plans.length) {
      const i = next++;
      out[i] = await enrollOne(world, firstIndex + i, plans[i]!, phoneOf(firstIndex + i, salt), secrets, stats);
    }
  };
  await Promise.all(Array.from({ length: setupConcurrencyMax }, worker));
  return out;
}

async function enrollOne(world: World, i: number, plan: PayerPlan, phone: string, secrets: Set<string>, stats: CallStats): Promise<PayerActor> {
  const oneFactor = plan.kind === 'app' ? Factor.SECOND_CODE : Factor.SMS_OTP;
  const policies = [{ currency: 'USD', noFactorBelow, oneFactorUpTo, oneFactor, moreFactors: [oneFactor] }];
  const r = await must(
    'enroll payer',
    () => world.admin.enrollment.enrollPayer({ idempotencyKey: `${world.name}-payer-${i}`, phone, displayName: `Payer ${i}`, currencies: ['USD'], policies }),
    stats,
  );
  if (r.payerToken === '' || r.verificationSecretBase32 === '')
    throw new Error(`setup: payer ${i} enrolled but its one-time secrets were lost (idempotent replay)`);
  secrets.add(r.payerToken);
  secrets.add(r.verificationSecretBase32);
  const account = r.payer!.prepaidAccountIds.USD!;
  await must(
    'fund payer',
    () =>
      world.admin.ledger.fundAccount({
        idempotencyKey: `${world.name}-${world.runId}-fund-${i}`,
        accountId: account,
        amount: plan.funding,
        currency: 'USD',
        reference: 'reliability',
      }),
    stats,
  );
  return {
    id: r.payer!.id,
    kind: plan.kind,
    phone,
    token: r.payerToken,
    secret: base32Decode(r.verificationSecretBase32),
    account,
    funding: plan.funding,
    noFactorBelow,
    api: world.clients(r.payerToken),
  };
}
