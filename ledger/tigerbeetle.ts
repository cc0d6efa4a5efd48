import { type Client, createClient } from 'tigerbeetle-node';
import { chunkEvents, chunkIds } from './chunk.js';
import { type Account, type AccountBalance, type AccountFilter, eventBatchMax, type Transfer } from './model.js';
import { type Ledger, LedgerRequestError, LedgerUnavailableError } from './port.js';
import { type CreateAccountResult, type CreateTransferResult, createAccountResultName, createTransferResultName } from './results.js';

/**
 * The ledger port on a TigerBeetle cluster, through tigerbeetle-node 0.16.44.
 *
 * - One client per cluster per process: TigerBeetle limits concurrent sessions and a client
 *   batches concurrent requests itself, so every `TigerBeetleLedger` for the same cluster id and
 *   addresses shares one client, reference-counted; the last `close()` destroys it.
 * - Arrays longer than `eventBatchMax` are sent as sequential requests (`chunkEvents`), never
 *   cutting a linked chain; results come back as one dense array, one name per input event.
 * - The client retries an unanswered request forever, so every request gets our own deadline
 *   (`requestTimeoutMs`): a call of n requests waits at most n × `requestTimeoutMs`. The
 *   request itself stays queued in the client and may still be applied later: callers retry
 *   with the same ids, where `exists` means success. Ids are never minted here.
 * - Objects pass through unconverted: `model.ts` has tigerbeetle-node's field names and widths.
 */
export class TigerBeetleLedger implements Ledger {
  private readonly shared: SharedClient;
  private readonly requestTimeoutMs: number;
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;

  private constructor(shared: SharedClient, requestTimeoutMs: number) {
    this.shared = shared;
    this.requestTimeoutMs = requestTimeoutMs;
  }

  /**
   * A ledger on the cluster. Does not wait for the cluster: an unreachable cluster shows as
   * `LedgerUnavailableError` on the first call. Throws `RangeError` for invalid options.
   */
  static async connect(opts: { clusterId: bigint; addresses: string[]; requestTimeoutMs: number }): Promise<TigerBeetleLedger> {
    assertOptions(opts);
    return new TigerBeetleLedger(acquireClient(opts.clusterId, opts.addresses), opts.requestTimeoutMs);
  }

  createAccounts(accounts: readonly Account[]): Promise<CreateAccountResult[]> {
    return this.track(async () => {
      const results: CreateAccountResult[] = new Array(accounts.length).fill('ok');
      let start = 0;
      for (const chunk of chunkEvents(accounts)) {
        const what = `create_accounts of events ${start}..${start + chunk.length - 1} (of ${accounts.length})`;
        const errors = await this.request(what, (client) => client.createAccounts(chunk));
        placeResults(results, start, chunk.length, errors, createAccountResultName);
        start += chunk.length;
      }
      return results;
    });
  }

  createTransfers(transfers: readonly Transfer[]): Promise<CreateTransferResult[]> {
    return this.track(async () => {
      const results: CreateTransferResult[] = new Array(transfers.length).fill('ok');
      let start = 0;
      for (const chunk of chunkEvents(transfers)) {
        const what = `create_transfers of events ${start}..${start + chunk.length - 1} (of ${transfers.length})`;
        const errors = await this.request(what, (client) => client.createTransfers(chunk));
        placeResults(results, start, chunk.length, errors, createTransferResultName);
        start += chunk.length;
      }
      return results;
    });
  }

  lookupAccounts(ids: readonly bigint[]): Promise<Account[]> {
    return this.track(async () => {
      const found: Account[] = [];
      for (const chunk of chunkIds(ids)) {
        found.push(...(await this.request('lookup_accounts', (client) => client.lookupAccounts(chunk))));
      }
      return inRequestOrder(ids, found);
    });
  }

  lookupTransfers(ids: readonly bigint[]): Promise<Transfer[]> {
    return this.track(async () => {
      const found: Transfer[] = [];
      for (const chunk of chunkIds(ids)) {
        found.push(...(await this.request('lookup_transfers', (client) => client.lookupTransfers(chunk))));
      }
      return inRequestOrder(ids, found);
    });
  }

  getAccountTransfers(filter: AccountFilter): Promise<Transfer[]> {
    return this.track(async () => {
      const clamped = clampLimit(filter);
      if (clamped.limit === 0) return []; // TigerBeetle answers [] for limit 0: save the round trip.
      return this.request('get_account_transfers', (client) => client.getAccountTransfers(clamped));
    });
  }

  getAccountBalances(filter: AccountFilter): Promise<AccountBalance[]> {
    return this.track(async () => {
      const clamped = clampLimit(filter);
      if (clamped.limit === 0) return [];
      return this.request('get_account_balances', (client) => client.getAccountBalances(clamped));
    });
  }

  /**
   * Refuses new calls at once, waits for calls in flight to settle (each request is bounded by
   * `requestTimeoutMs`), then releases the shared client, destroying it if this was the last user.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.inFlight]);
      releaseClient(this.shared);
    })();
    return this.closing;
  }

  /** Runs one port call, refused once closing, and remembered until it settles for `close()`. */
  private track<R>(call: () => Promise<R>): Promise<R> {
    if (this.closing !== undefined) return Promise.reject(new LedgerUnavailableError('ledger is closed'));
    const running = call();
    this.inFlight.add(running);
    const forget = () => this.inFlight.delete(running);
    running.then(forget, forget);
    return running;
  }

  /** One request to the cluster, under the deadline, with the client's errors mapped. */
  private request<R>(what: string, send: (client: Client) => Promise<R>): Promise<R> {
    const timeoutMs = this.requestTimeoutMs;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => reject(deadlineError(what, timeoutMs)), timeoutMs);
      // Both handlers stay attached after the deadline: the client still answers (or rejects
      // with "Client was shutdown." on destroy) later, and that settles nothing twice.
      send(this.shared.client).then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(clientError(what, error));
        },
      );
    });
  }
}

/** A tigerbeetle-node client shared by every ledger on the same cluster in this process. */
interface SharedClient {
  readonly key: string;
  readonly client: Client;
  users: number;
}

const sharedClients = new Map<string, SharedClient>();

function acquireClient(clusterId: bigint, addresses: readonly string[]): SharedClient {
  // Order matters: the client maps the n-th address to replica n.
  const key = `${clusterId}/${addresses.join(',')}`;
  let shared = sharedClients.get(key);
  if (shared === undefined) {
    const client = createClient({ cluster_id: clusterId, replica_addresses: [...addresses] });
    shared = { key, client, users: 0 };
    sharedClients.set(key, shared);
  }
  shared.users += 1;
  return shared;
}

/** Synchronous, so a `connect` racing the last `close` either shares the client or makes a new one. */
function releaseClient(shared: SharedClient): void {
  if (shared.users <= 0) throw new Error(`tigerbeetle client ${shared.key} released more often than acquired`);
  shared.users -= 1;
  if (shared.users > 0) return;
  sharedClients.delete(shared.key);
  shared.client.destroy(); // Rejects requests still queued (timed out) with "Client was shutdown.".
}

function assertOptions(opts: { clusterId: bigint; addresses: string[]; requestTimeoutMs: number }): void {
  if (opts.clusterId < 0n || opts.clusterId >= 1n << 128n) throw new RangeError('clusterId must be a u128');
  if (opts.addresses.length === 0) throw new RangeError('addresses must name at least one replica');
  const timeoutMsMax = 2 ** 31 - 1; // setTimeout's limit.
  if (!Number.isInteger(opts.requestTimeoutMs) || opts.requestTimeoutMs < 1 || opts.requestTimeoutMs > timeoutMsMax) {
    throw new RangeError(`requestTimeoutMs must be an integer in 1..${timeoutMsMax}`);
  }
}

/**
 * Writes one chunk's non-ok results (TigerBeetle returns only those, indexed within the chunk)
 * into the dense result array at the chunk's offset. Indexes out of range are a broken invariant.
 */
function placeResults<N extends string>(
  results: N[],
  start: number,
  length: number,
  errors: readonly { index: number; result: number }[],
  name: (code: number) => N,
): void {
  for (const { index, result } of errors) {
    if (!Number.isInteger(index) || index < 0 || index >= length) {
      throw new Error(`tigerbeetle returned result index ${index} for a request of ${length} events`);
    }
    results[start + index] = name(result);
  }
}

/** At most `eventBatchMax` results; a limit below 1 (or not an integer) is invalid: no results. */
function clampLimit(filter: AccountFilter): AccountFilter {
  const valid = Number.isInteger(filter.limit) && filter.limit >= 1;
  return { ...filter, limit: valid ? Math.min(filter.limit, eventBatchMax) : 0 };
}

function deadlineError(what: string, timeoutMs: number): LedgerUnavailableError {
  return new LedgerUnavailableError(
    `tigerbeetle did not answer ${what} within ${timeoutMs} ms: the request may or may not have been ` +
      'applied; retrying with the same ids is safe (`exists` is success)',
  );
}

/**
 * The client rejects with plain `Error`s: "Client was shutdown." after destroy, "<field> must be
 * a BigInt/number" for a malformed event (refused before sending), anything else (eviction) means
 * the cluster cannot serve this client.
 */
function clientError(what: string, error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  if (message === 'Client was shutdown.') return new LedgerUnavailableError('ledger is closed', { cause: error });
  if (/ must (not )?be /.test(message)) {
    return new LedgerRequestError(`tigerbeetle-node refused ${what}: ${message}`, { cause: error });
  }
  return new LedgerUnavailableError(
    `tigerbeetle failed ${what} (${message}): the request may or may not have been applied; retrying with the same ids is safe (\`exists\` is success)`,
    { cause: error },
  );
}

/**
 * The found objects in the order their ids were asked (duplicates repeated), as the port
 * promises; tigerbeetle-node does not document the order of lookup results.
 */
function inRequestOrder<T extends { id: bigint }>(ids: readonly bigint[], found: T[]): T[] {
  const byId = new Map(found.map((o) => [o.id, o]));
  const ordered: T[] = [];
  for (const id of ids) {
    const o = byId.get(id);
    if (o !== undefined) ordered.push(o);
  }
  return ordered;
}
