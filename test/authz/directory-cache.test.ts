import test, { type ExecutionContext } from 'ava';
import { CachedDirectory } from '../../authz/directory-cache.js';
import type { Directory } from '../../authz/ports.js';
import { MemoryDirectory } from '../../authz/store/memory-directory.js';
import { RedisDirectory } from '../../authz/store/redis-directory.js';
import { startRedis } from '../support/redis.js';
import { merchant, payer } from './store/directory.contract.js';

/** Counts the reads that reach the directory behind the cache. */
function counting(inner: Directory): { directory: Directory; reads: () => number } {
  let reads = 0;
  const directory = new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (typeof property === 'string' && (property.startsWith('get') || property.startsWith('find'))) reads += 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { directory, reads: () => reads };
}

test('a cached payer is read from the directory once; lookups by phone, token and login reuse it', async (t) => {
  const inner = counting(new MemoryDirectory());
  const cache = new CachedDirectory(inner.directory);
  const p = payer({ loginAccount: 'ada-login' });
  await cache.putPayer(p);
  t.deepEqual(await cache.getPayer(p.id), p);
  t.deepEqual(await cache.findPayerByPhone(p.phone), p);
  t.deepEqual(await cache.findPayerByTokenHash(p.tokenHash), p);
  t.deepEqual(await cache.findPayerByLogin('ada-login'), p);
  const afterFirst = inner.reads();
  for (let i = 0; i < 5; i++) {
    await cache.getPayer(p.id);
    await cache.findPayerByPhone(p.phone);
    await cache.findPayerByTokenHash(p.tokenHash);
  }
  t.is(inner.reads(), afterFirst, 'every repeat is a cache hit');
});

test('a change forgets the record at once: a rotated token no longer resolves, the new one does', async (t) => {
  const cache = new CachedDirectory(new MemoryDirectory());
  const p = payer();
  await cache.putPayer(p);
  t.is((await cache.findPayerByTokenHash(p.tokenHash))?.id, p.id);
  const rotated = { ...p, tokenHash: 'f'.repeat(64), secretVersion: 2 };
  await cache.putPayer(rotated);
  t.is(await cache.findPayerByTokenHash(p.tokenHash), undefined, 'the old token is refused at once');
  t.is((await cache.findPayerByTokenHash(rotated.tokenHash))?.secretVersion, 2);
  t.is((await cache.getPayer(p.id))?.secretVersion, 2);
});

test('cached records are frozen: no caller can change what another reads', async (t) => {
  const cache = new CachedDirectory(new MemoryDirectory());
  const m = merchant();
  await cache.putMerchant(m);
  const read = (await cache.getMerchant(m.id))!;
  t.throws(() => ((read as { name: string }).name = 'changed'));
  t.is((await cache.getMerchant(m.id))!.name, m.name);
});

test('the TTL bounds a stale entry: past it the directory is asked again', async (t) => {
  let now = 1_000_000;
  const inner = counting(new MemoryDirectory());
  const cache = new CachedDirectory(inner.directory, { now: () => now, ttlMs: 1_000 });
  const p = payer();
  await inner.directory.putPayer(p);
  await cache.getPayer(p.id);
  const reads = inner.reads();
  now += 999;
  await cache.getPayer(p.id);
  t.is(inner.reads(), reads);
  now += 2;
  await cache.getPayer(p.id);
  t.is(inner.reads(), reads + 1);
});

test('full, the least recently used record goes first; a read does not extend the TTL', async (t) => {
  let now = 1_000_000;
  const inner = counting(new MemoryDirectory());
  const cache = new CachedDirectory(inner.directory, { now: () => now, entriesMax: 2, ttlMs: 1_000 });
  const [a, b, c] = [payer(), payer(), payer()];
  for (const p of [a, b, c]) await inner.directory.putPayer(p);
  await cache.getPayer(a.id);
  await cache.getPayer(b.id);
  await cache.getPayer(a.id); // a is now the most recently used
  await cache.getPayer(c.id); // full: b goes
  const reads = inner.reads();
  now += 500;
  await cache.getPayer(a.id);
  await cache.getPayer(c.id);
  t.is(inner.reads(), reads, 'a and c are cached');
  await cache.getPayer(b.id);
  t.is(inner.reads(), reads + 1, 'b was evicted');
  now += 501; // a was set 1001 ms ago: read 501 ms ago, it is stale all the same
  await cache.getPayer(a.id);
  t.is(inner.reads(), reads + 2);
});

/** Two processes' caches over one real redis-server: a writer, and a reader that listens for changes. */
async function twoProcessCaches(t: ExecutionContext): Promise<{ writer: CachedDirectory; reader: CachedDirectory }> {
  const server = await startRedis();
  const writer = new CachedDirectory(await RedisDirectory.open({ url: server.url }));
  const readerDirectory = await RedisDirectory.open({ url: server.url });
  const reader = new CachedDirectory(readerDirectory);
  await readerDirectory.watching;
  t.teardown(async () => {
    await writer.close();
    await reader.close();
    await server.stop();
  });
  return { writer, reader };
}

test('on Redis, a change made through one process is heard by another process cache at once', async (t) => {
  const { writer, reader } = await twoProcessCaches(t);
  const p = payer();
  await writer.putPayer(p);
  t.is((await reader.getPayer(p.id))?.displayName, p.displayName, 'cached in the reader now');
  await writer.putPayer({ ...p, displayName: 'Renamed' });
  // The notification travels over Redis pub/sub: wait for it (bounded), never for a fixed time.
  let seen = '';
  for (let i = 0; i < 200 && seen !== 'Renamed'; i++) {
    seen = (await reader.getPayer(p.id))?.displayName ?? '';
    if (seen !== 'Renamed') await new Promise((resolve) => setTimeout(resolve, 10));
  }
  t.is(seen, 'Renamed');
});

test('a known payer token or merchant key resolves from the cache without asking the directory', async (t) => {
  const inner = counting(new MemoryDirectory());
  const cache = new CachedDirectory(inner.directory);
  const p = payer();
  const m = merchant();
  await cache.putPayer(p);
  await cache.putMerchant(m);
  t.is(cache.cachedCredential(p.tokenHash), undefined, 'not known before a lookup');
  await cache.findPayerByTokenHash(p.tokenHash);
  await cache.findMerchantByApiKeyHash(m.apiKeyHash);
  const reads = inner.reads();
  t.deepEqual(cache.cachedCredential(p.tokenHash), { kind: 'payer', payer: p });
  t.deepEqual(cache.cachedCredential(m.apiKeyHash), { kind: 'merchant', merchant: m });
  t.is(inner.reads(), reads);
  await cache.putPayer({ ...p, tokenHash: 'e'.repeat(64) });
  t.is(cache.cachedCredential(p.tokenHash), undefined, 'a rotated token is forgotten at once');
});

test('keys have a lifecycle (issue 15, finding 8): a previous key is accepted until its overlap ends by the clock, cached or not, then refused', async (t) => {
  let now = 1_000_000;
  const inner = new MemoryDirectory();
  const cache = new CachedDirectory(inner, { now: () => now, ttlMs: 3_600_000 });
  const m = merchant();
  const p = payer();
  await cache.putMerchant({ ...m, apiKeyHash: 'b'.repeat(64), previousApiKeyHash: m.apiKeyHash, previousApiKeyExpiresAtMs: now + 30_000 });
  await cache.putPayer({ ...p, tokenHash: 'c'.repeat(64), previousTokenHash: p.tokenHash, previousTokenExpiresAtMs: now + 30_000 });
  t.is((await cache.findMerchantByApiKeyHash(m.apiKeyHash))?.id, m.id, 'within the overlap');
  t.is((await cache.findPayerByTokenHash(p.tokenHash))?.id, p.id);
  t.is(cache.cachedCredential(m.apiKeyHash)?.kind, 'merchant', 'now cached');
  now += 29_999;
  t.is((await cache.findMerchantByApiKeyHash(m.apiKeyHash))?.id, m.id);
  now += 1;
  t.is(cache.cachedCredential(m.apiKeyHash), undefined, 'past the overlap: refused though the record is cached');
  t.is(cache.cachedCredential(p.tokenHash), undefined);
  t.is(await cache.findMerchantByApiKeyHash(m.apiKeyHash), undefined);
  t.is(await cache.findPayerByTokenHash(p.tokenHash), undefined);
  t.is((await cache.findMerchantByApiKeyHash('b'.repeat(64)))?.id, m.id, 'the new key works');
});

test('keys have a lifecycle: on Redis, a key revoked through one process cache is refused by another process cache that had it cached, once the change is heard', async (t) => {
  const { writer, reader } = await twoProcessCaches(t);
  const m = merchant();
  await writer.putMerchant(m);
  t.is((await reader.findMerchantByApiKeyHash(m.apiKeyHash))?.id, m.id);
  t.is(reader.cachedCredential(m.apiKeyHash)?.kind, 'merchant', 'cached in the reader');
  await writer.putMerchant({ ...m, apiKeyHash: 'd'.repeat(64) });
  // The notification travels over Redis pub/sub: wait for it (bounded), never for a fixed time.
  let known = true;
  for (let i = 0; i < 200 && known; i++) {
    known = reader.cachedCredential(m.apiKeyHash) !== undefined;
    if (known) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  t.false(known, 'the reader forgot the record');
  t.is(await reader.findMerchantByApiKeyHash(m.apiKeyHash), undefined, 'and the directory no longer knows the key');
});
