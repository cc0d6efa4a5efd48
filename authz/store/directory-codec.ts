import type { BillableLine, Merchant, Payer, PayerPolicy } from '../model.js';
import { assert } from './errors.js';

/**
 * Payers and merchants as JSON text, shared by the Redis, memory and file directories. The
 * bigint fields (policy thresholds, per-payment limit) are decimal strings; other fields are
 * stored as they are (a new bigint field makes JSON.stringify throw: add it here).
 */

type StoredPolicy = Omit<PayerPolicy, 'noFactorBelow' | 'oneFactorUpTo'> & { noFactorBelow: string; oneFactorUpTo: string };
type StoredLine = Omit<BillableLine, 'creditLimit'> & { creditLimit: string };
type StoredPayer = Omit<Payer, 'policies' | 'billableLines'> & { policies: Record<string, StoredPolicy>; billableLines?: StoredLine[] };
type StoredMerchant = Omit<Merchant, 'perPaymentLimit'> & { perPaymentLimit: string };

const decimal = /^\d+$/;

export function encodePayer(p: Payer): string {
  const policies: Record<string, StoredPolicy> = {};
  for (const [currency, policy] of Object.entries(p.policies)) {
    policies[currency] = { ...policy, noFactorBelow: policy.noFactorBelow.toString(10), oneFactorUpTo: policy.oneFactorUpTo.toString(10) };
  }
  const { billableLines, ...rest } = p;
  const stored: StoredPayer = {
    ...rest,
    policies,
    ...(billableLines === undefined ? {} : { billableLines: billableLines.map((l) => ({ ...l, creditLimit: l.creditLimit.toString(10) })) }),
  };
  return JSON.stringify(stored);
}

export function decodePayer(text: string): Payer {
  const s = JSON.parse(text) as StoredPayer;
  assert(typeof s.id === 'string' && typeof s.policies === 'object' && s.policies !== null, 'stored payer is malformed');
  const policies: Record<string, PayerPolicy> = {};
  for (const [currency, policy] of Object.entries(s.policies)) {
    assert(decimal.test(policy.noFactorBelow) && decimal.test(policy.oneFactorUpTo), 'stored payer policy is malformed');
    policies[currency] = { ...policy, noFactorBelow: BigInt(policy.noFactorBelow), oneFactorUpTo: BigInt(policy.oneFactorUpTo) };
  }
  const { billableLines, ...rest } = s;
  if (billableLines === undefined) return { ...rest, policies };
  assert(
    billableLines.every((l) => decimal.test(l.creditLimit)),
    'stored billable line is malformed',
  );
  return { ...rest, policies, billableLines: billableLines.map((l) => ({ ...l, creditLimit: BigInt(l.creditLimit) })) };
}

export function encodeMerchant(m: Merchant): string {
  const stored: StoredMerchant = { ...m, perPaymentLimit: m.perPaymentLimit.toString(10) };
  return JSON.stringify(stored);
}

export function decodeMerchant(text: string): Merchant {
  const s = JSON.parse(text) as StoredMerchant;
  assert(typeof s.id === 'string' && decimal.test(s.perPaymentLimit), 'stored merchant is malformed');
  return { ...s, perPaymentLimit: BigInt(s.perPaymentLimit) };
}
