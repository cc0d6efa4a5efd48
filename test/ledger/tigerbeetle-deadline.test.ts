import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { account, transfer } from '../../ledger/model.js';
import { LedgerRequestError, LedgerUnavailableError } from '../../ledger/port.js';
import { TigerBeetleLedger } from '../../ledger/tigerbeetle.js';

// No TigerBeetle runs here: port 1 on loopback refuses every connection, so the client retries
// forever and only our deadline can answer.
const unreachable = { clusterId: 0n, addresses: ['127.0.0.1:1'], requestTimeoutMs: 500 };

const oneTransfer = transfer({ id: 1n, debit_account_id: 1n, credit_account_id: 2n, amount: 1n, ledger: 1, code: 1 });

test('connect to an unreachable cluster returns a ledger without waiting for it', async (t) => {
  const ledger = await TigerBeetleLedger.connect(unreachable);
  t.true(ledger instanceof TigerBeetleLedger);
  await ledger.close();
});

test('a request the cluster never answers rejects with LedgerUnavailableError at the deadline', async (t) => {
  const ledger = await TigerBeetleLedger.connect(unreachable);
  const error = await t.throwsAsync(ledger.createTransfers([oneTransfer]), { instanceOf: LedgerUnavailableError });
  t.is(error?.name, 'LedgerUnavailableError');
  t.regex(error?.message ?? '', /did not answer create_transfers .* within 500 ms/);
  t.regex(error?.message ?? '', /may or may not have been applied/);
  t.regex(error?.message ?? '', /retrying with the same ids is safe/);
  await ledger.close();
});

test('a call split into requests stops at the first request that times out', async (t) => {
  const ledger = await TigerBeetleLedger.connect(unreachable);
  const transfers = Array.from({ length: 8190 }, (_, i) => ({ ...oneTransfer, id: BigInt(i + 1) }));
  const error = await t.throwsAsync(ledger.createTransfers(transfers), { instanceOf: LedgerUnavailableError });
  t.regex(error?.message ?? '', /events 0\.\.8188 \(of 8190\)/);
  await ledger.close();
});

test('close waits for calls in flight, then every call rejects with "ledger is closed"', async (t) => {
  const ledger = await TigerBeetleLedger.connect(unreachable);
  const inFlight = ledger.createAccounts([account({ id: 1n, ledger: 1, code: 1 })]);
  const closed = ledger.close();
  await t.throwsAsync(inFlight, { instanceOf: LedgerUnavailableError, message: /did not answer create_accounts/ });
  await closed;
  await t.throwsAsync(ledger.lookupAccounts([1n]), { instanceOf: LedgerUnavailableError, message: 'ledger is closed' });
  await t.throwsAsync(ledger.createTransfers([oneTransfer]), {
    instanceOf: LedgerUnavailableError,
    message: 'ledger is closed',
  });
  await ledger.close(); // Idempotent.
});

test('an account without `reserved` is refused by the client as a LedgerRequestError', async (t) => {
  const ledger = await TigerBeetleLedger.connect(unreachable);
  const { reserved: _, ...withoutReserved } = account({ id: 1n, ledger: 1, code: 1 });
  await t.throwsAsync(ledger.createAccounts([withoutReserved as never]), {
    instanceOf: LedgerRequestError,
    message: /reserved must be a number/,
  });
  await ledger.close();
});

test('after a timed-out request and close, the process exits by itself (no handle left)', async (t) => {
  const moduleUrl = new URL('../../ledger/tigerbeetle.ts', import.meta.url).href;
  const script = `
    const { TigerBeetleLedger } = await import(${JSON.stringify(moduleUrl)});
    const ledger = await TigerBeetleLedger.connect({ clusterId: 0n, addresses: ['127.0.0.1:1'], requestTimeoutMs: 500 });
    const error = await ledger.lookupTransfers([1n]).then(() => undefined, (e) => e);
    await ledger.close();
    console.log('settled:' + error?.name);
  `;
  const exitWaitMs = 30_000; // A bound for a hung process, not a timing assertion.
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '--eval', script], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: exitWaitMs,
  });
  let stdout = '';
  child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (exitCode, exitSignal) => resolve([exitCode, exitSignal])),
  );
  t.is(signal, null, 'the process had to be killed: a handle kept it alive');
  t.is(code, 0);
  t.is(stdout.trim(), 'settled:LedgerUnavailableError');
});
