import { readdir, readFile } from 'node:fs/promises';
import { Code, ConnectError } from '@connectrpc/connect';
import test from 'ava';
import { DomainError, type ErrorKind, invalidArgument } from '../../../authz/errors.js';
import { SubscriberOverflowError } from '../../../authz/events.js';
import { StoreUnavailableError } from '../../../authz/ports.js';
import { StoreFullError } from '../../../authz/store/errors.js';
import { LedgerCapacityError, LedgerUnavailableError } from '../../../ledger/port.js';
import { codeName, codeOfKind, createErrorMapper, errorRule, houseErrorRules, toConnectError } from '../../../services/rpc/errors.js';
import { clientTimeoutMs } from '../../../services/rpc/interceptors.js';
import { ErrorInfoSchema } from '../../../services/rpc/status-details.js';

const table: [ErrorKind, Code][] = [
  ['invalid_argument', Code.InvalidArgument],
  ['not_found', Code.NotFound],
  ['already_exists', Code.AlreadyExists],
  ['failed_precondition', Code.FailedPrecondition],
  ['permission_denied', Code.PermissionDenied],
  ['resource_exhausted', Code.ResourceExhausted],
  ['unauthenticated', Code.Unauthenticated],
  ['unavailable', Code.Unavailable],
];

type Info = { reason: string; domain: string; metadata: Record<string, string> };
const infosOf = (e: ConnectError) => (e.findDetails(ErrorInfoSchema) as unknown as Info[]).map((i) => [i.reason, i.domain, i.metadata]);

test('every domain kind maps to its gRPC code, with the same number as gRPC, and one ErrorInfo whose reason is the kind', (t) => {
  for (const [kind, code] of table) {
    const e = toConnectError(new DomainError(kind, `a ${kind} outcome`));
    t.deepEqual([e.code, e.rawMessage, e.details.length], [code, `a ${kind} outcome`, 1], kind);
    t.deepEqual(infosOf(e), [[kind.toUpperCase(), 'countersign.v1', {}]], kind);
  }
  t.deepEqual(Object.keys(codeOfKind).sort(), table.map(([k]) => k).sort(), 'the table is closed');
  t.deepEqual([Code.NotFound, Code.Unauthenticated, Code.Internal], [5, 16, 13]);
});

test('details become one google.rpc.ErrorInfo; the original stays the cause', (t) => {
  const original = new DomainError('failed_precondition', 'insufficient funds', { reason: 'insufficient_funds', shortBy: 1_500n });
  const e = toConnectError(original);
  t.is(e.code, Code.FailedPrecondition);
  t.is(e.cause, original);
  const [info] = e.findDetails(ErrorInfoSchema) as unknown as { reason: string; domain: string; metadata: Record<string, string> }[];
  t.deepEqual(info && [info.reason, info.domain, info.metadata], ['INSUFFICIENT_FUNDS', 'countersign.v1', { shortBy: '1500' }]);
});

test('invalidArgument names the field in the message and in the ErrorInfo', (t) => {
  const e = toConnectError(invalidArgument('payer_id', 'must be 32 lowercase hex digits'));
  t.deepEqual([e.code, e.rawMessage], [Code.InvalidArgument, 'payer_id must be 32 lowercase hex digits']);
  t.deepEqual(infosOf(e), [['INVALID_ARGUMENT', 'countersign.v1', { field: 'payer_id' }]]);
});

test("a DomainError's subclasses and the ports' infrastructure errors are rows of the house table", (t) => {
  const overflow = toConnectError(new SubscriberOverflowError('watch fell 10000 payments behind'));
  t.deepEqual([overflow.code, overflow.rawMessage], [Code.ResourceExhausted, 'watch fell 10000 payments behind']);
  for (const e of [new LedgerUnavailableError('tigerbeetle at 10.0.0.7:3000 timed out'), new StoreUnavailableError('redis down')]) {
    const mapped = toConnectError(e);
    t.is(mapped.code, Code.Unavailable, e.name);
    t.false(mapped.rawMessage.includes('10.0.0.7') || mapped.rawMessage.includes('redis'), 'no internals in the message');
    t.is(mapped.cause, e);
  }
});

test('a full embedded store or ledger is UNAVAILABLE with its own message naming the fix (a retry will not help), reason CAPACITY', (t) => {
  const fix = 'move to Redis and TigerBeetle (COUNTERSIGN_REDIS_URL, COUNTERSIGN_TB_ADDRESSES)';
  for (const e of [
    new StoreFullError(`the payment store holds 10 payments, its limit (paymentsMax); ${fix}`),
    new LedgerCapacityError(`the embedded ledger holds 10 transfers, its limit; ${fix}`),
  ]) {
    const mapped = toConnectError(e);
    t.is(mapped.code, Code.Unavailable, e.name);
    t.true(mapped.rawMessage.endsWith(fix), mapped.rawMessage);
    const [info] = mapped.findDetails(ErrorInfoSchema) as unknown as { reason: string }[];
    t.is(info?.reason, 'CAPACITY');
    t.is(mapped.cause, e);
  }
});

test('anything unmapped is INTERNAL "internal error", never UNKNOWN; ConnectErrors pass as they are', (t) => {
  for (const thrown of [new Error('secret stack'), new TypeError('x is undefined'), 'a string', undefined]) {
    const e = toConnectError(thrown);
    t.deepEqual([e.code, e.rawMessage, e.cause], [Code.Internal, 'internal error', thrown]);
  }
  const connect = new ConnectError('nope', Code.OutOfRange);
  t.is(toConnectError(connect), connect);
  const deadline = new ConnectError('deadline exceeded', Code.DeadlineExceeded);
  const aborted = Object.assign(new Error('aborted'), { name: 'AbortError', cause: deadline });
  t.is(toConnectError(aborted), deadline, "an abort carries its signal's reason");
  t.is(toConnectError(Object.assign(new Error('aborted'), { name: 'AbortError' })).code, Code.Canceled);
});

test('the table extends with a typed row, first match wins', (t) => {
  class PayerLockedError extends Error {
    constructor(readonly retryAfterS: number) {
      super('payer locked');
    }
  }
  const map = createErrorMapper([
    errorRule(PayerLockedError, (e) => ({ kind: 'resource_exhausted', message: 'too many attempts', details: { retryAfterS: e.retryAfterS } })),
    ...houseErrorRules,
  ]);
  const e = map(new PayerLockedError(30));
  t.deepEqual([e.code, e.rawMessage], [Code.ResourceExhausted, 'too many attempts']);
  t.is(map(new DomainError('not_found', 'payer not found')).code, Code.NotFound, 'the house rows still apply');
  t.is(toConnectError(new PayerLockedError(30)).code, Code.Internal, 'the house mapper is not changed');
});

test('code names for logs and tags, and client timeouts from either protocol', (t) => {
  t.deepEqual([codeName(0), codeName(Code.NotFound), codeName(Code.DeadlineExceeded)], ['ok', 'not_found', 'deadline_exceeded']);
  t.is(clientTimeoutMs(new Headers({ 'grpc-timeout': '250m' })), 250);
  t.is(clientTimeoutMs(new Headers({ 'grpc-timeout': '2S' })), 2_000);
  t.is(clientTimeoutMs(new Headers({ 'grpc-timeout': '1H' })), 3_600_000);
  t.is(clientTimeoutMs(new Headers({ 'connect-timeout-ms': '1500' })), 1_500);
  t.is(clientTimeoutMs(new Headers({ 'grpc-timeout': '123456789m' })), undefined, 'over 8 digits is not a timeout');
  t.is(clientTimeoutMs(new Headers()), undefined);
});

/** Source files under `dir` (recursively), paths relative to the repository root. */
async function sourcesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && /\.m?ts$/.test(e.name)).map((e) => `${e.parentPath}/${e.name}`);
}

test('ConnectErrors are built only in the RPC tier (services/rpc/): everything else throws DomainError or a port error', async (t) => {
  const files = (await Promise.all(['authz', 'ledger', 'services'].map(sourcesUnder))).flat().filter((f) => !f.startsWith('services/rpc/'));
  t.true(files.length > 100, `${files.length} source files read`);
  const builders: string[] = [];
  for (const file of files) {
    const lines = (await readFile(file, 'utf8')).split('\n');
    lines.forEach((line, i) => line.includes('new ConnectError') && builders.push(`${file}:${i + 1}`));
  }
  t.deepEqual(builders, []);
});
