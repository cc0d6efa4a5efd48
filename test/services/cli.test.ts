import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { lockDataDir as lockStoreDir } from '../../authz/store/journal/lock.js';
import { lockDataDir as lockLedgerDir } from '../../ledger/embedded/journal.js';
import { type CliEntry, cliRunMsMax, runCli as runChild, runCliHere, startCli } from '../support/cli-child.js';

// The real `countersign` command line as a child process, in a fresh working directory with
// COUNTERSIGN_DATA_DIR under it: exit codes, exact lines, and what it leaves on disk.

const repo = fileURLToPath(new URL('../../', import.meta.url));
const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version;
/** Longest a child may take to start, answer and exit, milliseconds. */
const runMsMax = cliRunMsMax;

interface Place {
  cwd: string;
  dataDir: string;
}

/** A fresh working directory; the data directory inside it is not created. */
function place(t: ExecutionContext): Place {
  const cwd = mkdtempSync(join(tmpdir(), 'cs-cli-'));
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  return { cwd, dataDir: join(cwd, 'data') };
}

/** Everything under `dir`, relative to it. */
function filesIn(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((p) => relative(dir, join(dir, p)))
    .sort();
}

/** The child's settings: its data directory in `at`, quiet logs, plus `env`. */
const settings = (at: Place, env: Record<string, string>) => ({ COUNTERSIGN_DATA_DIR: at.dataDir, COUNTERSIGN_LOG_LEVEL: 'warn', ...env });

const start = (t: ExecutionContext, entry: CliEntry, args: readonly string[], at: Place, env: Record<string, string> = {}) =>
  startCli(t, args, { cwd: at.cwd, env: settings(at, env), entry });
const run = (t: ExecutionContext, entry: CliEntry, args: readonly string[], at: Place, env: Record<string, string> = {}) =>
  runChild(t, args, { cwd: at.cwd, env: settings(at, env), entry });

/** A port this test holds open, so the child finds it busy. */
async function busyPort(t: ExecutionContext): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

for (const entry of ['cli.ts', 'bin'] as const) {
  test(`${entry}: --version and version print the package version`, async (t) => {
    const at = place(t);
    for (const flag of ['--version', 'version']) {
      const ran = await run(t, entry, [flag], at);
      t.is(ran.code, 0, ran.stderr);
      t.is(ran.stdout, `countersign ${version}\n`);
      t.is(ran.stderr, '');
    }
    t.deepEqual(filesIn(at.cwd), []);
  });
}

test('bin: an unknown command exits 2 with one line', async (t) => {
  const at = place(t);
  const ran = await run(t, 'bin', ['frobnicate'], at);
  t.is(ran.code, 2);
  t.is(ran.stderr, 'countersign: unknown command "frobnicate"; see countersign help\n');
});

const helpFirstLines: readonly (readonly [string[], string])[] = [
  [['serve', '--help'], 'usage: countersign serve [--with-bridge] [--workers N]'],
  [['serve', '--with-bridge', '-h'], 'usage: countersign serve [--with-bridge] [--workers N]'],
  [['telco-bridge', '--help'], 'usage: countersign telco-bridge'],
  [['demo', '-h'], 'usage: countersign demo'],
  [['payer', 'derive', '--help'], 'usage: countersign payer derive --secret BASE32 --first-code 8DIGITS --amount MINOR --currency USD --payee HEX32'],
  [['payer', '--help'], 'usage: countersign payer <enroll|confirm|derive|rotate-token|revoke-token> [options]'],
  [['reconcile', '--help'], 'usage: countersign reconcile'],
  [['ledger-demo', '--help'], 'usage: countersign ledger-demo [--memory]'],
  [
    ['authorizer-velocity', '--help'],
    'usage: countersign authorizer-velocity [--host 127.0.0.1] [--port N (0 = free)] [--max-per-hour N (5)] [--factor SECOND_CODE]',
  ],
  [['bank-frontend', '-h'], 'usage: countersign bank-frontend [--host 127.0.0.1] [--port N (0 = free)] [--cards FILE.json] [--key-file FILE]'],
];

// The first case as the real process, the others through runCli in this process (the same code
// the process runs, without a child's start of ~2 s of CPU each).
for (const [i, [args, firstLine]] of helpFirstLines.entries()) {
  test(`countersign ${args.join(' ')} prints its usage, exits 0 and touches nothing${i === 0 ? ' (child process)' : ''}`, async (t) => {
    const at = place(t);
    const ran = i === 0 ? await run(t, 'cli.ts', args, at) : await runCliHere(args, settings(at, {}));
    t.is(ran.code, 0, ran.stderr);
    t.is(ran.stdout.split('\n')[0], firstLine);
    t.true(ran.stdout.includes('\n  -h, --help            this text\n'), ran.stdout);
    t.is(ran.stderr, '');
    t.deepEqual(filesIn(at.cwd), [], 'no data directory, no keys, nothing in the working directory');
  });
}

const usageErrors: readonly (readonly [string[], string])[] = [
  [['serve', '--bogus'], 'countersign serve: unknown option --bogus; see countersign serve --help'],
  [['serve', '--workers'], 'countersign serve: --workers needs a value; see countersign serve --help'],
  [['serve', '--workers', 'lots'], 'countersign serve: --workers must be 1 to 64, got "lots"; see countersign serve --help'],
  [['serve', '--with-bridge=yes'], 'countersign serve: --with-bridge takes no value; see countersign serve --help'],
  [['serve', 'now'], 'countersign serve: unexpected argument "now"; see countersign serve --help'],
  [['reconcile', '--dry-run'], 'countersign reconcile: unknown option --dry-run; see countersign reconcile --help'],
  [['demo', 'fast'], 'countersign demo: unexpected argument "fast"; see countersign demo --help'],
  [['telco-bridge', '-x'], 'countersign telco-bridge: unknown option -x; see countersign telco-bridge --help'],
  [['ledger-demo', '--memory', '--memory'], 'countersign ledger-demo: --memory given twice; see countersign ledger-demo --help'],
  [['payer'], 'countersign payer: needs a subcommand: enroll, confirm, derive, rotate-token, revoke-token; see countersign payer --help'],
  [
    ['payer', 'derive', '--secret', 'JBSWY3DP'],
    'countersign payer derive: needs --first-code, --amount, --currency, --payee; see countersign payer derive --help',
  ],
  [
    ['authorizer-velocity', '--max-per-hour', '0'],
    'countersign authorizer-velocity: --max-per-hour must be an integer 1..10000, got "0"; see countersign authorizer-velocity --help',
  ],
  [['authorizer-velocity', '--factor', 'PSYCHIC'], 'countersign authorizer-velocity: --factor: unknown factor "PSYCHIC" (one of '],
  [['bank-frontend', '--port', '70000'], 'countersign bank-frontend: --port must be 0..65535, got "70000"; see countersign bank-frontend --help'],
  [['bank-frontend', '--cards'], 'countersign bank-frontend: --cards needs a value; see countersign bank-frontend --help'],
];

for (const [i, [args, line]] of usageErrors.entries()) {
  test(`countersign ${args.join(' ')} exits 2 with one line${i === 0 ? ' (child process)' : ''}`, async (t) => {
    const at = place(t);
    const ran = i === 0 ? await run(t, 'cli.ts', args, at) : await runCliHere(args, settings(at, {}));
    t.is(ran.code, 2, ran.stderr);
    t.true(ran.stderr.startsWith(line), ran.stderr);
    t.is(ran.stderr.split('\n').length, 2, `one line, no stack: ${ran.stderr}`);
    t.deepEqual(filesIn(at.cwd), []);
  });
}

/** `serve` with every port free (0) except the overrides. */
const servePorts = { COUNTERSIGN_GRPC_PORT: '0', COUNTERSIGN_CONNECT_PORT: '0', COUNTERSIGN_WEB_PORT: '0' };

for (const [variable, label] of [
  ['COUNTERSIGN_GRPC_PORT', 'gRPC'],
  ['COUNTERSIGN_CONNECT_PORT', 'Connect/gRPC-Web'],
] as const) {
  test(`serve on a busy ${label} port says so in one line naming ${variable}, exit 1`, async (t) => {
    const port = await busyPort(t);
    const at = place(t);
    const ran = await run(t, 'cli.ts', ['serve'], at, { ...servePorts, [variable]: String(port) });
    t.is(ran.code, 1, ran.stdout + ran.stderr);
    t.is(ran.stderr, `countersign: ${label} port 127.0.0.1:${port} is in use by another process: set ${variable} to a free port (0 picks one)\n`);
  });
}

test('authorizer-velocity on a busy --port says so in one line, exit 1', async (t) => {
  const port = await busyPort(t);
  const at = place(t);
  const ran = await run(t, 'cli.ts', ['authorizer-velocity', '--port', String(port)], at);
  t.is(ran.code, 1, ran.stdout + ran.stderr);
  t.is(ran.stderr, `countersign: port ${port} is in use by another process: choose another with --port (0 picks a free one)\n`);
});

test('reconcile on a ledger another process holds names the directory and COUNTERSIGN_DATA_DIR, exit 1', async (t) => {
  const at = place(t);
  const release = lockLedgerDir(join(at.dataDir, 'ledger')); // this test's process: alive, so the lock is live
  t.teardown(release);
  const ran = await run(t, 'cli.ts', ['reconcile'], at);
  t.is(ran.code, 1, ran.stdout + ran.stderr);
  t.is(
    ran.stderr,
    `countersign: data directory ${join(at.dataDir, 'ledger')} is in use by process ${process.pid}: stop that process, or set COUNTERSIGN_DATA_DIR to another directory (now ${at.dataDir})\n`,
  );
});

test('reconcile on a payment store another process holds names the directory and COUNTERSIGN_DATA_DIR, exit 1', async (t) => {
  const at = place(t);
  mkdirSync(join(at.dataDir, 'payments'), { recursive: true });
  const release = lockStoreDir(join(at.dataDir, 'payments'));
  t.teardown(release);
  const ran = await run(t, 'cli.ts', ['reconcile'], at);
  t.is(ran.code, 1, ran.stdout + ran.stderr);
  t.is(
    ran.stderr,
    `countersign: payment store data directory ${join(at.dataDir, 'payments')} is in use by process ${process.pid} (its LOCK file): stop that process, or set COUNTERSIGN_DATA_DIR to another directory (now ${at.dataDir})\n`,
  );
});

// Serial: in the full suite it once ended by SIGTERM instead of exit 0 (not reproduced alone, 6 of 6 in parallel under
// load); run apart from this file's other children until that is understood. The assertion is unchanged.
test.serial('bin: serve runs under the launcher and SIGTERM reaches it: it stops cleanly with exit 0 and releases the data directory', async (t) => {
  const at = place(t);
  const child = await start(t, 'bin', ['serve'], at, servePorts);
  let output = '';
  const exited = new Promise<number | string | null>((resolve) => child.once('close', (code, signal) => resolve(code ?? signal)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within ${runMsMax} ms: ${output}`)), runMsMax);
    const take = (d: Buffer) => {
      output += d.toString();
      if (/^countersign serving\n/m.test(output) && output.includes('Ctrl-C stops.')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    void exited.then((code) => (clearTimeout(timer), reject(new Error(`exited ${code} before its banner: ${output}`))));
  });
  t.true(filesIn(at.dataDir).includes('ledger/LOCK'), 'serving, it holds the ledger');
  t.true(output.includes('\n  young generation         64 MB semi-spaces (--max-semi-space-size)\n'), `the launcher's V8 flags reach serve: ${output}`);
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([exited, new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), runMsMax)))]).finally(() =>
    clearTimeout(timer),
  );
  t.is(code, 0, output);
  t.false(filesIn(at.dataDir).includes('ledger/LOCK'), 'stopped, it released the ledger');
});
