import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import test from 'ava';
import { type Payment, PaymentSchema, PaymentState } from '../../../gen/countersign/v1/common_pb.js';
import { ErrorInfoSchema, errorDomain } from '../../../services/rpc/status-details.js';
import { AnswerLog } from './answer-log.js';
import { checkKeys, inProgressMarginMs, Violations } from './audit.js';
import { type Attempt, isKeyInProgress, retryAfterMsOf } from './clients.js';
import { createLeaseMs } from './finish.js';

// The crash scenarios' answer log and the audit's checks per request key: they must flag a key
// answered with two payments, an IN_PROGRESS after the lease, a request left without a final
// answer — and stay quiet about a lease honoured.

const t0 = 1_800_000_000_000;

function payment(id: string, createdAtMs: number, state = PaymentState.CHALLENGED): Payment {
  return create(PaymentSchema, {
    id,
    merchantId: 'm1',
    payerId: 'p1',
    payeeAccountId: 'acc',
    amount: 500n,
    currency: 'USD',
    state,
    createdAt: timestampFromMs(createdAtMs),
  });
}

function ok(startMs: number, p: Payment): Attempt<unknown> {
  return { startMs, endMs: startMs + 10, ok: true, value: { payment: p } };
}

function failed(startMs: number, code: Code, info?: { reason: string; metadata: Record<string, string> }): Attempt<unknown> {
  const details = info === undefined ? [] : [{ desc: ErrorInfoSchema, value: { ...info, domain: errorDomain } }];
  return { startMs, endMs: startMs + 10, ok: false, error: new ConnectError('test', code, undefined, details) };
}

const inProgress = (startMs: number) => failed(startMs, Code.Unavailable, { reason: 'IN_PROGRESS', metadata: { retry_after_ms: '1500' } });

function violations(log: AnswerLog): string[] {
  const v = new Violations();
  checkKeys(log, v, {}, () => 'explained');
  return v.list();
}

test('IN_PROGRESS is recognised by its reason and carries retry_after_ms', (t) => {
  const attempt = inProgress(t0);
  if (attempt.ok) return t.fail();
  t.true(isKeyInProgress(attempt.error));
  t.is(retryAfterMsOf(attempt.error), 1500);
});

test('a lease honoured: IN_PROGRESS before the lease ends, then the payment, is no violation', (t) => {
  const log = new AnswerLog();
  log.note('k1', 'create', inProgress(t0 + 1_000));
  log.note('k1', 'create', inProgress(t0 + createLeaseMs - 1_000));
  log.note('k1', 'create', ok(t0 + createLeaseMs + 100, payment('a', t0)));
  t.deepEqual(violations(log), []);
});

test('IN_PROGRESS to a request sent after the lease (from the payment creation) plus the margin is a violation', (t) => {
  const log = new AnswerLog();
  log.note('k1', 'create', ok(t0, payment('a', t0)));
  log.note('k1', 'create', inProgress(t0 + createLeaseMs + inProgressMarginMs + 500));
  log.note('k1', 'create', ok(t0 + createLeaseMs + inProgressMarginMs + 900, payment('a', t0)));
  const found = violations(log);
  t.is(found.length, 1);
  t.regex(found[0]!, /^a key still in progress after its lease: 1 \(k1: IN_PROGRESS to a request sent 2500 ms after the lease ended/);
});

test('one key answered with two payment ids is a violation; a refusal naming a payment counts', (t) => {
  const log = new AnswerLog();
  log.note('k1', 'create', ok(t0, payment('a', t0)));
  log.note('k2', 'create', failed(t0, Code.FailedPrecondition, { reason: 'INSUFFICIENT_FUNDS', metadata: { payment_id: 'b' } }));
  log.note('k2', 'create', ok(t0 + 50, payment('c', t0)));
  t.deepEqual(violations(log), ['a request key answered with two payment ids: 1 (k2: b, c)']);
  t.deepEqual([...log.payments.get('b')!.createRefusals], ['INSUFFICIENT_FUNDS']);
});

test('a request whose last answer is not final is a violation, named by how it was left', (t) => {
  const log = new AnswerLog();
  log.note('k1', 'create', failed(t0, Code.Unavailable));
  log.note('k2', 'create', inProgress(t0));
  log.note('k3', 'operation', failed(t0, Code.Unavailable, { reason: 'DELIVERY_FAILED', metadata: {} }));
  t.deepEqual(violations(log).sort(), [
    'a key left in progress (no final answer after the finish phase): 1 (k2 (create): last answer Unavailable:IN_PROGRESS; explained)',
    'a request left without a final answer: 1 (k1 (create): last answer Unavailable; explained)',
  ]);
});

test('IN_PROGRESS for an operation on a payment is a violation (only a create has a lease)', (t) => {
  const log = new AnswerLog();
  log.note('k1:confirm:0', 'operation', inProgress(t0));
  log.note('k1:confirm:0', 'operation', ok(t0 + 100, payment('a', t0, PaymentState.SUCCEEDED)));
  t.deepEqual(violations(log), ['IN_PROGRESS answered for an operation on a payment (only a create has a lease): 1 (k1:confirm:0: 1×)']);
});

test('answers for one payment that disagree on its amount are kept as contradictions; SUCCEEDED answers are timed', (t) => {
  const log = new AnswerLog();
  log.note(undefined, 'read', ok(t0, payment('a', t0)));
  log.note(undefined, 'read', ok(t0 + 5, { ...payment('a', t0, PaymentState.SUCCEEDED), amount: 600n }));
  const a = log.payments.get('a')!;
  t.deepEqual(a.contradictions, ['amount 500≠600']);
  t.is(a.succeededAtMs, t0 + 15);
  t.deepEqual(log.succeededAtMs, [t0 + 15]);
});
