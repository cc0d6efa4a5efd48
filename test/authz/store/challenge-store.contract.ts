import { createHmac, randomBytes, randomInt } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { challengeStoreBatchMax, type ChallengeStore, type LockoutPolicy, type VerifyOutcome, type VerifyRequest } from '../../../authz/ports.js';
import { idToHex, newId } from '../../../ledger/ids.js';

/** One store per case, so each case owns its clock (memory) and its ids. */
export interface ChallengeStoreHarness {
  store: ChallengeStore;
  /** Lets `ms` of store time pass: the memory adapter's clock moves, Redis really waits. */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

export interface ChallengeStoreFactory {
  open(lockout: LockoutPolicy): Promise<ChallengeStoreHarness>;
}

/** Short real durations so the Redis run stays fast; the memory run drives the same through its clock. */
export const contractLockout: LockoutPolicy = { failuresMax: 5, backoffBaseMs: 300, backoffMaxMs: 2_000, memoryMs: 60_000 };
/** TTLs the tests wait out, milliseconds: long enough that a loaded machine still sees a challenge live at half of it. */
export const shortTtlMs = 1_000;
const challengeTtlMs = 60_000;
const attemptsMax = 5;

/** The caller's HMAC key, which the store never sees. */
const responseKey = randomBytes(32);
/** Every plaintext code the suite digested: the Redis run proves none of them reached Redis. */
export const codesUsed = new Set<string>();

export function responseDigest(code: string): string {
  codesUsed.add(code);
  return createHmac('sha256', responseKey).update(code, 'utf8').digest('hex');
}

export function newCode(): string {
  return String(randomInt(0, 100_000_000)).padStart(8, '0');
}

export const hexId = (): string => idToHex(newId());

type Body = (t: ExecutionContext, h: ChallengeStoreHarness) => Promise<void>;

export function challengeStoreContract(name: string, factory: ChallengeStoreFactory): void {
  const c = (title: string, body: Body): void => {
    test(`${name} ${title}`, async (t) => {
      const h = await factory.open(contractLockout);
      try {
        await body(t, h);
      } finally {
        await h.close();
      }
    });
  };
  verifyCases(c);
  lockoutCases(c);
  idempotencyCases(c);
  rateLimitCases(c);
  payNumberCases(c);
  batchCases(c);
  batchEquivalence(name, factory);
}

/** A live challenge with two accepted responses (second code first, then first code). */
async function challenge(store: ChallengeStore, payerId = hexId(), ttlMs = challengeTtlMs) {
  const codes = ['12345678', newCode()];
  const challengeId = hexId();
  await store.putChallenge({ challengeId, payerId, responseDigests: codes.map(responseDigest), ttlMs, attemptsMax });
  return { challengeId, payerId, right: responseDigest(codes[0]!), other: responseDigest(codes[1]!) };
}

const wrong = (): string => responseDigest('0' + newCode().slice(1) + '9');

function verifyCases(c: (title: string, body: Body) => void): void {
  c('a right response consumes the challenge: single use', async (t, { store }) => {
    const ch = await challenge(store);
    t.is(await store.attemptsLeft(ch.challengeId), 5);
    t.deepEqual(await store.verifyAndConsume(ch.challengeId, ch.payerId, ch.right), { outcome: 'ok', matchedIndex: 0 });
    t.deepEqual(await store.verifyAndConsume(ch.challengeId, ch.payerId, ch.right), { outcome: 'not_found' });
    t.is(await store.attemptsLeft(ch.challengeId), undefined);
  });

  c('any accepted response matches, reporting which', async (t, { store }) => {
    const ch = await challenge(store);
    t.deepEqual(await store.verifyAndConsume(ch.challengeId, ch.payerId, ch.other), { outcome: 'ok', matchedIndex: 1 });
  });

  c('5 wrong responses: 4, 3, 2, 1 attempts left, then exhausted and the challenge gone', async (t, { store }) => {
    const ch = await challenge(store);
    const outcomes = [];
    for (let i = 0; i < 5; i++) outcomes.push(await store.verifyAndConsume(ch.challengeId, ch.payerId, wrong()));
    t.deepEqual(outcomes, [
      { outcome: 'mismatch', attemptsLeft: 4 },
      { outcome: 'mismatch', attemptsLeft: 3 },
      { outcome: 'mismatch', attemptsLeft: 2 },
      { outcome: 'mismatch', attemptsLeft: 1 },
      { outcome: 'exhausted' },
    ]);
    t.is(await store.attemptsLeft(ch.challengeId), undefined);
    t.is((await store.verifyAndConsume(ch.challengeId, ch.payerId, ch.right)).outcome, 'locked', 'the 5th failure also locked the payer');
  });

  c('an expired challenge is not found', async (t, h) => {
    const ch = await challenge(h.store, hexId(), shortTtlMs);
    await h.advance(shortTtlMs / 2);
    t.is(await h.store.attemptsLeft(ch.challengeId), 5, 'still live before its TTL');
    await h.advance(shortTtlMs / 2);
    t.deepEqual(await h.store.verifyAndConsume(ch.challengeId, ch.payerId, ch.right), { outcome: 'not_found' });
    t.is(await h.store.attemptsLeft(ch.challengeId), undefined);
  });

  c("another payer's response cannot verify the challenge (not_found, nothing counted)", async (t, { store }) => {
    const ch = await challenge(store);
    const mallory = await challenge(store);
    t.deepEqual(await store.verifyAndConsume(ch.challengeId, mallory.payerId, ch.right), { outcome: 'not_found' });
    t.deepEqual(await store.verifyAndConsume(mallory.challengeId, ch.payerId, mallory.right), { outcome: 'not_found' });
    t.is(await store.attemptsLeft(ch.challengeId), 5);
    t.deepEqual(await store.verifyAndConsume(ch.challengeId, ch.payerId, ch.right), { outcome: 'ok', matchedIndex: 0 });
  });

  c('forceMismatch counts a failure without comparing, even with the right digest', async (t, { store }) => {
    const ch = await challenge(store);
    t.deepEqual(await store.verifyAndConsume(ch.challengeId, ch.payerId, ch.right, true), { outcome: 'mismatch', attemptsLeft: 4 });
    t.is(await store.attemptsLeft(ch.challengeId), 4);
    t.deepEqual(await store.verifyAndConsume(ch.challengeId, ch.payerId, ch.right), { outcome: 'ok', matchedIndex: 0 });
  });

  c('putChallenge replaces the challenge of a payment, attempts and payer included', async (t, { store }) => {
    const ch = await challenge(store);
    t.deepEqual(await store.verifyAndConsume(ch.challengeId, ch.payerId, wrong()), { outcome: 'mismatch', attemptsLeft: 4 });
    const newPayerId = hexId();
    await store.putChallenge({ challengeId: ch.challengeId, payerId: newPayerId, responseDigests: [ch.other], ttlMs: challengeTtlMs, attemptsMax: 3 });
    t.is(await store.attemptsLeft(ch.challengeId), 3);
    t.deepEqual(await store.verifyAndConsume(ch.challengeId, ch.payerId, ch.other), { outcome: 'not_found' }, 'the old payer lost it');
    t.deepEqual(await store.verifyAndConsume(ch.challengeId, newPayerId, ch.right), { outcome: 'mismatch', attemptsLeft: 2 });
    t.deepEqual(await store.verifyAndConsume(ch.challengeId, newPayerId, ch.other), { outcome: 'ok', matchedIndex: 0 });
  });

  c('dropChallenge removes it; dropping an absent challenge is a no-op', async (t, { store }) => {
    const ch = await challenge(store);
    await store.dropChallenge(ch.challengeId);
    t.is(await store.attemptsLeft(ch.challengeId), undefined);
    t.deepEqual(await store.verifyAndConsume(ch.challengeId, ch.payerId, ch.right), { outcome: 'not_found' });
    await store.dropChallenge(ch.challengeId);
    await store.dropChallenge(hexId());
    t.is(await store.lockedFor(ch.payerId), undefined);
  });
}

function lockoutCases(c: (title: string, body: Body) => void): void {
  c('5 consecutive failures across challenges lock the payer out, with a growing back-off', async (t, h) => {
    const { store } = h;
    const payerId = hexId();
    const a = await challenge(store, payerId);
    const b = await challenge(store, payerId);
    for (let i = 0; i < 3; i++) await store.verifyAndConsume(a.challengeId, payerId, wrong());
    t.deepEqual(await store.verifyAndConsume(b.challengeId, payerId, wrong()), { outcome: 'mismatch', attemptsLeft: 4 });
    t.is(await store.lockedFor(payerId), undefined, 'four failures: not yet');
    t.deepEqual(await store.verifyAndConsume(b.challengeId, payerId, wrong()), { outcome: 'mismatch', attemptsLeft: 3 });

    const first = await store.verifyAndConsume(b.challengeId, payerId, b.right);
    t.is(first.outcome, 'locked', 'even the right response is refused while locked');
    const firstMs = first.outcome === 'locked' ? first.retryAfterMs : 0;
    t.true(firstMs > 0 && firstMs <= contractLockout.backoffBaseMs, `first lockout ${firstMs} ms`);
    t.true((await store.lockedFor(payerId))! <= contractLockout.backoffBaseMs);
    t.is(await store.attemptsLeft(b.challengeId), 3, 'a locked attempt is not counted');

    await h.advance(contractLockout.backoffBaseMs);
    t.is(await store.lockedFor(payerId), undefined, 'the first lockout ended');
    const d = await challenge(store, payerId);
    for (let i = 0; i < 4; i++) await store.verifyAndConsume(d.challengeId, payerId, wrong());
    t.deepEqual(await store.verifyAndConsume(d.challengeId, payerId, wrong()), { outcome: 'exhausted' });
    const second = await store.verifyAndConsume(b.challengeId, payerId, b.right);
    t.is(second.outcome, 'locked');
    const secondMs = second.outcome === 'locked' ? second.retryAfterMs : 0;
    t.true(secondMs > contractLockout.backoffBaseMs && secondMs <= 2 * contractLockout.backoffBaseMs, `second lockout ${secondMs} ms`);
    t.true(secondMs > firstMs, 'the second lockout is longer than the first');

    await h.advance(2 * contractLockout.backoffBaseMs);
    t.is(await store.lockedFor(payerId), undefined);
    t.deepEqual(await store.verifyAndConsume(b.challengeId, payerId, b.right), { outcome: 'ok', matchedIndex: 0 });
  });

  c('a success resets the failure streak', async (t, { store }) => {
    const payerId = hexId();
    const a = await challenge(store, payerId);
    for (let i = 0; i < 4; i++) await store.verifyAndConsume(a.challengeId, payerId, wrong());
    t.deepEqual(await store.verifyAndConsume(a.challengeId, payerId, a.right), { outcome: 'ok', matchedIndex: 0 });
    const b = await challenge(store, payerId);
    for (let i = 0; i < 3; i++) await store.verifyAndConsume(b.challengeId, payerId, wrong());
    t.deepEqual(await store.verifyAndConsume(b.challengeId, payerId, wrong()), { outcome: 'mismatch', attemptsLeft: 1 });
    t.is(await store.lockedFor(payerId), undefined, '4 + 4 failures around a success: no lockout');
    t.deepEqual(await store.verifyAndConsume(b.challengeId, payerId, wrong()), { outcome: 'exhausted' });
    t.not(await store.lockedFor(payerId), undefined, 'the 5th consecutive failure locks');
  });

  c('forced mismatches count toward the lockout', async (t, { store }) => {
    const ch = await challenge(store);
    const outcomes = [];
    for (let i = 0; i < 5; i++) outcomes.push((await store.verifyAndConsume(ch.challengeId, ch.payerId, ch.right, true)).outcome);
    t.deepEqual(outcomes, ['mismatch', 'mismatch', 'mismatch', 'mismatch', 'exhausted']);
    t.not(await store.lockedFor(ch.payerId), undefined);
  });

  c("one payer's lockout does not touch another payer", async (t, { store }) => {
    const a = await challenge(store);
    const b = await challenge(store);
    for (let i = 0; i < 5; i++) await store.verifyAndConsume(a.challengeId, a.payerId, wrong());
    t.not(await store.lockedFor(a.payerId), undefined);
    t.is(await store.lockedFor(b.payerId), undefined);
    t.deepEqual(await store.verifyAndConsume(b.challengeId, b.payerId, b.right), { outcome: 'ok', matchedIndex: 0 });
  });
}

function idempotencyCases(c: (title: string, body: Body) => void): void {
  const dayMs = 86_400_000;

  c('idempotency: new, in_progress, conflict, done', async (t, { store }) => {
    const [scope, key] = [hexId(), hexId()];
    t.deepEqual(await store.beginIdempotency(scope, key, 'fp-1', dayMs), { status: 'new' });
    t.deepEqual(await store.beginIdempotency(scope, key, 'fp-1', dayMs), { status: 'in_progress' });
    t.deepEqual(await store.beginIdempotency(scope, key, 'fp-2', dayMs), { status: 'conflict' });
    await store.completeIdempotency(scope, key, 'fp-1', '{"paymentId":"42"}', dayMs);
    t.deepEqual(await store.beginIdempotency(scope, key, 'fp-1', dayMs), { status: 'done', result: '{"paymentId":"42"}' });
    t.deepEqual(await store.beginIdempotency(scope, key, 'fp-2', dayMs), { status: 'conflict' });
    t.deepEqual(await store.beginIdempotency(hexId(), key, 'fp-2', dayMs), { status: 'new' }, 'keys are scoped');
  });

  c('idempotency: a claim that names its result up front is done in the same call', async (t, { store }) => {
    const [scope, key] = [hexId(), hexId()];
    t.deepEqual(await store.beginIdempotency(scope, key, 'fp-1', dayMs, 'payment-7'), { status: 'new' });
    t.deepEqual(await store.beginIdempotency(scope, key, 'fp-1', dayMs, 'payment-8'), { status: 'done', result: 'payment-7' }, 'the first result stays');
    t.deepEqual(await store.beginIdempotency(scope, key, 'fp-2', dayMs, 'payment-9'), { status: 'conflict' });
  });

  c('idempotency: abandon releases a claim, never a stored result', async (t, { store }) => {
    const [scope, key] = [hexId(), hexId()];
    t.deepEqual(await store.beginIdempotency(scope, key, 'fp-1', dayMs), { status: 'new' });
    await store.abandonIdempotency(scope, key);
    t.deepEqual(await store.beginIdempotency(scope, key, 'fp-2', dayMs), { status: 'new' }, 'released: any request may claim it');
    await store.completeIdempotency(scope, key, 'fp-2', 'result', dayMs);
    await store.abandonIdempotency(scope, key);
    t.deepEqual(await store.beginIdempotency(scope, key, 'fp-2', dayMs), { status: 'done', result: 'result' });
    await store.abandonIdempotency(hexId(), hexId());
  });

  c('idempotency: completing with another fingerprint is a programmer error', async (t, { store }) => {
    const [scope, key] = [hexId(), hexId()];
    await store.beginIdempotency(scope, key, 'fp-1', dayMs);
    await t.throwsAsync(store.completeIdempotency(scope, key, 'fp-2', 'r', dayMs), { message: /another request fingerprint/ });
    t.deepEqual(await store.beginIdempotency(scope, key, 'fp-1', dayMs), { status: 'in_progress' });
  });

  c('idempotency keys expire after their TTL', async (t, h) => {
    const [scope, key, done] = [hexId(), hexId(), hexId()];
    t.deepEqual(await h.store.beginIdempotency(scope, key, 'fp-1', shortTtlMs), { status: 'new' });
    await h.store.beginIdempotency(scope, done, 'fp-1', shortTtlMs);
    await h.store.completeIdempotency(scope, done, 'fp-1', 'r', shortTtlMs);
    await h.advance(shortTtlMs);
    t.deepEqual(await h.store.beginIdempotency(scope, key, 'fp-2', dayMs), { status: 'new' });
    t.deepEqual(await h.store.beginIdempotency(scope, done, 'fp-2', dayMs), { status: 'new' });
  });
}

function rateLimitCases(c: (title: string, body: Body) => void): void {
  c('rate limit: a fixed window of `limit` events, then refusals until the window ends', async (t, h) => {
    const key = `sms:${hexId()}`;
    const hits = [];
    for (let i = 0; i < 5; i++) hits.push(await h.store.hitRateLimit(key, 3, shortTtlMs));
    t.deepEqual(hits, [true, true, true, false, false]);
    t.true(await h.store.hitRateLimit(`${key}:other`, 3, shortTtlMs), 'keys are independent');
    await h.advance(shortTtlMs);
    const next = [];
    for (let i = 0; i < 4; i++) next.push(await h.store.hitRateLimit(key, 3, shortTtlMs));
    t.deepEqual(next, [true, true, true, false], 'a new window starts once the old one lapses');
  });
}

function payNumberCases(c: (title: string, body: Body) => void): void {
  c('pay number: single use; the same claimant may take it again, another may not; it lapses', async (t, h) => {
    const payerId = hexId();
    const digest = responseDigest(newCode());
    t.is(await h.store.takePayNumber(digest, 'm1:k1'), undefined, 'unknown number');
    await h.store.putPayNumber(digest, payerId, shortTtlMs);
    t.is(await h.store.takePayNumber(digest, 'm1:k1'), payerId);
    t.is(await h.store.takePayNumber(digest, 'm1:k1'), payerId, 'a retry of the same request');
    t.is(await h.store.takePayNumber(digest, 'm1:k2'), undefined, 'another request');
    t.is(await h.store.takePayNumber(digest, 'm2:k1'), undefined, 'another merchant');
    const other = responseDigest(newCode());
    await h.store.putPayNumber(other, payerId, shortTtlMs);
    await h.advance(shortTtlMs);
    t.is(await h.store.takePayNumber(other, 'm1:k3'), undefined, 'expired');
  });
}

/**
 * The batch methods: each item as its single call would be, in order (a later item sees an
 * earlier one), in one call.
 */
function batchCases(c: (title: string, body: Body) => void): void {
  const dayMs = 86_400_000;

  c('batch: putChallenges stores each challenge; verifyAndConsumeMany answers each request in order', async (t, { store }) => {
    const [p1, p2] = [hexId(), hexId()];
    const [a, b, gone] = [hexId(), hexId(), hexId()];
    const [codeA, codeB] = [newCode(), newCode()];
    await store.putChallenges([
      { challengeId: a, payerId: p1, responseDigests: [responseDigest(codeA)], ttlMs: challengeTtlMs, attemptsMax },
      { challengeId: b, payerId: p2, responseDigests: [responseDigest(newCode()), responseDigest(codeB)], ttlMs: challengeTtlMs, attemptsMax: 2 },
    ]);
    t.is(await store.attemptsLeft(a), 5);
    t.is(await store.attemptsLeft(b), 2);
    const outcomes = await store.verifyAndConsumeMany([
      { challengeId: a, payerId: p1, digest: wrong() },
      { challengeId: b, payerId: p2, digest: responseDigest(codeB) },
      { challengeId: a, payerId: p1, digest: responseDigest(codeA) },
      { challengeId: a, payerId: p1, digest: responseDigest(codeA) },
      { challengeId: gone, payerId: p1, digest: responseDigest(codeA) },
      { challengeId: b, payerId: p1, digest: responseDigest(codeB) },
    ]);
    t.deepEqual(outcomes, [
      { outcome: 'mismatch', attemptsLeft: 4 },
      { outcome: 'ok', matchedIndex: 1 },
      { outcome: 'ok', matchedIndex: 0 },
      { outcome: 'not_found' },
      { outcome: 'not_found' },
      { outcome: 'not_found' },
    ]);
    t.is(await store.attemptsLeft(a), undefined, 'consumed: single use');
    t.deepEqual(await store.verifyAndConsumeMany([]), []);
    await store.putChallenges([]);
  });

  c('batch: failures in one call count toward exhaustion and the lockout; then the payer is locked within the same call', async (t, { store }) => {
    const payerId = hexId();
    const [a, b, other] = [await challenge(store, payerId), await challenge(store, payerId), await challenge(store)];
    const outcomes = await store.verifyAndConsumeMany([
      ...Array.from({ length: 3 }, () => ({ challengeId: a.challengeId, payerId, digest: wrong() })),
      { challengeId: b.challengeId, payerId, digest: b.right, forceMismatch: true },
      { challengeId: b.challengeId, payerId, digest: '', forceMismatch: true },
      { challengeId: b.challengeId, payerId, digest: b.right },
      { challengeId: other.challengeId, payerId: other.payerId, digest: other.right },
    ]);
    t.deepEqual(outcomes.slice(0, 5), [
      { outcome: 'mismatch', attemptsLeft: 4 },
      { outcome: 'mismatch', attemptsLeft: 3 },
      { outcome: 'mismatch', attemptsLeft: 2 },
      { outcome: 'mismatch', attemptsLeft: 4 },
      { outcome: 'mismatch', attemptsLeft: 3 },
    ]);
    t.is(outcomes[5]!.outcome, 'locked', 'the 5th failure locked the payer: the right code in the same call is refused');
    t.deepEqual(outcomes[6], { outcome: 'ok', matchedIndex: 0 }, 'another payer is not touched');
    t.is(await store.attemptsLeft(b.challengeId), 3, 'a locked attempt is not counted');
  });

  c('batch: putChallenges replaces a challenge, payer included', async (t, { store }) => {
    const ch = await challenge(store);
    const newPayerId = hexId();
    await store.putChallenges([{ challengeId: ch.challengeId, payerId: newPayerId, responseDigests: [ch.other], ttlMs: challengeTtlMs, attemptsMax: 3 }]);
    t.is(await store.attemptsLeft(ch.challengeId), 3);
    t.deepEqual(await store.verifyAndConsume(ch.challengeId, ch.payerId, ch.other), { outcome: 'not_found' }, 'the old payer lost it');
    t.deepEqual(await store.verifyAndConsume(ch.challengeId, newPayerId, ch.other), { outcome: 'ok', matchedIndex: 0 });
  });

  c('batch: beginIdempotencyMany claims in order; a key twice in one call sees its first claim', async (t, { store }) => {
    const scope = hexId();
    const [k1, k2, k3, k4] = [hexId(), hexId(), hexId(), hexId()];
    await store.beginIdempotency(scope, k3, 'fp-3', dayMs);
    await store.completeIdempotency(scope, k3, 'fp-3', 'r3', dayMs);
    const outcomes = await store.beginIdempotencyMany(
      scope,
      [
        { key: k1, fingerprint: 'fp-1', resultIfNew: 'payment-1' },
        { key: k1, fingerprint: 'fp-1', resultIfNew: 'payment-2' },
        { key: k2, fingerprint: 'fp-2' },
        { key: k2, fingerprint: 'fp-2' },
        { key: k2, fingerprint: 'fp-x' },
        { key: k3, fingerprint: 'fp-3' },
        { key: k3, fingerprint: 'fp-y', resultIfNew: 'payment-3' },
        { key: k4, fingerprint: 'fp-4' },
      ],
      dayMs,
    );
    t.deepEqual(outcomes, [
      { status: 'new' },
      { status: 'done', result: 'payment-1' },
      { status: 'new' },
      { status: 'in_progress' },
      { status: 'conflict' },
      { status: 'done', result: 'r3' },
      { status: 'conflict' },
      { status: 'new' },
    ]);
    t.deepEqual(await store.beginIdempotency(hexId(), k1, 'fp-9', dayMs), { status: 'new' }, 'keys are scoped');
    t.deepEqual(await store.beginIdempotencyMany(scope, [], dayMs), []);
  });

  c('batch: completeIdempotencyMany stores every result; with another fingerprint it stores none (programmer error)', async (t, { store }) => {
    const scope = hexId();
    const [k1, k2, k3] = [hexId(), hexId(), hexId()];
    await store.beginIdempotencyMany(scope, [{ key: k1, fingerprint: 'fp-1' }, { key: k2, fingerprint: 'fp-2' }, { key: k3, fingerprint: 'fp-3' }], dayMs);
    await store.completeIdempotencyMany(scope, [{ key: k1, fingerprint: 'fp-1', result: 'r1' }, { key: k2, fingerprint: 'fp-2', result: 'r2' }], dayMs);
    t.deepEqual(await store.beginIdempotency(scope, k1, 'fp-1', dayMs), { status: 'done', result: 'r1' });
    t.deepEqual(await store.beginIdempotency(scope, k2, 'fp-2', dayMs), { status: 'done', result: 'r2' });
    await t.throwsAsync(
      store.completeIdempotencyMany(scope, [{ key: k3, fingerprint: 'fp-3', result: 'r3' }, { key: k1, fingerprint: 'fp-other', result: 'x' }], dayMs),
      { message: /another request fingerprint/ },
    );
    t.deepEqual(await store.beginIdempotency(scope, k3, 'fp-3', dayMs), { status: 'in_progress' }, 'nothing was stored');
    t.deepEqual(await store.beginIdempotency(scope, k1, 'fp-1', dayMs), { status: 'done', result: 'r1' });
    await store.completeIdempotencyMany(scope, [], dayMs);
  });

  c('batch: hitRateLimits counts each event in order, per key and window', async (t, h) => {
    const [a, b] = [`sms:${hexId()}`, `sms:${hexId()}`];
    const hit = (key: string, limit: number) => ({ key, limit, windowMs: shortTtlMs });
    t.deepEqual(await h.store.hitRateLimits([hit(a, 2), hit(b, 5), hit(a, 2), hit(a, 2), hit(b, 5)]), [true, true, true, false, true]);
    t.false(await h.store.hitRateLimit(a, 2, shortTtlMs), 'the single call sees what the batch counted');
    t.true(await h.store.hitRateLimit(b, 3, shortTtlMs), 'two of three used on b');
    t.deepEqual(await h.store.hitRateLimits([hit(b, 3)]), [false]);
    await h.advance(shortTtlMs);
    t.deepEqual(await h.store.hitRateLimits([hit(a, 2), hit(b, 3)]), [true, true], 'a new window');
    t.deepEqual(await h.store.hitRateLimits([]), []);
  });

  c(`batch: more than ${challengeStoreBatchMax} items in one call is a programmer error`, async (t, { store }) => {
    const key = `sms:${hexId()}`;
    const hits = Array.from({ length: challengeStoreBatchMax + 1 }, () => ({ key, limit: 1, windowMs: 1_000 }));
    await t.throwsAsync(store.hitRateLimits(hits), { message: /at most/ });
    t.true(await store.hitRateLimit(key, 1, 1_000), 'nothing was counted');
  });
}

/**
 * The same random sequence of verifications, challenge puts and failures on two stores: in
 * batches on one, one call at a time on the other. Every outcome and the lockouts agree.
 */
function batchEquivalence(name: string, factory: ChallengeStoreFactory): void {
  test(`${name} batch: verifyAndConsumeMany agrees with one verifyAndConsume after another`, async (t) => {
    // Lockouts outlast the test (the one-at-a-time run is slower on Redis) and come late enough to leave room for other outcomes.
    const lockout: LockoutPolicy = { failuresMax: 12, backoffBaseMs: 600_000, backoffMaxMs: 600_000, memoryMs: 600_000 };
    const [batched, single] = await Promise.all([factory.open(lockout), factory.open(lockout)]);
    try {
      const plan = randomPlan(60);
      const run = async (h: ChallengeStoreHarness, many: boolean) => {
        const ids = { payers: Array.from({ length: 3 }, hexId), challenges: Array.from({ length: 8 }, hexId) };
        const answers: VerifyOutcome[] = [];
        for (const step of plan) {
          const puts = step.puts.map((p) => ({ challengeId: ids.challenges[p.challenge]!, payerId: ids.payers[p.payer]!, responseDigests: [rightDigest(p.challenge)], ttlMs: challengeTtlMs, attemptsMax: 3 }));
          const checks: VerifyRequest[] = step.checks.map((v) => ({ challengeId: ids.challenges[v.challenge]!, payerId: ids.payers[v.payer]!, digest: v.right ? rightDigest(v.challenge) : wrongDigest, forceMismatch: v.force }));
          if (many) {
            await h.store.putChallenges(puts);
            answers.push(...(await h.store.verifyAndConsumeMany(checks)));
          } else {
            for (const p of puts) await h.store.putChallenge(p);
            for (const v of checks) answers.push(await h.store.verifyAndConsume(v.challengeId, v.payerId, v.digest, v.forceMismatch));
          }
        }
        const locked = await Promise.all(ids.payers.map(async (p) => (await h.store.lockedFor(p)) !== undefined));
        return { answers: answers.map((a) => a.outcome + (a.outcome === 'mismatch' ? a.attemptsLeft : a.outcome === 'ok' ? a.matchedIndex : '')), locked };
      };
      const [a, b] = [await run(batched, true), await run(single, false)];
      t.deepEqual(a, b);
      t.true(new Set(a.answers.map((x) => x.replace(/\d+$/, ''))).size >= 4, `the plan meets several outcomes: ${[...new Set(a.answers)].join(' ')}`);
    } finally {
      await Promise.all([batched.close(), single.close()]);
    }
  });
}

const rightCodes = Array.from({ length: 8 }, newCode);
const rightDigest = (challenge: number): string => responseDigest(rightCodes[challenge]!);
const wrongDigest = responseDigest('99999999');

/** Steps of a few challenge puts then a few verifications (right, wrong or forced), over 3 payers and 8 challenges; a fixed seed. */
function randomPlan(steps: number) {
  let seed = 20_261_123;
  const pick = (n: number) => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return (seed >>> 8) % n;
  };
  return Array.from({ length: steps }, () => ({
    puts: Array.from({ length: pick(3) }, () => ({ challenge: pick(8), payer: pick(3) })),
    checks: Array.from({ length: 1 + pick(6) }, () => ({ challenge: pick(8), payer: pick(3), right: pick(3) === 0, force: pick(8) === 0 })),
  }));
}
