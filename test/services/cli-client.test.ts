import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { deriveSecondCode } from '../../authz/codes/challenge.js';
import { base32Decode, base32Encode } from '../../authz/codes/secret.js';
import { InboxNotifier } from '../../authz/notifier.js';
import { type App, createApp } from '../../services/app.js';
import { UsageError } from '../../services/cli-errors.js';
import { balance, fund } from '../../services/commands/ledger.js';
import { merchantEnroll } from '../../services/commands/merchant.js';
import { CommandFailure } from '../../services/commands/output.js';
import { payerConfirm, payerDerive, payerEnroll } from '../../services/commands/payer.js';
import { paymentCreate, paymentGet, paymentList } from '../../services/commands/payment.js';
import type { ClientCommand } from '../../services/commands/run.js';
import { loadConfig } from '../../services/config.js';
import { type Servers, startServers } from '../../services/server.js';
import { type CliRun, runCli, runCliHere } from '../support/cli-child.js';

// The client commands against a real server (createApp + startServers on port 0, in this
// process): the command functions in process for the walk from an empty server to a confirmed
// payment and its balances, and the real `countersign` CLI as a child process where the
// behaviour is the process's (exit codes, one-line errors, --help touching nothing, help listing).

interface Server {
  app: App;
  servers: Servers;
  inbox: InboxNotifier;
  dataDir: string;
  logs: string[];
  /** The environment a user of this server has: its data directory (admin.key) and gRPC port. */
  env: Record<string, string>;
}

let server: Server;

test.before(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-cli-client-'));
  const logs: string[] = [];
  const inbox = new InboxNotifier();
  // No adminKey: the app writes <dataDir>/admin.key, which the commands then read, as with serve.
  const config = { ...loadConfig({}), dataDir, masterKey: randomBytes(32).toString('base64'), adminKey: undefined };
  const app = await createApp({
    config,
    memoryLedger: true,
    memoryDirectory: true,
    memoryStore: true,
    notifier: inbox,
    logger: pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) }),
  });
  const servers = await startServers(app, { host: '127.0.0.1', grpcPort: 0, connectPort: 0 });
  server = { app, servers, inbox, dataDir, logs, env: { COUNTERSIGN_DATA_DIR: dataDir, COUNTERSIGN_GRPC_PORT: String(servers.grpcPort) } };
});

test.after.always(async () => {
  await server?.servers.close();
  await server?.app.close();
  if (server !== undefined) rmSync(server.dataDir, { recursive: true, force: true });
});

/** A command run in process: its stdout lines. */
async function run(command: ClientCommand, args: string[], env: Record<string, string> = server.env): Promise<string[]> {
  const out: string[] = [];
  await command.run(args, { out: (line) => out.push(line), err: (line) => out.push(`stderr: ${line}`) }, env);
  return out;
}

/** The value of a `  label   value` row. */
function field(lines: readonly string[], label: string): string {
  const line = lines.find((l) => l.startsWith(`  ${label}  `));
  if (line === undefined) throw new Error(`no "${label}" row in:\n${lines.join('\n')}`);
  return line
    .slice(label.length + 2)
    .trim()
    .split(/\s+/)[0]!;
}

/** A merchant, enrolled with the command; its output parsed as a user copies from it. */
async function enrollMerchant() {
  const lines = await run(merchantEnroll, ['--name', 'Corner Bakery', '--currency', 'USD', '--fee-bps', '100']);
  return { lines, id: field(lines, 'merchant id'), account: field(lines, 'payee account USD'), key: field(lines, 'API key') };
}

let phones = 0;
async function enrollPayer(policy: string[] = []) {
  const phone = `+1415${String(process.pid % 1000).padStart(3, '0')}${String(++phones).padStart(4, '0')}`;
  const lines = await run(payerEnroll, ['--phone', phone, '--name', 'Alice', '--currency', 'USD', ...policy]);
  return {
    lines,
    phone,
    id: field(lines, 'payer id'),
    account: field(lines, 'prepaid account USD'),
    token: field(lines, 'payer token'),
    base32: field(lines, 'secret (base32)'),
    uri: field(lines, 'secret (otpauth URI)'),
  };
}

const paymentIdOf = (lines: readonly string[]) => /^payment ([0-9a-f]{32}): /.exec(lines[0] ?? '')![1]!;

test('from an empty server to a confirmed payment and exact balances, with the commands alone', async (t) => {
  const merchant = await enrollMerchant();
  t.is(merchant.lines[0], 'merchant enrolled: Corner Bakery');
  t.is(field(merchant.lines, 'fee'), '100');
  t.regex(merchant.key, /^\S{20,}$/);
  t.true(
    merchant.lines.includes(
      'The API key is shown this once (the server keeps only its hash): store it now. Payment commands take it as --key or COUNTERSIGN_API_KEY.',
    ),
  );

  const payer = await enrollPayer(['--one-factor-up-to', '50000', '--no-factor-below', '500']);
  t.is(payer.lines[0], `payer enrolled: Alice (${payer.phone})`);
  t.true(
    payer.lines.includes('  policy                no factor below USD 5.00 (500); SECOND_CODE up to USD 500.00 (50000); above: SECOND_CODE'),
    payer.lines.join('\n'),
  );
  t.true(payer.lines.includes('Secrets, shown this once (the server keeps the token as a hash and the secret encrypted, and never shows them again):'));
  t.true(payer.uri.startsWith('otpauth://ocra/countersign:'));
  t.not(payer.account, merchant.account);

  const funded = await run(fund, ['--account', payer.account, '--amount', '20000']);
  t.is(funded[0], `funded ${payer.account} with USD 200.00 (20000)`);
  t.is(funded[1], '  balance               USD 200.00 (20000)');
  // The printed idempotency key makes a retry harmless: the same deposit, not a second one.
  const fundKey = field(funded, 'idempotency key');
  const retried = await run(fund, ['--account', payer.account, '--amount', '20000', '--idempotency-key', fundKey]);
  t.is(retried[1], '  balance               USD 200.00 (20000)');

  const cake = ['--payer', payer.id, '--amount', '4200', '--currency', 'USD', '--description', 'Birthday cake', '--channel', 'app', '--key', merchant.key];
  const created = await run(paymentCreate, cake);
  const paymentId = paymentIdOf(created);
  t.is(created[0], `payment ${paymentId}: CHALLENGED (waiting for SECOND_CODE; 5 attempts left)`);
  t.is(created[1], '  amount                USD 42.00 (4200)');
  t.is(field(created, 'payee account'), merchant.account);
  const again = await run(paymentCreate, [...cake, '--idempotency-key', field(created, 'idempotency key')]);
  t.is(paymentIdOf(again), paymentId, 'the retry with the printed key is the same payment');

  // The payer's side: the token and the otpauth URI as enrollment printed them; the first code from the challenge.
  const confirmed = await run(payerConfirm, ['--payment', paymentId, '--token', payer.token, '--secret', payer.uri]);
  t.is(confirmed[0], `confirmed USD 42.00 (4200) to Corner Bakery (${merchant.account})`);
  t.is(confirmed[1], `payment ${paymentId}: SUCCEEDED`);
  t.true(confirmed.includes('  factors               required SECOND_CODE; satisfied SECOND_CODE'));

  const payerBalance = await run(balance, [payer.account]);
  t.deepEqual(payerBalance, [
    `account ${payer.account}: PAYER_PREPAID (code 1), USD`,
    '  balance               USD 158.00 (15800)',
    '  available             USD 158.00 (15800)   (the balance less pending reservations)',
    '  debits                posted 4200, pending 0',
    '  credits               posted 20000, pending 0',
  ]);
  const merchantBalance = await run(balance, ['--json', merchant.account]);
  const account = (JSON.parse(merchantBalance[0]!) as { account: Record<string, unknown> }).account;
  t.like(
    account,
    { id: merchant.account, kind: 'ACCOUNT_KIND_MERCHANT', balance: '4158', available: '4158', creditsPosted: '4200', debitsPosted: '42' },
    '42.00 less the 1 % fee',
  );

  const got = JSON.parse((await run(paymentGet, [paymentId, '--json', '--key', merchant.key]))[0]!) as { payment: Record<string, unknown> };
  t.like(got.payment, {
    id: paymentId,
    state: 'PAYMENT_STATE_SUCCEEDED',
    amount: '4200',
    currency: 'USD',
    payerId: payer.id,
    payeeAccountId: merchant.account,
  });

  const listed = await run(paymentList, ['--state', 'SUCCEEDED', '--key', merchant.key]);
  t.is(listed.length, 2, listed.join('\n'));
  t.true(listed[0]!.startsWith(`${paymentId}  SUCCEEDED   USD 42.00 (4200)        payer ${payer.id}  `), listed[0]);
  t.true(listed[0]!.endsWith('  Birthday cake'));
  t.is(listed[1], '1 payment');
  t.deepEqual(await run(paymentList, ['--state', 'challenged', '--key', merchant.key]), ['0 payments']);

  // Secrets are shown once, on the command's output, and never in the server's logs.
  const logText = server.logs.join('');
  for (const secret of [merchant.key, payer.token, payer.base32.replace(/=+$/, '')]) t.false(logText.includes(secret));
});

test('a first code sent to the phone: payer confirm asks for --first-code, derive and confirm agree with the server', async (t) => {
  const merchant = await enrollMerchant();
  const payer = await enrollPayer();
  await run(fund, ['--account', payer.account, '--amount', '5000']);
  const created = await run(paymentCreate, ['--payer-phone', payer.phone, '--amount', '1250', '--currency', 'USD', '--key', merchant.key]);
  const paymentId = paymentIdOf(created);
  t.is(created[0], `payment ${paymentId}: CHALLENGED (waiting for SECOND_CODE; 5 attempts left)`);
  t.is(field(created, 'channel'), 'MERCHANT');

  const asked = await t.throwsAsync(run(payerConfirm, ['--payment', paymentId, '--token', payer.token, '--secret', payer.base32]), { instanceOf: UsageError });
  t.regex(asked.message, /^needs --first-code 8DIGITS: it went by CONSOLE to \*+\d{4} /);

  const firstCode = server.inbox.firstCodeFor(paymentId)!;
  t.regex(firstCode, /^\d{8}$/);
  const expected = deriveSecondCode(base32Decode(payer.base32), { firstCode, amount: 1250n, currency: 'USD', payeeAccountId: merchant.account });
  const env = { ...server.env, COUNTERSIGN_PAYER_TOKEN: payer.token };
  t.deepEqual(await run(payerDerive, ['--payment', paymentId, '--first-code', firstCode, '--secret', payer.uri], env), [
    `${expected}    (OCRA-1:HOTP-SHA256-8:QA64)`,
  ]);
  t.deepEqual(
    await run(payerDerive, ['--secret', payer.uri, '--first-code', firstCode, '--amount', '1250', '--currency', 'USD', '--payee', merchant.account]),
    [`${expected}    (OCRA-1:HOTP-SHA256-8:QA64)`],
  );

  const confirmed = await run(payerConfirm, ['--payment', paymentId, '--first-code', firstCode, '--secret', payer.base32, '--json'], env);
  const response = JSON.parse(confirmed[0]!) as { idempotencyKey: string; payment: Record<string, unknown> };
  t.like(response.payment, { id: paymentId, state: 'PAYMENT_STATE_SUCCEEDED', amount: '1250' });
  t.regex(response.idempotencyKey, /^cli-confirm-/);
  t.true((await run(balance, [payer.account])).includes('  balance               USD 37.50 (3750)'));

  const done = await t.throwsAsync(run(payerConfirm, ['--payment', paymentId, '--first-code', firstCode, '--secret', payer.base32], env), {
    instanceOf: CommandFailure,
  });
  t.is(done.message, `payment ${paymentId} does not wait for a second code (pending: nothing)`);
});

test('payer derive and confirm refuse a secret below 160 bits, a foreign link and malformed fields, before any call', async (t) => {
  const short = base32Encode(randomBytes(10));
  const payee = 'ab'.repeat(16);
  const offline = ['--first-code', '12345678', '--amount', '100', '--currency', 'USD', '--payee', payee];
  const refused = async (command: ClientCommand, args: string[]) => (await t.throwsAsync(run(command, args, {}), { instanceOf: UsageError })).message;
  t.is(await refused(payerDerive, ['--secret', short, ...offline]), '--secret: the verification secret must be at least 160 bits');
  t.is(await refused(payerConfirm, ['--payment', payee, '--token', 't', '--secret', short]), '--secret: the verification secret must be at least 160 bits');
  t.is(
    await refused(payerDerive, ['--secret', `otpauth://totp/x?secret=${base32Encode(randomBytes(20))}`, ...offline]),
    '--secret: the link is not an OCRA (otpauth://ocra/...) enrollment',
  );
  const secret = base32Encode(randomBytes(20));
  t.is(
    await refused(payerDerive, ['--secret', secret, ...offline.slice(0, 2), '--amount', '0', ...offline.slice(4)]),
    '--amount must be 1..18446744073709551615 minor units, got "0"',
  );
  t.is(
    await refused(payerDerive, ['--secret', secret, '--first-code', '1234567', ...offline.slice(2)]),
    '--first-code is the 8 digits the payment showed, got "1234567"',
  );
  t.is(
    await refused(payerDerive, ['--secret', secret, ...offline.slice(0, 4), '--currency', 'usd', ...offline.slice(6)]),
    '--currency is a 3-letter upper-case ISO 4217 code (USD), got "usd"',
  );
  t.is(await refused(payerDerive, ['--secret', 'not base32!', ...offline]), '--secret: the secret is not base32');
  t.is(
    await refused(payerDerive, ['--secret', secret, '--payment', payee, '--amount', '100']),
    '--payment reads the amount, currency and payee: drop --amount',
  );
  // A 20-byte secret is the minimum, and accepted.
  const derived = await run(payerDerive, ['--secret', secret, ...offline], {});
  t.is(derived.length, 1);
  t.regex(derived[0]!, /^\d{8} {4}\(OCRA-1:HOTP-SHA256-8:QA64\)$/);
});

// ------------------------------------------------------------------ the CLI as a child process

/** The real CLI in a fresh working directory, with no COUNTERSIGN_* from this process, plus `env`. */
async function cli(t: ExecutionContext, args: readonly string[], env: Record<string, string>): Promise<CliRun & { cwd: string }> {
  const cwd = mkdtempSync(join(tmpdir(), 'cs-cli-client-cwd-'));
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  return { ...(await runCli(t, args, { cwd, env })), cwd };
}

/** The command line through runCli in this process, on captured output; `cwd`: a fresh directory the data directory is resolved in. */
async function inProcess(t: ExecutionContext, args: readonly string[], env: Record<string, string>): Promise<CliRun & { cwd: string }> {
  const cwd = mkdtempSync(join(tmpdir(), 'cs-cli-client-cwd-'));
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const dataDir = env.COUNTERSIGN_DATA_DIR === undefined ? undefined : resolve(cwd, env.COUNTERSIGN_DATA_DIR);
  return { ...(await runCliHere(args, { ...env, ...(dataDir === undefined ? {} : { COUNTERSIGN_DATA_DIR: dataDir }) })), cwd };
}

test('child: merchant enroll --json reads <data dir>/admin.key and prints one JSON object', async (t) => {
  const ran = await cli(t, ['merchant', 'enroll', '--name', 'Kiosk', '--currency', 'EUR', '--fee-bps', '250', '--json'], server.env);
  t.is(ran.code, 0, ran.stderr);
  t.is(ran.stderr, '');
  const lines = ran.stdout.trimEnd().split('\n');
  t.is(lines.length, 1);
  const enrolled = JSON.parse(lines[0]!) as {
    idempotencyKey: string;
    merchantId: string;
    apiKey: string;
    payeeAccountIds: Record<string, string>;
    feeBasisPoints: number;
  };
  t.regex(enrolled.merchantId, /^[0-9a-f]{32}$/);
  t.regex(enrolled.payeeAccountIds.EUR!, /^[0-9a-f]{32}$/);
  t.is(enrolled.feeBasisPoints, 250);
  t.regex(enrolled.idempotencyKey, /^cli-merchant-[0-9a-f]{24}$/);
  t.truthy(await server.app.resolvePrincipal(enrolled.apiKey), 'the printed API key is one the server accepts');
});

test('child: a key the server refuses is one line naming the gRPC code, exit 1', async (t) => {
  const ran = await cli(t, ['payment', 'list', '--key', 'cs_live_not-a-key'], server.env);
  t.is(ran.code, 1);
  t.is(ran.stdout, '');
  t.is(ran.stderr, 'countersign payment list: UNAUTHENTICATED: missing or invalid API key\n');
});

test('child: a wrong second code is PERMISSION_DENIED with the attempts left, exit 1', async (t) => {
  const merchant = await enrollMerchant();
  const payer = await enrollPayer();
  await run(fund, ['--account', payer.account, '--amount', '1000']);
  const paymentId = paymentIdOf(
    await run(paymentCreate, ['--payer', payer.id, '--amount', '700', '--currency', 'USD', '--channel', 'web', '--key', merchant.key]),
  );
  const otherSecret = base32Encode(randomBytes(32));
  const ran = await cli(t, ['payer', 'confirm', '--payment', paymentId, '--secret', otherSecret], { ...server.env, COUNTERSIGN_PAYER_TOKEN: payer.token });
  t.is(ran.code, 1);
  t.regex(ran.stderr, /^countersign payer confirm: PERMISSION_DENIED: .+ \(4 attempts left\)\n$/);
  t.true(
    (await run(balance, [payer.account])).includes('  available             USD 10.00 (1000)   (the balance less pending reservations)'),
    'nothing moved or held',
  );
});

test('child: no server at the address is one line naming the fix, exit 1', async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const ran = await cli(t, ['balance', 'ab'.repeat(16), '--server', `127.0.0.1:${port}`], server.env);
  t.is(ran.code, 1);
  t.is(
    ran.stderr,
    `countersign balance: UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:${port} (no countersign server at 127.0.0.1:${port}: start one with countersign serve, or give --server HOST:PORT or COUNTERSIGN_GRPC_PORT)\n`,
  );
});

test('child: without an operator key the command says where it looked, exit 1, and creates no key', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'cs-cli-client-nokey-'));
  t.teardown(() => rmSync(empty, { recursive: true, force: true }));
  const ran = await cli(t, ['fund', '--account', 'ab'.repeat(16), '--amount', '100'], {
    COUNTERSIGN_DATA_DIR: empty,
    COUNTERSIGN_GRPC_PORT: server.env.COUNTERSIGN_GRPC_PORT!,
  });
  t.is(ran.code, 1);
  t.is(
    ran.stderr,
    `countersign: no operator key: ${join(empty, 'admin.key')} does not exist; set COUNTERSIGN_DATA_DIR to the data directory serve uses, or COUNTERSIGN_ADMIN_KEY\n`,
  );
  t.false(existsSync(join(empty, 'admin.key')));
  t.deepEqual(readdirSync(empty), []);
});

const usageErrors: readonly (readonly [string[], string])[] = [
  [
    ['fund', '--account', 'ab'.repeat(16), '--amount', '12.50'],
    'countersign fund: --amount is in minor units, digits only (2500 for 25.00), got "12.50"; see countersign fund --help\n',
  ],
  [['payment', 'create', '--bogus'], 'countersign payment create: unknown option --bogus; see countersign payment create --help\n'],
  [
    ['payment', 'list', '--state', 'PAID'],
    'countersign payment list: --state: unknown state "PAID" (one of CREATED, CHALLENGED, APPROVED, SUCCEEDED, DECLINED, EXPIRED, CANCELLED); see countersign payment list --help\n',
  ],
  [['balance'], 'countersign balance: needs ACCOUNT_ID; see countersign balance --help\n'],
  [
    ['payment', 'list', '--key', 'cs_live_x\nThe API key is shown this once'],
    "countersign payment list: the merchant's API key (--key or COUNTERSIGN_API_KEY) is not one word of printable characters (a copied line too many?); see countersign payment list --help\n",
  ],
  [['payment', 'refund'], 'countersign payment: unknown subcommand "refund" (one of create, get, list); see countersign payment --help\n'],
  [
    [
      'payer',
      'derive',
      '--secret',
      base32Encode(randomBytes(10)),
      '--first-code',
      '12345678',
      '--amount',
      '100',
      '--currency',
      'USD',
      '--payee',
      'ab'.repeat(16),
    ],
    'countersign payer derive: --secret: the verification secret must be at least 160 bits; see countersign payer derive --help\n',
  ],
];

// The first case as the real process, the others through runCli in this process (the code the process runs).
for (const [i, [args, line]] of usageErrors.entries()) {
  test(`${i === 0 ? 'child: ' : ''}countersign ${args.slice(0, 3).join(' ')} … exits 2 with one line`, async (t) => {
    const ran = i === 0 ? await cli(t, args, server.env) : await inProcess(t, args, server.env);
    t.is(ran.code, 2, ran.stderr);
    t.is(ran.stderr, line);
    t.is(ran.stdout, '');
  });
}

const helps: readonly (readonly [string[], string])[] = [
  [['merchant', 'enroll', '--help'], 'usage: countersign merchant enroll --name N --currency USD'],
  [['payer', 'enroll', '-h'], 'usage: countersign payer enroll --phone +1... --name N --currency USD'],
  [['fund', '--help'], 'usage: countersign fund --account ID --amount MINOR'],
  [['payment', 'create', '--help', '--bogus'], 'usage: countersign payment create (--payer ID | --payer-phone +1...) --amount MINOR'],
  [['payment', 'get', '--help'], 'usage: countersign payment get PAYMENT_ID'],
  [['payment', 'list', '--help'], 'usage: countersign payment list [--state S]'],
  [['balance', '--help'], 'usage: countersign balance ACCOUNT_ID'],
  [['payer', 'confirm', '--help'], 'usage: countersign payer confirm --payment ID --secret BASE32|otpauth://...'],
  [['payment', '--help'], 'usage: countersign payment <create|get|list> [options]'],
];

for (const [i, [args, start]] of helps.entries()) {
  test(`${i === 0 ? 'child: ' : ''}countersign ${args.join(' ')} prints its usage, exits 0, calls nothing and writes nothing`, async (t) => {
    // No server and no data directory: help needs neither.
    const ran =
      i === 0
        ? await cli(t, args, { COUNTERSIGN_DATA_DIR: 'data', COUNTERSIGN_GRPC_PORT: '1' })
        : await inProcess(t, args, { COUNTERSIGN_DATA_DIR: 'data', COUNTERSIGN_GRPC_PORT: '1' });
    t.is(ran.code, 0, ran.stderr);
    t.true(ran.stdout.startsWith(start), ran.stdout);
    t.true(ran.stdout.includes('\n  -h, --help            this text\n'));
    t.is(ran.stderr, '');
    t.deepEqual(readdirSync(ran.cwd), []);
  });
}

test('child: countersign help lists every client command', async (t) => {
  const ran = await cli(t, ['help'], {});
  t.is(ran.code, 0);
  const listed = ran.stdout
    .split('\n')
    .filter((l) => /^ {2}[a-z]/.test(l))
    .map((l) => l.trim());
  for (const name of ['merchant enroll', 'payer enroll', 'fund', 'payment create', 'payer confirm', 'payment get', 'payment list', 'balance', 'payer derive']) {
    t.true(
      listed.some((l) => l.startsWith(`${name} `)),
      `help lists ${name}`,
    );
  }
  t.true(ran.stdout.includes('\n  COUNTERSIGN_API_KEY '));
  t.true(ran.stdout.includes('\n  COUNTERSIGN_PAYER_TOKEN '));
});
