/**
 * Racing work against an AbortSignal. The signal's `reason` is what the loser gets: callers
 * abort with a ConnectError (DEADLINE_EXCEEDED, UNAVAILABLE, CANCELED) so the status that
 * reaches the client is the reason itself.
 */

/** Settles with `promise`, or rejects with `signal.reason` as soon as the signal aborts. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Yields `source` until it ends or `signal` aborts; on abort the source is told to stop
 * (`return()`, not awaited: a source that ignores its own signal cannot hold us) and the
 * iteration throws `signal.reason`.
 */
export async function* abortable<T>(source: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      const next = await raceAbort(it.next(), signal);
      if (next.done === true) {
        done = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!done) void Promise.resolve(it.return?.()).catch(() => undefined);
  }
}
