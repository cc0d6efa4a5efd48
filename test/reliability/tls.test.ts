import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import * as grpc from '@grpc/grpc-js';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { type EnrollMerchantResponse, EnrollmentService } from '../../gen/countersign/v1/enrollment_pb.js';
import { type CheckBalancedResponse, LedgerService } from '../../gen/countersign/v1/ledger_pb.js';
import { createApp } from '../../services/app.js';
import { ConfigError, loadConfig, type TlsFiles, tlsSettings } from '../../services/config.js';
import { grpcServerCredentials } from '../../services/rpc/grpc-host.js';
import { startServers } from '../../services/server.js';
import { makeTestPki, type TestPki } from './tls-certs.js';
import { type CallOutcome, callOnce, tlsCredentials } from './tls-client.js';

// TLS and mutual TLS on the gRPC port (COUNTERSIGN_TLS_CERT, _KEY, _CLIENT_CA): real servers on
// port 0, real grpc-js clients, certificates made by the openssl CLI.

let pki: TestPki;
test.before(() => {
  pki = makeTestPki();
});
test.after.always(() => pki?.remove());

interface Served {
  address: string;
  connectPort: number;
  adminKey: string;
  logs: string[];
}

async function serveWith(t: ExecutionContext, tls: TlsFiles | null): Promise<Served> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-tls-app-'));
  const logs: string[] = [];
  const adminKey = `cs_admin_${randomBytes(12).toString('hex')}`;
  const config = { ...loadConfig({}), dataDir, masterKey: randomBytes(32).toString('base64'), adminKey };
  const app = await createApp({
    config,
    memoryLedger: true,
    memoryDirectory: true,
    memoryStore: true,
    logger: pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) }),
  });
  const servers = await startServers(app, { host: '127.0.0.1', grpcPort: 0, connectPort: 0, tls });
  t.teardown(async () => {
    await servers.close();
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { address: `127.0.0.1:${servers.grpcPort}`, connectPort: servers.connectPort, adminKey, logs };
}

const tlsOnly = (): TlsFiles => ({ certFile: pki.server.cert, keyFile: pki.server.key, clientCaFile: undefined });
const mutual = (): TlsFiles => ({ ...tlsOnly(), clientCaFile: pki.ca.cert });
const trusted = () => tlsCredentials(pki.read(pki.ca.cert));
const withClientCert = (c: { key: string; cert: string }) => tlsCredentials(pki.read(pki.ca.cert), { key: pki.read(c.key), cert: pki.read(c.cert) });

/** An operator call that reaches the ledger: balanced, with the platform's USD ledger in it. */
const checkBalanced = (s: Served, credentials: grpc.ChannelCredentials): Promise<CallOutcome> =>
  callOnce(LedgerService, s.address, credentials, s.adminKey, 'checkBalanced', {});

function assertBalanced(t: ExecutionContext, outcome: CallOutcome, what: string): void {
  if (!outcome.ok) return void t.fail(`${what}: ${grpc.status[outcome.code]} ${outcome.details}`);
  const response = outcome.value as CheckBalancedResponse;
  t.true(response.balanced, what);
  t.true(
    response.ledgers.some((l) => l.currency === 'USD'),
    `${what}: the USD ledger is reported`,
  );
}

function assertRefused(t: ExecutionContext, outcome: CallOutcome, what: string): void {
  t.false(outcome.ok, `${what} must not get an answer`);
  if (!outcome.ok) t.is(outcome.code, grpc.status.UNAVAILABLE, `${what}: ${outcome.details}`);
}

test('TLS: a client trusting the CA gets answers; plaintext and a client trusting another CA are refused', async (t) => {
  const s = await serveWith(t, tlsOnly());
  assertBalanced(t, await checkBalanced(s, trusted()), 'TLS client');
  const enrolled = await callOnce(EnrollmentService, s.address, trusted(), s.adminKey, 'enrollMerchant', {
    idempotencyKey: 'tls-merchant',
    name: 'Shop',
    currencies: ['USD'],
  });
  t.true(enrolled.ok && (enrolled.value as EnrollMerchantResponse).merchantId.length === 32, 'a mutating RPC over TLS');
  assertRefused(t, await checkBalanced(s, grpc.credentials.createInsecure()), 'plaintext client');
  assertRefused(t, await checkBalanced(s, tlsCredentials(pki.read(pki.otherCa.cert))), 'client trusting another CA');
  // A wrong API key over a good channel is still UNAUTHENTICATED: TLS admits the channel, the key names the caller.
  const anonymous = await callOnce(LedgerService, s.address, trusted(), 'cs_not_a_key', 'checkBalanced', {});
  t.deepEqual(anonymous.ok ? 'ok' : anonymous.code, grpc.status.UNAUTHENTICATED);
  assertBalanced(t, await checkBalanced(s, trusted()), 'TLS client after the refused ones');
});

test("mTLS: no client certificate and one from another CA are refused; the CA's client certificate works", async (t) => {
  const s = await serveWith(t, mutual());
  assertRefused(t, await checkBalanced(s, trusted()), 'TLS client without a certificate');
  assertRefused(t, await checkBalanced(s, withClientCert(pki.otherClient)), 'client certificate from another CA');
  // The server's own certificate is from the right CA but not for client authentication.
  assertRefused(t, await checkBalanced(s, withClientCert(pki.server)), 'server certificate used as a client certificate');
  assertRefused(t, await checkBalanced(s, grpc.credentials.createInsecure()), 'plaintext client');
  assertBalanced(t, await checkBalanced(s, withClientCert(pki.client)), 'client certificate from the CA');
});

test('the Connect port stays cleartext h2c when the gRPC port serves mTLS', async (t) => {
  const s = await serveWith(t, mutual());
  const transport = createGrpcTransport({
    baseUrl: `http://127.0.0.1:${s.connectPort}`,
    interceptors: [(next) => (req) => (req.header.set('authorization', `Bearer ${s.adminKey}`), next(req))],
  });
  const response = await createClient(LedgerService, transport).checkBalanced({}, { timeoutMs: 10_000 });
  t.true(response.balanced);
  t.true(response.ledgers.some((l) => l.currency === 'USD'));
});

test('settings: cert and key go together, a client CA needs both, unreadable or non-PEM files are ConfigErrors', (t) => {
  t.deepEqual(tlsSettings({}), { tls: undefined });
  t.deepEqual(tlsSettings({ COUNTERSIGN_TLS_CERT: 'c.pem', COUNTERSIGN_TLS_KEY: 'k.pem' }), {
    tls: { certFile: 'c.pem', keyFile: 'k.pem', clientCaFile: undefined },
  });
  t.deepEqual(tlsSettings({ COUNTERSIGN_TLS_CERT: 'c.pem', COUNTERSIGN_TLS_KEY: 'k.pem', COUNTERSIGN_TLS_CLIENT_CA: 'ca.pem' }).tls?.clientCaFile, 'ca.pem');
  t.throws(() => tlsSettings({ COUNTERSIGN_TLS_CERT: 'c.pem' }), { instanceOf: ConfigError, message: /go together/ });
  t.throws(() => tlsSettings({ COUNTERSIGN_TLS_KEY: 'k.pem' }), { instanceOf: ConfigError, message: /go together/ });
  t.throws(() => tlsSettings({ COUNTERSIGN_TLS_CLIENT_CA: 'ca.pem' }), { instanceOf: ConfigError, message: /needs COUNTERSIGN_TLS_CERT/ });
  t.is(loadConfig({ COUNTERSIGN_TLS_CERT: 'c.pem', COUNTERSIGN_TLS_KEY: 'k.pem' }).tls?.keyFile, 'k.pem');
  t.throws(() => grpcServerCredentials({ certFile: join(pki.dir, 'missing.pem'), keyFile: pki.server.key, clientCaFile: undefined }), {
    instanceOf: ConfigError,
    message: /COUNTERSIGN_TLS_CERT: cannot read .*missing\.pem \(ENOENT\)/,
  });
  const notPem = join(pki.dir, 'not.pem');
  writeFileSync(notPem, 'hello');
  t.throws(() => grpcServerCredentials({ certFile: pki.server.cert, keyFile: notPem, clientCaFile: undefined }), {
    instanceOf: ConfigError,
    message: /COUNTERSIGN_TLS_KEY: .* holds no PEM PRIVATE KEY/,
  });
  // The key file's contents never appear in an error.
  const error = t.throws(() => grpcServerCredentials({ certFile: pki.server.key, keyFile: pki.server.key, clientCaFile: undefined }), {
    instanceOf: ConfigError,
  });
  t.false(error?.message.includes('BEGIN'), error?.message);
});

const cli = fileURLToPath(new URL('../../services/cli.ts', import.meta.url));
/** Bounds on the child process, milliseconds. */
const startMsMax = 60_000;
const stopMsMax = 10_000;

test('countersign serve with COUNTERSIGN_TLS_* serves mTLS on the gRPC port', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-tls-serve-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const adminKey = `cs_admin_${randomBytes(12).toString('hex')}`;
  const child = spawn(process.execPath, ['--import=tsx', cli, 'serve'], {
    env: {
      ...process.env,
      COUNTERSIGN_DATA_DIR: dataDir,
      COUNTERSIGN_GRPC_PORT: '0',
      COUNTERSIGN_CONNECT_PORT: '0',
      COUNTERSIGN_LOG_LEVEL: 'warn',
      COUNTERSIGN_ADMIN_KEY: adminKey,
      COUNTERSIGN_TLS_CERT: pki.server.cert,
      COUNTERSIGN_TLS_KEY: pki.server.key,
      COUNTERSIGN_TLS_CLIENT_CA: pki.ca.cert,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => void child.kill('SIGKILL'));
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within ${startMsMax} ms: ${output}`)), startMsMax);
    const take = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /gRPC \(grpc-js\)\s+127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    void exited.then((code) => reject(new Error(`serve exited (${code}) before its banner: ${output}`)));
  });
  const served = { address: `127.0.0.1:${port}`, connectPort: 0, adminKey, logs: [] };
  assertRefused(t, await checkBalanced(served, grpc.credentials.createInsecure()), 'plaintext client');
  assertRefused(t, await checkBalanced(served, trusted()), 'TLS client without a certificate');
  assertBalanced(t, await checkBalanced(served, withClientCert(pki.client)), 'client certificate from the CA');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), stopMsMax);
  t.is(await exited, 0, output);
  clearTimeout(timer);
});
