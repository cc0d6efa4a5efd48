import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { ConfigError, environment, loadConfig } from '../../services/config.js';
import { telcoSettings } from '../../services/telco.js';
import { type CliRun, runCli, runCliHere } from '../support/cli-child.js';

test('COUNTERSIGN_LEDGER_HOLD_TIMEOUT: on, off, unset (the engine decides); anything else is refused naming the values', (t) => {
  t.is(loadConfig({}).ledgerHoldTimeout, undefined);
  t.is(loadConfig({ COUNTERSIGN_LEDGER_HOLD_TIMEOUT: '' }).ledgerHoldTimeout, undefined);
  t.is(loadConfig({ COUNTERSIGN_LEDGER_HOLD_TIMEOUT: 'on' }).ledgerHoldTimeout, true);
  t.is(loadConfig({ COUNTERSIGN_LEDGER_HOLD_TIMEOUT: 'off' }).ledgerHoldTimeout, false);
  for (const bad of ['yes', 'ON', '1', 'true']) {
    const error = t.throws(() => loadConfig({ COUNTERSIGN_LEDGER_HOLD_TIMEOUT: bad }), { instanceOf: ConfigError });
    t.is(error?.message, `COUNTERSIGN_LEDGER_HOLD_TIMEOUT must be on or off, got "${bad}"`);
  }
});

// ---- One loader (services/config.ts): every variable read there and only there, listed by `countersign help`,
// documented in README, and each ordinary mistake refused in one line naming the variable.

const repo = fileURLToPath(new URL('../../', import.meta.url));
const tableNames = environment.map(([name]) => name as string);

/** Source files of the code that runs (tests, generated code and scripts aside). */
function sourceFiles(): string[] {
  const files: string[] = [];
  for (const dir of ['authz', 'ledger', 'services', 'telco-bridge']) {
    for (const file of readdirSync(join(repo, dir), { recursive: true, encoding: 'utf8' })) {
      if (file.endsWith('.ts') || file.endsWith('.mts')) files.push(join(dir, file));
    }
  }
  return files.sort();
}

/** `env.COUNTERSIGN_X`, `process.env.COUNTERSIGN_X`, `env['COUNTERSIGN_X']`: a variable read outside the loader. */
const directRead = /\benv\.COUNTERSIGN_|process\.env\.COUNTERSIGN|\benv\[\s*['"`]COUNTERSIGN_/;

test('no source but services/config.ts reads a COUNTERSIGN_* variable, and config.ts reads them in one place', (t) => {
  t.true(directRead.test('const port = process.env.COUNTERSIGN_GRPC_PORT;') && directRead.test("env['COUNTERSIGN_SMPP']"), 'the pattern catches a read');
  const files = sourceFiles();
  t.true(files.includes(join('services', 'telco.ts')) && files.includes(join('services', 'cli.ts')) && files.length > 50, `scanned ${files.length} files`);
  const offenders = files.filter((f) => f !== join('services', 'config.ts') && directRead.test(readFileSync(join(repo, f), 'utf8')));
  t.deepEqual(offenders, []);
  const loader = readFileSync(join(repo, 'services/config.ts'), 'utf8');
  t.false(directRead.test(loader), 'config.ts goes through read() too');
  t.is(loader.match(/\benv\[/g)?.length, 1, 'one indexing of the environment: read(env, name), typed on the table');
});

test('services/config.ts and services/authorizers/settings.ts do not import each other', (t) => {
  const settings = readFileSync(join(repo, 'services/authorizers/settings.ts'), 'utf8');
  t.false(/from '\.\.\/config\.js'/.test(settings));
  t.true(/from '\.\/authorizers\/settings\.js'/.test(readFileSync(join(repo, 'services/config.ts'), 'utf8')));
});

/** The real CLI in a fresh directory, with no COUNTERSIGN_* from this process, plus `env`. */
async function cli(t: ExecutionContext, args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  const cwd = mkdtempSync(join(tmpdir(), 'cs-config-'));
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  return runCli(t, args, { cwd, env: { COUNTERSIGN_DATA_DIR: join(cwd, 'data'), COUNTERSIGN_LOG_LEVEL: 'warn', ...env } });
}

test('countersign help lists exactly the table, each with its default, and README documents exactly the same names', async (t) => {
  const ran = await cli(t, ['help']);
  t.is(ran.code, 0, ran.stderr);
  const lines = ran.stdout.split('\n').filter((l) => /^ {2}COUNTERSIGN_[A-Z0-9_]+ +\S/.test(l));
  const listed = lines.map((l) => l.trim().split(/\s+/)[0]!);
  t.deepEqual(listed, tableNames, 'help prints the table, in its order');
  t.is(new Set(tableNames).size, tableNames.length, 'no name twice');
  for (const [name, what] of environment) {
    t.true(
      lines.some((l) => l.startsWith(`  ${name} `) && l.endsWith(what)),
      `${name}: its help line`,
    );
    t.regex(what, /\(default|\(required/, `${name}'s line says its default`);
  }
  const readme = [...new Set(readFileSync(join(repo, 'README.md'), 'utf8').match(/COUNTERSIGN_[A-Z_]+/g) ?? [])].sort();
  t.true(readme.length >= 30, `README names ${readme.length} variables`);
  t.deepEqual(
    readme.filter((n) => !listed.includes(n)),
    [],
    'every variable README names is in countersign help',
  );
  t.deepEqual(
    tableNames.filter((n) => !readme.includes(n)),
    [],
    'README documents every variable of the table',
  );
});

const telcoEnv = {
  COUNTERSIGN_TELCO_KEY: 'k-telco-test',
  COUNTERSIGN_AUTHZ_ADDRESS: '127.0.0.1:1',
  COUNTERSIGN_TELCO_PORT: '0',
  COUNTERSIGN_WEBHOOK_PORT: '0',
};
const smppShape =
  'COUNTERSIGN_SMPP must look like smpp://SYSTEM_ID:PASSWORD@HOST:PORT?source=SENDER (window=N, rate=N optional; percent-encode special characters)';
const voiceShape = 'COUNTERSIGN_VOICE must look like https://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com?from=+15550001000';

/**
 * [what is set, the one line countersign prints, whether a real `countersign telco-bridge` runs it too (a few of each
 * kind: each child costs seconds of tsx start-up); all of them are checked in process]. The password ("s3cret") is never echoed.
 */
const mistakes: readonly (readonly [Record<string, string>, string, 'cli'?])[] = [
  [{ COUNTERSIGN_TELCO_PORT: 'abc' }, 'COUNTERSIGN_TELCO_PORT must be a port number 0..65535, got "abc"'],
  [{ COUNTERSIGN_TELCO_PORT: '70000' }, 'COUNTERSIGN_TELCO_PORT must be a port number 0..65535, got "70000"', 'cli'],
  [{ COUNTERSIGN_WEBHOOK_PORT: '-1' }, 'COUNTERSIGN_WEBHOOK_PORT must be a port number 0..65535, got "-1"', 'cli'],
  [{ COUNTERSIGN_WEBHOOK_PORT: '80.5' }, 'COUNTERSIGN_WEBHOOK_PORT must be a port number 0..65535, got "80.5"'],
  [{ COUNTERSIGN_SMPP: 'smpp://id:s3cret@smsc.example:99999' }, smppShape, 'cli'],
  [{ COUNTERSIGN_SMPP: 'smsc.example:2775 s3cret' }, smppShape],
  [{ COUNTERSIGN_SMPP: 'https://id:s3cret@smsc.example:2775' }, smppShape],
  [{ COUNTERSIGN_SMPP: 'smpp://id:s3cret%zz@smsc.example' }, smppShape],
  [{ COUNTERSIGN_SMPP: 'smpp://id:s3cret@smsc.example?window=abc' }, 'COUNTERSIGN_SMPP ?window= must be a positive integer, got "abc"', 'cli'],
  [{ COUNTERSIGN_SMPP: 'smpp://id:s3cret@smsc.example?rate=0' }, 'COUNTERSIGN_SMPP ?rate= must be a positive integer, got "0"'],
  [{ COUNTERSIGN_VOICE: 'https://AC1:s3cret@api.twilio.com' }, voiceShape, 'cli'],
  [{ COUNTERSIGN_VOICE: 'https://AC1:s3cret@[api.twilio.com?from=+15550001000' }, voiceShape, 'cli'],
  [{ COUNTERSIGN_VOICE: 'api.twilio.com?from=+15550001000' }, voiceShape],
  [
    { COUNTERSIGN_PUBLIC_WEBHOOK_URL: 'hooks.example.com' },
    'COUNTERSIGN_PUBLIC_WEBHOOK_URL must be an http:// or https:// URL the voice provider reaches, e.g. https://hooks.example.com, got "hooks.example.com"',
  ],
  [{ COUNTERSIGN_AUTHZ_ADDRESS: '127.0.0.1' }, `COUNTERSIGN_AUTHZ_ADDRESS must be authz's gRPC host:port (e.g. 127.0.0.1:50051), got "127.0.0.1"`],
  [{ COUNTERSIGN_TELCO_KEY: '' }, 'the telco bridge needs COUNTERSIGN_TELCO_KEY (shared with authz): set it in both', 'cli'],
  [{ COUNTERSIGN_LOG_LEVEL: 'verbose' }, 'COUNTERSIGN_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"'],
];

// The first case as the real process, the others through runCli in this process (the code the process runs).
for (const [i, [set, line]] of mistakes.filter(([, , where]) => where === 'cli').entries()) {
  test(`countersign telco-bridge with ${JSON.stringify(set)}: exit 1 and one line naming the variable${i === 0 ? ' (child process)' : ''}`, async (t) => {
    const ran = i === 0 ? await cli(t, ['telco-bridge'], { ...telcoEnv, ...set }) : await runCliHere(['telco-bridge'], { ...telcoEnv, ...set });
    t.is(ran.code, 1, ran.stdout + ran.stderr);
    t.is(ran.stderr, `countersign: ${line}\n`);
    t.is(ran.stdout, '');
    t.false(ran.stderr.includes('s3cret'), 'no password in the message');
  });
}

test('a bad bridge setting stops any command, not only the bridge (one loader validates everything)', async (t) => {
  const ran = await cli(t, ['reconcile'], { COUNTERSIGN_TELCO_PORT: '65536' });
  t.is(ran.code, 1, ran.stdout + ran.stderr);
  t.is(ran.stderr, 'countersign: COUNTERSIGN_TELCO_PORT must be a port number 0..65535, got "65536"\n');
});

test('bridge settings: defaults, and every part of the SMPP and voice URLs', (t) => {
  const defaults = loadConfig({});
  t.deepEqual(defaults.telco, { grpcPort: 50061, webhookPort: 8081, publicWebhookBaseUrl: undefined, sms: { kind: 'console' }, voice: { kind: 'console' } });
  t.is(defaults.authzAddress, undefined);
  t.deepEqual(
    loadConfig({ COUNTERSIGN_TELCO_PORT: '', COUNTERSIGN_WEBHOOK_PORT: '', COUNTERSIGN_SMPP: '', COUNTERSIGN_VOICE: '' }).telco,
    defaults.telco,
    'empty reads as unset',
  );
  const config = loadConfig({
    COUNTERSIGN_TELCO_PORT: '0',
    COUNTERSIGN_WEBHOOK_PORT: '65535',
    COUNTERSIGN_PUBLIC_WEBHOOK_URL: 'https://hooks.example.com/base',
    COUNTERSIGN_SMPP: 'smpp://sys%40id:p%3Ass@[::1]:2776?source=+15550009999&window=4&rate=7',
    COUNTERSIGN_VOICE: 'https://AC123:t%2Fok@api.twilio.com?from=+15550001000',
    COUNTERSIGN_AUTHZ_ADDRESS: 'authz.internal:50051',
  });
  t.deepEqual(config.telco, {
    grpcPort: 0,
    webhookPort: 65535,
    publicWebhookBaseUrl: 'https://hooks.example.com/base',
    sms: { kind: 'smpp', host: '::1', port: 2776, systemId: 'sys@id', password: 'p:ss', sourceAddr: '+15550009999', windowMax: 4, ratePerSecondMax: 7 },
    voice: { kind: 'twilio', baseUrl: 'https://api.twilio.com', accountSid: 'AC123', authToken: 't/ok', from: '+15550001000' },
  });
  t.is(config.authzAddress, 'authz.internal:50051');
  const plain = loadConfig({ COUNTERSIGN_SMPP: 'smpp://id:pw@smsc.example' }).telco.sms;
  t.deepEqual(plain, {
    kind: 'smpp',
    host: 'smsc.example',
    port: 2775,
    systemId: 'id',
    password: 'pw',
    sourceAddr: 'countersign',
    windowMax: 10,
    ratePerSecondMax: 50,
  });
});

test('the same mistakes in process: a ConfigError with the same line, never a TypeError', (t) => {
  for (const [set, line] of mistakes) {
    if (set.COUNTERSIGN_TELCO_KEY !== undefined) continue; // the key is the bridge's rule (telcoSettings), below
    const error = t.throws(() => loadConfig({ ...telcoEnv, ...set }), { instanceOf: ConfigError }, JSON.stringify(set));
    t.is(error?.message, line);
  }
});

test('the bridge needs its key; with it, its settings are the configuration', (t) => {
  const config = loadConfig({ COUNTERSIGN_HOST: '0.0.0.0', COUNTERSIGN_TELCO_PORT: '50999' });
  t.throws(() => telcoSettings(config), {
    instanceOf: ConfigError,
    message: 'the telco bridge needs COUNTERSIGN_TELCO_KEY (shared with authz): set it in both',
  });
  t.deepEqual(telcoSettings({ ...config, telcoKey: 'k' }), {
    host: '0.0.0.0',
    grpcPort: 50999,
    webhookPort: 8081,
    publicWebhookBaseUrl: undefined,
    sms: { kind: 'console' },
    voice: { kind: 'console' },
    key: 'k',
  });
  t.throws(() => loadConfig({ COUNTERSIGN_TELCO_BRIDGE: '127.0.0.1:50061' }), {
    instanceOf: ConfigError,
    message: /COUNTERSIGN_TELCO_BRIDGE needs COUNTERSIGN_TELCO_KEY/,
  });
});

test('client credentials and the log level come from the loader', (t) => {
  const config = loadConfig({ COUNTERSIGN_API_KEY: 'cs_live_x', COUNTERSIGN_PAYER_TOKEN: 'cs_payer_y', COUNTERSIGN_LOG_LEVEL: 'debug' });
  t.is(config.apiKey, 'cs_live_x');
  t.is(config.payerToken, 'cs_payer_y');
  t.is(config.logLevel, 'debug');
  const unset = loadConfig({ COUNTERSIGN_API_KEY: '', COUNTERSIGN_PAYER_TOKEN: '' });
  t.deepEqual([unset.apiKey, unset.payerToken, unset.logLevel], [undefined, undefined, 'info']);
});
