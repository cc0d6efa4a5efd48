import test from 'ava';
import { pino } from 'pino';
import { verifySecret } from '../../authz/codes/pin-hash.js';
import { CardsFileError, demoCardSpecs, demoCards, parseCardsFile } from '../../services/bank/cards.js';
import { keyIdOf } from '../../services/bank/envelope.js';
import { BankFrontEnd } from '../../services/bank/frontend.js';
import { generateX25519KeyPair } from '../../services/bank/hpke.js';
import { cardsFileText, payment, request, testCards } from './support.js';

test('a cards file round trips: amounts as bigint, PIN only as an argon2id hash', async (t) => {
  const cards = parseCardsFile(await cardsFileText([testCards.rich, testCards.blocked]));
  t.is(cards.length, 2);
  t.deepEqual(cards[0]!.available, { EUR: 100_000n, USD: 50_000n });
  t.false(cards[0]!.blocked);
  t.true(cards[1]!.blocked);
  t.true(cards[0]!.pinHash.startsWith('$argon2id$'));
  t.true(await verifySecret(cards[0]!.pinHash, testCards.rich.pin));
});

test('bad cards files are refused without echoing the PAN', (t) => {
  const hash = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g';
  const card = { pan: '4111111111111111', expiry: '3012', pinHash: hash, available: { EUR: '100' } };
  const refused = (value: unknown, message: RegExp) => {
    const error = t.throws(() => parseCardsFile(JSON.stringify(value)), { instanceOf: CardsFileError, message });
    t.false(error?.message.includes('4111111111111111'));
  };
  refused({ cards: [] }, /array/);
  refused([{ ...card, pan: '4111' }], /card #1: pan/);
  refused([{ ...card, expiry: '3013' }], /expiry/);
  refused([{ ...card, pinHash: undefined, pin: '1234' }], /plain PINs are not accepted/);
  refused([{ ...card, available: { EUR: 100 } }], /decimal string/);
  refused([{ ...card, available: { EUR: '1.5' } }], /decimal string/);
  refused([{ ...card, available: { EUR: '18446744073709551616' } }], /decimal string/);
  refused([{ ...card, available: { eur: '1' } }], /ISO 4217/);
  refused([{ ...card, blocked: 'yes' }], /blocked/);
  refused([card, card], /twice/);
  t.throws(() => parseCardsFile('{'), { instanceOf: CardsFileError, message: /not JSON/ });
});

test('the demo table behaves as README.md says', async (t) => {
  const keys = generateX25519KeyPair();
  const bank = new BankFrontEnd({ privateKey: keys.privateKey, cards: await demoCards(), logger: pino({ level: 'silent' }), now: Date.now });
  const key = { keyId: keyIdOf(keys.publicKey), suite: bank.publicKeyInfo().suite, publicKey: keys.publicKey, expiresAtMs: 0 };
  const decide = async (pan: string, pin: string, amount: bigint, currency = 'USD') => {
    const spec = demoCardSpecs.find((c) => c.pan === pan)!;
    const p = payment(amount, currency);
    const r = await request(key, p, { pan, expiry: spec.expiry }, pin);
    return bank.authorize({ idempotencyKey: p.id, payment: p, keyId: key.keyId, envelope: r.envelope });
  };
  t.like(await decide('4000000000000002', '1234', 250_000n), { decision: 'APPROVED', reasonCode: '00' });
  t.like(await decide('4000000000000002', '1234', 250_000n, 'EUR'), { decision: 'APPROVED' });
  t.like(await decide('4000000000000010', '1234', 501n), { decision: 'DECLINED', reasonCode: '51' });
  t.like(await decide('4000000000000010', '1234', 500n), { decision: 'APPROVED' });
  t.like(await decide('4000000000000028', '1234', 100n), { decision: 'DECLINED', reasonCode: '54' });
  t.like(await decide('4000000000000036', '1234', 100n), { decision: 'DECLINED', reasonCode: '62' });
  t.like(await decide('4000000000000002', '9999', 100n), { decision: 'DECLINED', reasonCode: '55' });
  t.is(bank.availableOf('4000000000000002', 'USD'), 100_000_000n - 250_000n);
});
