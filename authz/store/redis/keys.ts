import { assert } from '../checks.js';
import { shardOfPayer, shardOfPayment, storeShards } from '../port.js';
import { slotOf } from './slot.js';

/**
 * The key layout (README.md). Every key carries a hash tag, so every script call touches one
 * Redis Cluster slot: a store shard `{sNN}` (a payer's records, with the idempotency records of
 * operations on them inside, indexes, guards, the shard's due index), a merchant `{m:<id>}` (the
 * create keys and the merchant index), a rate counter `{rl:<key>}` (all its windows), a keyed claim scope
 * `{k:<scope>}`, a pay number `{pn:<digest>}`. Every key starts with the store's prefix (`ps`
 * by default: apart from other data on a shared Redis; tests give each store its own).
 *
 * Scopes may hold ':' and are followed by more parts, so they are length-prefixed.
 */
export const storeKeyPrefixDefault = 'ps';

/** Letters, digits and `_ . : -`: no braces (hash tags) and no glob characters (SCAN's MATCH). */
const prefixPattern = /^[A-Za-z0-9_.:-]{1,64}$/;

export function storeKeysOf(prefix: string) {
  assert(prefixPattern.test(prefix), 'keyPrefix must be 1..64 letters, digits or _ . : -');
  const shardTags: readonly string[] = Array.from({ length: storeShards }, (_, s) => `${prefix}:{s${String(s).padStart(2, '0')}}:`);
  const shard = (s: number): string => shardTags[s]!;
  return {
    /** HASH: a payment record (record-codec.ts). */
    record: (paymentId: string) => `${shard(shardOfPayment(paymentId))}p:${paymentId}`,
    /** ZSET, all scores 0: the payer's payment ids (lexicographic = time order). */
    payerIndex: (payerId: string) => `${shard(shardOfPayer(payerId))}y:${payerId}`,
    /**
     * STRING `streak:lockouts:lockedUntilMs:expiresAtMs`: the payer's payer-wide failure streak and
     * lockout (the payer's own channel: payer token, telco relays, M3's password; port.ts "Lockout scopes").
     */
    guard: (payerId: string) => `${shard(shardOfPayer(payerId))}g:${payerId}`,
    /** As `guard`, for the answers given through merchant `merchantId`'s calls (confirm-lua.ts derives it: `g:<payer>/m:<merchant>`). */
    merchantGuard: (payerId: string, merchantId: string) => `${shard(shardOfPayer(payerId))}g:${payerId}/m:${merchantId}`,
    /** ZSET scored by due time (Unix ms): the shard's payments the sweeper must look at. */
    due: (s: number) => `${shard(s)}due`,
    /** STRING `fingerprint:expiresAtMs:p:<payment id>` or `…:<refusal>`: a create's idempotency record. */
    create: (merchantId: string, scope: string, key: string) => `${prefix}:{m:${merchantId}}:c:${scope.length}:${scope}:${key}`,
    /** ZSET, all scores 0: the merchant's payment ids. */
    merchantIndex: (merchantId: string) => `${prefix}:{m:${merchantId}}:i`,
    /** STRING, an integer (INCRBY, DECRBY: create-lua.ts countShared): the count of `key`'s aligned window `window` (port.ts `rateWindowOf`). */
    rate: (key: string, window: number) => `${prefix}:{rl:${key}}:${window}`,
    /** HASH: a keyed claim (enrollment): fingerprint, result, value, lease, expiry. */
    claim: (scope: string, key: string) => `${prefix}:{k:${scope}}:${key}`,
    /** STRING `expiresAtMs:<payer length>:<payer>[:<claimant>]`: an M5 pay number. */
    payNumber: (numberDigest: string) => `${prefix}:{pn:${numberDigest}}`,
    /** SCAN pattern of every record key. */
    recordPattern: `${prefix}:{s??}:p:*`,
  } as const;
}

export type StoreKeys = ReturnType<typeof storeKeysOf>;

/** The Cluster slot of each store shard (of its tag `{sNN}`), computed once. */
const shardSlots: readonly number[] = Array.from({ length: storeShards }, (_, s) => slotOf(`{s${String(s).padStart(2, '0')}}`));

export function slotOfShard(shard: number): number {
  return shardSlots[shard]!;
}
