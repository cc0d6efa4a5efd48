import type { StatsD } from 'hot-shots';
import type { Payment } from '../authz/model.js';

/**
 * StatsD metrics that are not per RPC (the `metrics` interceptor does those): backend latency
 * per operation, and payment outcomes per state and factor. Added as decorators in one place
 * (createApp); the domain knows nothing of them.
 */
export type Metrics = Pick<StatsD, 'timing' | 'increment'>;

/**
 * `target` with every async method timed as `backend.latency` (ms) and counted as
 * `backend.count`, tagged with the backend, the operation and the outcome (ok | error).
 */
export function timed<T extends object>(target: T, backend: string, statsd: Metrics): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value = Reflect.get(object, property, receiver) as unknown;
      if (typeof value !== 'function' || typeof property !== 'string' || property === 'close') return value;
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(object, args);
        if (!(result instanceof Promise)) return result;
        const started = performance.now();
        const record = (outcome: string) => {
          const tags = { backend, op: property, outcome };
          statsd.timing('backend.latency', performance.now() - started, tags);
          statsd.increment('backend.count', 1, tags);
        };
        return result.then(
          (v: unknown) => (record('ok'), v),
          (e: unknown) => {
            record('error');
            throw e;
          },
        );
      };
    },
  });
}

/** `payment.state` per transition, tagged with the new state, the required factors and the decline reason. */
export function paymentOutcome(statsd: Metrics): (payment: Payment) => void {
  return (payment) =>
    statsd.increment('payment.state', 1, {
      state: payment.state.toLowerCase(),
      factors: payment.requiredFactors.length === 0 ? 'none' : payment.requiredFactors.map((f) => f.toLowerCase()).join('+'),
      ...(payment.declineReason === undefined ? {} : { reason: payment.declineReason.toLowerCase() }),
      currency: payment.currency,
    });
}
