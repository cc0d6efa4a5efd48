import { Code } from '@connectrpc/connect';
import test from 'ava';
import { concurrentDuplicate } from './fuzz-judge.js';
import type { Outcome } from './security-rpc.js';

const inProgress: Outcome = {
  ok: false,
  code: Code.Unavailable,
  message: 'a request with this idempotency key is in progress; retry shortly',
  reason: 'IN_PROGRESS',
  meta: { retry_after_ms: '30000' },
};

test('a pooled key met in progress (two workers, one request) is the documented answer; anything else UNAVAILABLE is still no answer', (t) => {
  t.true(concurrentDuplicate({ idempotencyKey: 'fz-pool-9', payerId: 'p' }, inProgress));
  t.false(concurrentDuplicate({ idempotencyKey: 'fz-1234-fresh', payerId: 'p' }, inProgress), 'a fresh key is never in progress elsewhere');
  t.false(concurrentDuplicate({ idempotencyKey: 'fz-pool-9' }, { ...inProgress, reason: undefined }), 'UNAVAILABLE without IN_PROGRESS');
  t.false(concurrentDuplicate({ idempotencyKey: 'fz-pool-9' }, { ...inProgress, meta: {} }), 'IN_PROGRESS without retry_after_ms');
  t.false(concurrentDuplicate({ idempotencyKey: 'fz-pool-9' }, { ...inProgress, code: Code.Internal }));
});
