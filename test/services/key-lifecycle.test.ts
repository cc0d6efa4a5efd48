import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DescService } from '@bufbuild/protobuf';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { Code } from '@connectrpc/connect';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { base32Decode } from '../../authz/codes/secret.js';
import { credentialOverlapSecondsDefault, credentialOverlapSecondsMax } from '../../authz/enrollment.js';
import { InboxNotifier } from '../../authz/notifier.js';
import { DeclineReason, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { EnrollmentService } from '../../gen/countersign/v1/enrollment_pb.js';
import { LedgerService } from '../../gen/countersign/v1/ledger_pb.js';
import { PayerService } from '../../gen/countersign/v1/payer_pb.js';
import { PaymentService } from '../../gen/countersign/v1/payments_pb.js';
import { createApp } from '../../services/app.js';
import { loadConfig } from '../../services/config.js';
import { startServers } from '../../services/server.js';
import { appPayment, type Clients, type Env, key, newMerchant, newPayer, type Payer, reasonOf, refusedWith, secondCode } from '../e2e/harness.js';
import { runCli, runCliHere } from '../support/cli-child.js';
import { grpcJsClient } from '../support/grpc-js-client.js';

/**
 * Issue 15, finding 8 ("keys never die"), README "Tenant safety", keys have a lifecycle: a real
 * server on 127.0.0.1 port 0 (grpc-js clients, memory store and directory) whose clock the test
 * moves (`advance`), so an overlap ends without waiting on the wall clock. Each test failed on
 * the code before the fix (the RPCs did not exist; a rotated secret's old challenges answered).
 */

interface ClockedEnv {
  env: Env;
  advance(ms: number): void;
  /** The server's clock now. */
  nowMs(): number;
  /** The CLI's settings for this server (the operator key as COUNTERSIGN_ADMIN_KEY). */
  cliEnv: Record<string, string>;
}

async function start(t: ExecutionContext): Promise<ClockedEnv> {
  // The server's clock: fixed at the start and moved only by `advance`, so every bound is exact.
  const startMs = Date.now();
  let offsetMs = 0;
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-keys-'));
  const config = { ...loadConfig({}), dataDir, masterKey: randomBytes(32).toString('base64'), adminKey: `cs_admin_${randomBytes(12).toString('hex')}` };
  const app = await createApp({
    config,
    memoryLedger: true,
    memoryDirectory: true,
    memoryStore: true,
    notifier: new InboxNotifier(),
    now: () => startMs + offsetMs,
    logger: pino({ level: 'silent' }),
    // Challenges outlive every clock move of these tests.
    limits: { codeTtlMs: 3_600_000, reservationGraceSeconds: 1 },
  });
  const servers = await startServers(app, { host: '127.0.0.1', grpcPort: 0, connectPort: 0 });
  const closers: (() => void)[] = [];
  const clients = (apiKey: string): Clients => {
    const make = <S extends DescService>(s: S) => {
      const c = grpcJsClient(s, `127.0.0.1:${servers.grpcPort}`, apiKey);
      closers.push(c.close);
      return c.client;
    };
    return { payments: make(PaymentService), payer: make(PayerService), enrollment: make(EnrollmentService), ledger: make(LedgerService) };
  };
  const env = { app, admin: clients(app.adminKey), clients } as unknown as Env;
  t.teardown(async () => {
    closers.forEach((close) => close());
    await servers.close();
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return {
    env,
    advance: (ms) => void (offsetMs += ms),
    nowMs: () => startMs + offsetMs,
    cliEnv: { COUNTERSIGN_GRPC_PORT: String(servers.grpcPort), COUNTERSIGN_ADMIN_KEY: config.adminKey, COUNTERSIGN_DATA_DIR: dataDir },
  };
}

/** A call only a live merchant key gets through. */
const listAs = (env: Env, apiKey: string) => env.clients(apiKey).payments.listPayments({ pageSize: 1 });
/** A call only a live payer token gets through. */
const payerCall = (env: Env, token: string, payerId: string) => env.clients(token).enrollment.getPayer({ payerId });

test('merchant key rotation: the old key works within the overlap and is UNAUTHENTICATED after it (the server clock moved); a retry returns no key', async (t) => {
  const { env, advance, nowMs } = await start(t);
  const shop = await newMerchant(env);
  await listAs(env, shop.apiKey); // the old key is now in the login cache
  const request = { idempotencyKey: key('rotate'), merchantId: '', overlapSeconds: 600 };
  const rotated = await shop.api.enrollment.rotateApiKey(request);
  t.is(rotated.merchantId, shop.id, 'empty merchant_id: the calling merchant');
  t.regex(rotated.apiKey, /^cs_live_/);
  t.not(rotated.apiKey, shop.apiKey);
  const expiresAtMs = Number(timestampMs(rotated.previousKeyExpiresAt!));
  t.is(expiresAtMs, nowMs() + 600_000);
  const retry = await shop.api.enrollment.rotateApiKey(request);
  t.deepEqual(
    [retry.apiKey, retry.merchantId, timestampMs(retry.previousKeyExpiresAt!)],
    ['', shop.id, timestampMs(rotated.previousKeyExpiresAt!)],
    'a retry: same outcome, the key not shown again',
  );

  t.is((await listAs(env, shop.apiKey)).payments.length, 0, 'the old key within the overlap');
  t.is((await listAs(env, rotated.apiKey)).payments.length, 0, 'the new key');
  advance(599_999);
  await listAs(env, shop.apiKey);
  advance(1);
  await refusedWith(t, listAs(env, shop.apiKey), Code.Unauthenticated);
  await listAs(env, rotated.apiKey);
  // The retry did not rotate again: the new key is still the current one, and its own rotation works.
  const second = await env.admin.enrollment.rotateApiKey({ idempotencyKey: key('rotate2'), merchantId: shop.id, overlapSeconds: 0 });
  t.is(Number(timestampMs(second.previousKeyExpiresAt!)) - nowMs(), credentialOverlapSecondsDefault * 1000, 'overlap 0: the default, 24 h');
  await listAs(env, rotated.apiKey);
  await listAs(env, second.apiKey);
});

test('merchant key revocation: every key of the merchant is refused at once (the current one and one still in its overlap); the new one works', async (t) => {
  const { env } = await start(t);
  const shop = await newMerchant(env);
  const rotated = await shop.api.enrollment.rotateApiKey({ idempotencyKey: key('rotate'), merchantId: shop.id, overlapSeconds: 3_600 });
  await listAs(env, shop.apiKey);
  await listAs(env, rotated.apiKey);
  const revoked = await env.clients(rotated.apiKey).enrollment.revokeApiKeys({ idempotencyKey: key('revoke'), merchantId: '' });
  t.is(revoked.merchantId, shop.id);
  t.regex(revoked.apiKey, /^cs_live_/);
  await refusedWith(t, listAs(env, shop.apiKey), Code.Unauthenticated);
  await refusedWith(t, listAs(env, rotated.apiKey), Code.Unauthenticated);
  await listAs(env, revoked.apiKey);
  // A key refused is refused for every method, the key lifecycle RPCs included.
  await refusedWith(t, env.clients(rotated.apiKey).enrollment.revokeApiKeys({ idempotencyKey: key('again'), merchantId: '' }), Code.Unauthenticated);
});

test("a merchant cannot rotate or revoke another merchant's key (NOT_FOUND), nor a payer's token; bounds are INVALID_ARGUMENT", async (t) => {
  const { env } = await start(t);
  const [mine, theirs] = await Promise.all([newMerchant(env), newMerchant(env)]);
  const payer = await newPayer(env);
  await refusedWith(t, mine.api.enrollment.rotateApiKey({ idempotencyKey: key('x'), merchantId: theirs.id, overlapSeconds: 0 }), Code.NotFound);
  await refusedWith(t, mine.api.enrollment.revokeApiKeys({ idempotencyKey: key('x'), merchantId: theirs.id }), Code.NotFound);
  await refusedWith(t, mine.api.enrollment.rotatePayerToken({ idempotencyKey: key('x'), payerId: payer.id, overlapSeconds: 0 }), Code.NotFound);
  await refusedWith(t, mine.api.enrollment.revokePayerTokens({ idempotencyKey: key('x'), payerId: '' }), Code.NotFound);
  await listAs(env, theirs.apiKey);
  await payerCall(env, payer.token, payer.id);
  t.regex(
    (await refusedWith(t, env.admin.enrollment.rotateApiKey({ idempotencyKey: key('x'), merchantId: '', overlapSeconds: 0 }), Code.InvalidArgument)).rawMessage,
    /merchant_id is required/,
  );
  t.regex(
    (
      await refusedWith(
        t,
        mine.api.enrollment.rotateApiKey({ idempotencyKey: key('x'), merchantId: '', overlapSeconds: credentialOverlapSecondsMax + 1 }),
        Code.InvalidArgument,
      )
    ).rawMessage,
    /overlap_seconds must be 0 \(86400\) to 604800/,
  );
  await listAs(env, mine.apiKey);
  const reused = key('reused');
  await mine.api.enrollment.rotateApiKey({ idempotencyKey: reused, merchantId: '', overlapSeconds: 10 });
  await refusedWith(t, mine.api.enrollment.rotateApiKey({ idempotencyKey: reused, merchantId: '', overlapSeconds: 20 }), Code.AlreadyExists);
});

test("payer token: the payer rotates its own (old token works within the overlap, UNAUTHENTICATED after), cannot touch another payer's; an operator's revocation is refused at once", async (t) => {
  const { env, advance } = await start(t);
  const [payer, other] = await Promise.all([newPayer(env), newPayer(env)]);
  await payerCall(env, payer.token, payer.id);
  await refusedWith(t, payer.api.enrollment.rotatePayerToken({ idempotencyKey: key('x'), payerId: other.id, overlapSeconds: 0 }), Code.NotFound);
  await refusedWith(t, payer.api.enrollment.revokePayerTokens({ idempotencyKey: key('x'), payerId: other.id }), Code.NotFound);
  await refusedWith(t, payer.api.enrollment.rotateApiKey({ idempotencyKey: key('x'), merchantId: '', overlapSeconds: 0 }), Code.NotFound);
  await payerCall(env, other.token, other.id);

  const request = { idempotencyKey: key('rotate'), payerId: '', overlapSeconds: 30 };
  const rotated = await payer.api.enrollment.rotatePayerToken(request);
  t.is(rotated.payerId, payer.id);
  t.regex(rotated.payerToken, /^cs_payer_/);
  t.is((await payer.api.enrollment.rotatePayerToken(request)).payerToken, '', 'a retry does not show the token again');
  await payerCall(env, payer.token, payer.id);
  advance(29_999);
  await payerCall(env, payer.token, payer.id);
  advance(1);
  await refusedWith(t, payerCall(env, payer.token, payer.id), Code.Unauthenticated);
  await payerCall(env, rotated.payerToken, payer.id);

  const revoked = await env.admin.enrollment.revokePayerTokens({ idempotencyKey: key('revoke'), payerId: payer.id });
  t.is(revoked.payerId, payer.id);
  await refusedWith(t, payerCall(env, rotated.payerToken, payer.id), Code.Unauthenticated);
  await payerCall(env, revoked.payerToken, payer.id);
  await payerCall(env, other.token, other.id);
});

test('RotateSecret closes the challenges opened under the old secret: DECLINED (SECRET_ROTATED) at once, and the old code on them is FAILED_PRECONDITION; a challenge opened after works with the new secret only', async (t) => {
  const { env } = await start(t);
  const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
  const before = await appPayment(shop, payer, 20_00n);
  const oldCode = secondCode(payer, before.firstCode, 20_00n, shop.account);

  const rotated = await env.admin.enrollment.rotateSecret({ idempotencyKey: key('secret'), payerId: payer.id });
  t.is(rotated.secretVersion, 2);
  const closed = (await shop.api.payments.getPayment({ paymentId: before.id })).payment!;
  t.deepEqual([closed.state, closed.declineReason], [PaymentState.DECLINED, DeclineReason.SECRET_ROTATED], 'the merchant sees it closed');
  for (const confirm of [
    payer.api.payer.confirmPayment({ idempotencyKey: key('old'), paymentId: before.id, proof: { case: 'secondCode', value: oldCode } }),
    shop.api.payments.confirmPaymentAsMerchant({ idempotencyKey: key('old-m'), paymentId: before.id, secondCode: oldCode }),
  ]) {
    t.is(reasonOf(await refusedWith(t, confirm, Code.FailedPrecondition)), 'SECRET_ROTATED');
  }

  const renewed: Payer = { ...payer, secret: base32Decode(rotated.verificationSecretBase32) };
  const after = await appPayment(shop, payer, 30_00n);
  const stale = secondCode(payer, after.firstCode, 30_00n, shop.account);
  await refusedWith(
    t,
    payer.api.payer.confirmPayment({ idempotencyKey: key('stale'), paymentId: after.id, proof: { case: 'secondCode', value: stale } }),
    Code.PermissionDenied,
  );
  const done = (
    await payer.api.payer.confirmPayment({
      idempotencyKey: key('new'),
      paymentId: after.id,
      proof: { case: 'secondCode', value: secondCode(renewed, after.firstCode, 30_00n, shop.account) },
    })
  ).payment!;
  t.is(done.state, PaymentState.SUCCEEDED);
});

test('a second code for a payment challenged under an older secret than the payer now has (one RotateSecret did not close: a create that read the payer before) is FAILED_PRECONDITION SECRET_ROTATED and declines it, for the payer and the merchant; a retry answers the same', async (t) => {
  const { env } = await start(t);
  const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
  const byPayer = await appPayment(shop, payer, 20_00n);
  const byShop = await appPayment(shop, payer, 21_00n);
  // The rotation's directory write without its closing step (the process died in between).
  const record = (await env.app.directory.getPayer(payer.id))!;
  await env.app.directory.putPayer({ ...record, secretVersion: record.secretVersion + 1 });

  const request = {
    idempotencyKey: key('late'),
    paymentId: byPayer.id,
    proof: { case: 'secondCode' as const, value: secondCode(payer, byPayer.firstCode, 20_00n, shop.account) },
  };
  t.is(reasonOf(await refusedWith(t, payer.api.payer.confirmPayment(request), Code.FailedPrecondition)), 'SECRET_ROTATED');
  t.is(reasonOf(await refusedWith(t, payer.api.payer.confirmPayment(request), Code.FailedPrecondition)), 'SECRET_ROTATED', 'the retry');
  const viaShop = shop.api.payments.confirmPaymentAsMerchant({
    idempotencyKey: key('late-m'),
    paymentId: byShop.id,
    secondCode: secondCode(payer, byShop.firstCode, 21_00n, shop.account),
  });
  t.is(reasonOf(await refusedWith(t, viaShop, Code.FailedPrecondition)), 'SECRET_ROTATED');
  for (const id of [byPayer.id, byShop.id]) {
    const p = (await shop.api.payments.getPayment({ paymentId: id })).payment!;
    t.deepEqual([p.state, p.declineReason], [PaymentState.DECLINED, DeclineReason.SECRET_ROTATED]);
  }
});

test('child: countersign merchant rotate-key --json with the merchant key (COUNTERSIGN_API_KEY) prints one JSON object; the old and the new key both work in the overlap', async (t) => {
  const { env, cliEnv } = await start(t);
  const shop = await newMerchant(env);
  const cwd = mkdtempSync(join(tmpdir(), 'cs-keys-cwd-'));
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const ran = await runCli(t, ['merchant', 'rotate-key', '--overlap-seconds', '600', '--json'], { cwd, env: { ...cliEnv, COUNTERSIGN_API_KEY: shop.apiKey } });
  t.is(ran.code, 0, ran.stderr);
  t.is(ran.stderr, '');
  const lines = ran.stdout.trimEnd().split('\n');
  t.is(lines.length, 1);
  const out = JSON.parse(lines[0]!) as { idempotencyKey: string; merchantId: string; apiKey: string; previousKeyExpiresAt: string };
  t.is(out.merchantId, shop.id);
  t.regex(out.idempotencyKey, /^cli-rotate-key-[0-9a-f]{24}$/);
  t.is(Date.parse(out.previousKeyExpiresAt), env.app.payments.deps.now() + 600_000);
  t.deepEqual(await env.app.resolvePrincipal(out.apiKey), { kind: 'merchant', id: shop.id });
  t.deepEqual(await env.app.resolvePrincipal(shop.apiKey), { kind: 'merchant', id: shop.id });
});

test('countersign merchant revoke-key --merchant ID (operator key), payer rotate-token (its own token) and payer revoke-token --payer ID: lines as documented, old credentials refused; another merchant id is NOT_FOUND, exit 1', async (t) => {
  const { env, cliEnv } = await start(t);
  const [shop, other] = await Promise.all([newMerchant(env), newMerchant(env)]);
  const payer = await newPayer(env);

  const revoked = await runCliHere(['merchant', 'revoke-key', '--merchant', shop.id], cliEnv);
  t.is(revoked.code, 0, revoked.stderr);
  const lines = revoked.stdout.trimEnd().split('\n');
  t.is(lines[0], `API key revoked: merchant ${shop.id}`);
  t.is(lines[1], '  previous keys         refused from now on');
  const newKey = /^ {2}new API key +(\S+)$/.exec(lines[2]!)?.[1];
  t.regex(newKey ?? '', /^cs_live_/);
  t.is(lines[3], 'The API key is shown this once (the server keeps only its hash): store it now.');
  t.is(await env.app.resolvePrincipal(shop.apiKey), undefined);
  t.deepEqual(await env.app.resolvePrincipal(newKey!), { kind: 'merchant', id: shop.id });

  const refused = await runCliHere(['merchant', 'rotate-key', '--merchant', other.id, '--key', newKey!], cliEnv);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^countersign merchant rotate-key: NOT_FOUND: merchant [0-9a-f]{32} not found/);
  t.deepEqual(await env.app.resolvePrincipal(other.apiKey), { kind: 'merchant', id: other.id });

  const rotated = await runCliHere(['payer', 'rotate-token', '--overlap-seconds', '60'], { ...cliEnv, COUNTERSIGN_PAYER_TOKEN: payer.token });
  t.is(rotated.code, 0, rotated.stderr);
  const rotatedLines = rotated.stdout.trimEnd().split('\n');
  t.is(rotatedLines[0], `payer token rotated: payer ${payer.id}`);
  t.regex(rotatedLines[1]!, /^ {2}previous token until +\d{4}-\d\d-\d\dT/);
  const token = /^ {2}new payer token +(\S+)$/.exec(rotatedLines[2]!)?.[1];
  t.deepEqual(await env.app.resolvePrincipal(token!), { kind: 'payer', id: payer.id });
  t.deepEqual(await env.app.resolvePrincipal(payer.token), { kind: 'payer', id: payer.id }, 'in its overlap');

  const gone = await runCliHere(['payer', 'revoke-token', '--payer', payer.id, '--json'], cliEnv);
  t.is(gone.code, 0, gone.stderr);
  const json = JSON.parse(gone.stdout) as { payerId: string; payerToken: string };
  t.is(json.payerId, payer.id);
  for (const old of [payer.token, token!]) t.is(await env.app.resolvePrincipal(old), undefined);
  t.deepEqual(await env.app.resolvePrincipal(json.payerToken), { kind: 'payer', id: payer.id });

  const help = await runCliHere(['payer', 'rotate-token', '--help'], {});
  t.is(help.code, 0);
  t.true(help.stdout.startsWith('usage: countersign payer rotate-token [--payer ID] [--token TOKEN] [--overlap-seconds N]'), help.stdout);
});
