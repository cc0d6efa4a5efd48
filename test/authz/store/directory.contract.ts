import { randomInt } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type { Merchant, Payer } from '../../../authz/model.js';
import type { Directory } from '../../../authz/ports.js';
import { idToHex, newId } from '../../../ledger/ids.js';

export const hexId = (): string => idToHex(newId());

export interface DirectoryFactory {
  open(): Promise<Directory>;
}

export function payer(overrides: Partial<Payer> = {}): Payer {
  return {
    id: hexId(),
    phone: `+4479${String(randomInt(0, 100_000_000)).padStart(8, '0')}`,
    displayName: 'Ada',
    accounts: { EUR: hexId() },
    sealedSecret: 'c2VhbGVk',
    secretVersion: 1,
    tokenHash: hexId() + hexId(),
    policies: {
      EUR: { noFactorBelow: 500n, oneFactorUpTo: 2n ** 63n, defaultFactor: 'SECOND_CODE', strongFactors: ['SECOND_CODE', 'IVR_PASSWORD'] },
    },
    createdAtMs: Date.now(),
    ...overrides,
  };
}

export function merchant(overrides: Partial<Merchant> = {}): Merchant {
  return {
    id: hexId(),
    name: 'Corner Café',
    apiKeyHash: hexId() + hexId(),
    accounts: { EUR: hexId() },
    feeBasisPoints: 150,
    perPaymentLimit: 10_000_000n,
    createdAtMs: Date.now(),
    ...overrides,
  };
}

type Body = (t: ExecutionContext, dir: Directory) => Promise<void>;

export function directoryContract(name: string, factory: DirectoryFactory): void {
  let opened: Promise<Directory> | undefined;
  const dir = (): Promise<Directory> => (opened ??= factory.open());
  const c = (title: string, body: Body): void => {
    test(`${name} ${title}`, async (t) => body(t, await dir()));
  };
  test.after.always(`${name} close`, async () => {
    if (opened !== undefined) await (await opened).close();
  });

  c('payers by id, phone and token hash, every field round-tripped', async (t, dir) => {
    const p = payer({ pinHash: '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA', loginAccount: `ada-${hexId()}` });
    await dir.putPayer(p);
    t.deepEqual(await dir.getPayer(p.id), p);
    t.deepEqual(await dir.findPayerByPhone(p.phone), p);
    t.deepEqual(await dir.findPayerByTokenHash(p.tokenHash), p);
    t.is(await dir.getPayer(hexId()), undefined);
    t.is(await dir.findPayerByPhone('+15550000000'), undefined);
    t.is(await dir.findPayerByTokenHash(hexId()), undefined);
  });

  c('a payer put again with a new phone and token is found only by the new ones', async (t, dir) => {
    const p = payer();
    await dir.putPayer(p);
    const moved = payer({ id: p.id });
    await dir.putPayer(moved);
    t.deepEqual(await dir.findPayerByPhone(moved.phone), moved);
    t.deepEqual(await dir.findPayerByTokenHash(moved.tokenHash), moved);
    t.is(await dir.findPayerByPhone(p.phone), undefined);
    t.is(await dir.findPayerByTokenHash(p.tokenHash), undefined);
  });

  c('a phone taken over by another payer stays with it when the first payer moves on', async (t, dir) => {
    const first = payer();
    await dir.putPayer(first);
    const second = payer({ phone: first.phone });
    await dir.putPayer(second);
    t.deepEqual(await dir.findPayerByPhone(first.phone), second);
    await dir.putPayer({ ...first, phone: payer().phone });
    t.deepEqual(await dir.findPayerByPhone(first.phone), second);
  });

  c('payers by login account (M3); a payer without one is not found by any login', async (t, dir) => {
    const login = `alice-${hexId().slice(0, 8)}`;
    const withLogin = payer({ loginAccount: login });
    const without = payer();
    await dir.putPayer(withLogin);
    await dir.putPayer(without);
    t.deepEqual(await dir.findPayerByLogin(login), withLogin);
    t.is(await dir.findPayerByLogin(`${login}-x`), undefined);
    const renamed = { ...withLogin, loginAccount: `${login}-new` };
    await dir.putPayer(renamed);
    t.deepEqual(await dir.findPayerByLogin(`${login}-new`), renamed);
    t.is(await dir.findPayerByLogin(login), undefined, 'the old login no longer finds the payer');
  });

  c('reads are copies', async (t, dir) => {
    const p = payer();
    await dir.putPayer(p);
    const read = (await dir.getPayer(p.id))!;
    read.accounts.USD = hexId();
    read.policies.EUR!.strongFactors.push('BANK_CARD_PIN');
    t.deepEqual(await dir.getPayer(p.id), p);
  });

  c('merchants by id and API key hash; a new key hash replaces the old one', async (t, dir) => {
    const m = merchant();
    await dir.putMerchant(m);
    t.deepEqual(await dir.getMerchant(m.id), m);
    t.deepEqual(await dir.findMerchantByApiKeyHash(m.apiKeyHash), m);
    const rotated = { ...m, apiKeyHash: hexId() + hexId(), perPaymentLimit: 0n };
    await dir.putMerchant(rotated);
    t.deepEqual(await dir.findMerchantByApiKeyHash(rotated.apiKeyHash), rotated);
    t.is(await dir.findMerchantByApiKeyHash(m.apiKeyHash), undefined);
    t.is(await dir.getMerchant(hexId()), undefined);
  });

  c(
    'keys have a lifecycle (issue 15, finding 8): current and previous API key hashes both find the merchant; hashes a put no longer holds are dropped',
    async (t, dir) => {
      const [a, b, c, d] = [0, 1, 2, 3].map(() => hexId() + hexId()) as [string, string, string, string];
      const m = merchant({ apiKeyHash: a });
      await dir.putMerchant(m);
      const rotated = { ...m, apiKeyHash: b, previousApiKeyHash: a, previousApiKeyExpiresAtMs: 1_000 };
      await dir.putMerchant(rotated);
      t.deepEqual(await dir.findMerchantByApiKeyHash(b), rotated);
      t.deepEqual(await dir.findMerchantByApiKeyHash(a), rotated, 'the previous key finds the record, which carries its expiry');
      const again = { ...m, apiKeyHash: c, previousApiKeyHash: b, previousApiKeyExpiresAtMs: 2_000 };
      await dir.putMerchant(again);
      t.is(await dir.findMerchantByApiKeyHash(a), undefined, 'at most one previous key: the oldest is gone');
      t.deepEqual(await dir.findMerchantByApiKeyHash(b), again);
      const revoked = { ...m, apiKeyHash: d };
      await dir.putMerchant(revoked);
      t.deepEqual(await dir.getMerchant(m.id), revoked);
      for (const gone of [a, b, c]) t.is(await dir.findMerchantByApiKeyHash(gone), undefined);
      t.deepEqual(await dir.findMerchantByApiKeyHash(d), revoked);
    },
  );

  c('keys have a lifecycle: current and previous payer token hashes both find the payer; a revocation drops both', async (t, dir) => {
    const [a, b, c] = [0, 1, 2].map(() => hexId() + hexId()) as [string, string, string];
    const p = payer({ tokenHash: a });
    await dir.putPayer(p);
    const rotated = { ...p, tokenHash: b, previousTokenHash: a, previousTokenExpiresAtMs: 1_000 };
    await dir.putPayer(rotated);
    t.deepEqual(await dir.findPayerByTokenHash(a), rotated);
    t.deepEqual(await dir.findPayerByTokenHash(b), rotated);
    const revoked = { ...p, tokenHash: c };
    await dir.putPayer(revoked);
    t.is(await dir.findPayerByTokenHash(a), undefined);
    t.is(await dir.findPayerByTokenHash(b), undefined);
    t.deepEqual(await dir.findPayerByTokenHash(c), revoked);
  });
}
