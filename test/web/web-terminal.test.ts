import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import test from 'ava';
import { pino } from 'pino';
import { InboxNotifier } from '../../authz/notifier.js';
import { Channel, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { PayerService } from '../../gen/countersign/v1/payer_pb.js';
import { PaymentService } from '../../gen/countersign/v1/payments_pb.js';
import { createApp } from '../../services/app.js';
import { loadConfig } from '../../services/config.js';
import { startServers } from '../../services/server.js';
import { errorWords } from '../../services/web/client/words.mjs';
import { contentSecurityPolicy } from '../../services/web/security-headers.js';
import { key, secondCode } from '../e2e/harness.js';
import { createPayment, newMerchant, newPayer, startTerminalEnv } from './terminal-env.js';

/**
 * The web terminal's server without a browser: the page and its headers, the payer API over
 * HTTP/1.1 (Connect), the wiring in startServers and in `countersign serve`.
 */

/** Longest wait for `countersign serve` to print its banner or to exit. */
const processWaitMsMax = 30_000;

function bearer(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set('authorization', `Bearer ${token}`);
    return next(req);
  };
}

function http1Client<S extends typeof PayerService | typeof PaymentService>(service: S, baseUrl: string, token?: string) {
  return createClient(
    service,
    createConnectTransport({ baseUrl, httpVersion: '1.1', interceptors: token === undefined ? [] : [bearer(token)], defaultTimeoutMs: 10_000 }),
  );
}

async function newApp() {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-web-'));
  const app = await createApp({
    config: { ...loadConfig({}), dataDir, masterKey: randomBytes(32).toString('base64'), adminKey: `cs_admin_${randomBytes(12).toString('hex')}` },
    memoryLedger: true,
    memoryDirectory: true,
    memoryStore: true,
    notifier: new InboxNotifier(),
    logger: pino({ level: 'silent' }),
  });
  return {
    app,
    async close() {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

test('startServers with webPort serves the page and its assets with the security headers', async (t) => {
  const { app, close } = await newApp();
  const servers = await startServers(app, { host: '127.0.0.1', grpcPort: 0, connectPort: 0, webPort: 0, tls: null });
  try {
    t.regex(servers.webUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const base = servers.webUrl!;
    const page = await fetch(base);
    t.is(page.status, 200);
    t.is(page.headers.get('content-type'), 'text/html; charset=utf-8');
    const html = await page.text();
    t.regex(html, /<script type="module" src="\/terminal\.js"><\/script>/);
    t.notRegex(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    t.notRegex(html, /\sstyle=|\son[a-z]+=/, 'no inline style or handler');
    t.regex(html, /<form id="enroll-form" method="post"/, 'a form without the script never puts a PIN in a URL');
    for (const [path, type] of [
      ['/terminal.js', 'text/javascript; charset=utf-8'],
      ['/terminal.css', 'text/css; charset=utf-8'],
      ['/icon.svg', 'image/svg+xml'],
    ] as const) {
      const r = await fetch(new URL(path, base));
      t.is(r.status, 200, path);
      t.is(r.headers.get('content-type'), type, path);
      t.true((await r.arrayBuffer()).byteLength > 100, path);
    }
    const headers = page.headers;
    t.is(headers.get('content-security-policy'), contentSecurityPolicy);
    t.false(contentSecurityPolicy.includes('unsafe'), 'no unsafe-inline nor unsafe-eval');
    t.regex(contentSecurityPolicy, /script-src 'self'/);
    t.is(headers.get('x-content-type-options'), 'nosniff');
    t.is(headers.get('x-frame-options'), 'DENY');
    t.is(headers.get('referrer-policy'), 'no-referrer');
    t.is(headers.get('access-control-allow-origin'), null, 'no CORS: same origin only');
    t.is((await fetch(new URL('/nothing-here', base))).status, 404);
    const post = await fetch(base, { method: 'POST', body: 'x' });
    t.is(post.status, 405);
    t.is(post.headers.get('x-content-type-options'), 'nosniff');
    const api = await fetch(new URL('/countersign.v1.PayerService/ListPendingPayments', base), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    t.is(api.status, 401, 'the API answers (UNAUTHENTICATED without a token)');
    t.is(api.headers.get('x-content-type-options'), 'nosniff', 'API responses carry the headers too');
    t.is(api.headers.get('content-security-policy'), contentSecurityPolicy);
  } finally {
    await servers.close();
    await close();
  }
});

test('a busy default web port only skips the web terminal; a configured one is fatal', async (t) => {
  const { app, close } = await newApp();
  const blocker = http.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const busyPort = (blocker.address() as { port: number }).port;
  try {
    const servers = await startServers(app, { host: '127.0.0.1', grpcPort: 0, connectPort: 0, webPort: busyPort, webPortRequired: false, tls: null });
    t.is(servers.webUrl, undefined);
    t.true(servers.grpcPort > 0, 'the other servers run');
    await servers.close();
    await t.throwsAsync(startServers(app, { host: '127.0.0.1', grpcPort: 0, connectPort: 0, webPort: busyPort, tls: null }), { message: /EADDRINUSE/ });
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
    await close();
  }
});

test('the payer API over HTTP/1.1: token, payer-only, streaming, error details in words', async (t) => {
  const te = await startTerminalEnv();
  const { env, web } = te;
  try {
    const shop = await newMerchant(env, 0);
    const payer = await newPayer(env, 50_00n);
    const noToken = http1Client(PayerService, web.url);
    const e1 = await t.throwsAsync(noToken.listPendingPayments({}), { instanceOf: ConnectError });
    t.is(e1?.code, Code.Unauthenticated);
    const asMerchant = http1Client(PayerService, web.url, shop.apiKey);
    t.is((await t.throwsAsync(asMerchant.listPendingPayments({}), { instanceOf: ConnectError }))?.code, Code.PermissionDenied);
    const payments = http1Client(PaymentService, web.url, shop.apiKey);
    t.is(
      (await t.throwsAsync(payments.getPayment({ paymentId: '0'.repeat(32) }), { instanceOf: ConnectError }))?.code,
      Code.Unimplemented,
      'only PayerService on the web origin',
    );

    const terminal = http1Client(PayerService, web.url, payer.token);
    const stop = new AbortController();
    const stream = terminal.watchPendingPayments({ payerId: payer.id }, { signal: stop.signal, timeoutMs: 0 })[Symbol.asyncIterator]();
    const payment = await createPayment(shop, payer, 9_99n, Channel.WEB);
    t.is((await stream.next()).value?.payment?.id, payment.id, 'the stream delivers the new payment over HTTP/1.1');

    const challenge = await terminal.getChallenge({ paymentId: payment.id });
    t.regex(challenge.firstCode, /^\d{8}$/, "the first code, for the payer's own web terminal");
    t.is(challenge.payeeName, 'Shop');
    const wrong = await t.throwsAsync(
      terminal.confirmPayment({ idempotencyKey: key('w'), paymentId: payment.id, proof: { case: 'secondCode', value: '00000000' } }),
      { instanceOf: ConnectError },
    );
    t.is(errorWords(wrong), 'Wrong code. 4 attempts left.', 'attempts left read from ErrorInfo');
    const right = secondCode(payer, challenge.firstCode, challenge.amount, challenge.payeeAccountId);
    const ok = await terminal.confirmPayment({ idempotencyKey: key('r'), paymentId: payment.id, proof: { case: 'secondCode', value: right } });
    t.is(ok.payment?.state, PaymentState.SUCCEEDED);
    let last = (await stream.next()).value?.payment;
    for (let i = 0; i < 5 && last?.state !== PaymentState.SUCCEEDED; i++) last = (await stream.next()).value?.payment;
    t.is(last?.state, PaymentState.SUCCEEDED, 'the stream follows the payment to its end');
    const replay = await t.throwsAsync(
      terminal.confirmPayment({ idempotencyKey: key('again'), paymentId: payment.id, proof: { case: 'secondCode', value: right } }),
      { instanceOf: ConnectError },
    );
    t.regex(errorWords(replay), /no longer waiting for approval/);
    stop.abort();
  } finally {
    await te.close();
  }
});

test('close() ends open watch streams with UNAVAILABLE and leaves no connection', async (t) => {
  const te = await startTerminalEnv();
  try {
    const payer = await newPayer(te.env, 0n);
    const terminal = http1Client(PayerService, te.web.url, payer.token);
    const ended = (async () => {
      for await (const _ of terminal.watchPendingPayments({ payerId: payer.id }, { timeoutMs: 0 })) void _;
    })();
    await terminal.listPendingPayments({ payerId: payer.id }); // the stream's request is in before close
    t.true(te.web.connectionCount() >= 1);
    await te.web.close();
    const error = await t.throwsAsync(ended, { instanceOf: ConnectError });
    t.is(error?.code, Code.Unavailable);
    t.is(te.web.connectionCount(), 0, 'nothing leaked');
  } finally {
    await te.close();
  }
});

test('countersign serve prints the terminal URL and serves it', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-web-serve-'));
  const cli = fileURLToPath(new URL('../../services/cli.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import=tsx', cli, 'serve'], {
    env: {
      ...process.env,
      COUNTERSIGN_DATA_DIR: dataDir,
      COUNTERSIGN_GRPC_PORT: '0',
      COUNTERSIGN_CONNECT_PORT: '0',
      COUNTERSIGN_WEB_PORT: '0',
      COUNTERSIGN_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no terminal URL in ${processWaitMsMax} ms: ${output}`)), processWaitMsMax);
    const take = (d: Buffer) => {
      output += d.toString();
      const m = /payer web terminal\s+(http:\/\/127\.0\.0\.1:\d+\/)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
  });
  const page = await fetch(url);
  t.is(page.status, 200);
  t.regex(await page.text(), /countersign · payer terminal/);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), processWaitMsMax))]);
  t.is(code, 0, output);
  t.false(output.includes(readFileSync(join(dataDir, 'admin.key'), 'utf8').trim()), 'the operator key is not printed');
});
