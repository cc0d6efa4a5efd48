import { type Cluster, Command, type Pipeline, type Redis } from 'ioredis';
import type { Payment } from '../../model.js';
import { isHexId } from '../../validation.js';
import { assert, assertQuery } from '../checks.js';
import { type PaymentQuery, type PaymentRecord, pageMax, readIdsMax } from '../port.js';
import { callRedis } from '../redis-client.js';
import type { StoreKeys } from './keys.js';
import { decodeRecordValues, recordFields } from './record-codec.js';

/** Index members one `list` step reads when filters may reject some (one ZRANGEBYLEX, then one pipelined read). */
export const listBatchMax = 1_000;
/** SCAN calls one `scan` page makes at most before it answers (possibly short: the cursor goes on). */
export const scanCallsPerPageMax = 64;
/** SCAN's COUNT hint at least (keys examined per call). */
export const scanCountMin = 100;

/** One record's values, `recordFields` in order (HMGET's reply: null where a field is missing). */
export type RecordRead = (key: string) => Promise<(string | null)[]>;

/**
 * How this store reads a record by its key. On a single Redis, HMGET with its bytes written here
 * (`TurnReads`); on a Cluster, ioredis's `hmget`, which routes each read to its slot's node.
 */
export function recordReader(client: Redis | Cluster): RecordRead {
  if ('isCluster' in client && client.isCluster) return (key) => client.hmget(key, ...recordFields);
  const reads = new TurnReads(client as Redis);
  return (key) => reads.read(key);
}

/** HMGET's RESP up to its key, and after it: the field names, the same for every read. */
const hmgetHead = `*${2 + recordFields.length}\r\n$5\r\nhmget\r\n`;
const hmgetFields = recordFields.map((field) => `$${field.length}\r\n${field}\r\n`).join('');
/** A record key is the store's prefix (keys.ts: letters, digits, `_ . : -`), a shard tag and a hex id: printable ASCII, one byte a char. */
const printableAscii = /^[\x21-\x7e]+$/;

/** The RESP of HMGET `key` `recordFields`…, as one string (one char per byte). */
export function recordReadWire(key: string): string {
  assert(printableAscii.test(key), 'a record key must be printable ASCII');
  return `${hmgetHead}$${key.length}\r\n${key}\r\n${hmgetFields}`;
}

/** An HMGET of every record field whose bytes are made here (`recordReadWire`): ioredis sends them as they are. */
class RecordReadCommand extends Command {
  private readonly wire: string;

  constructor(key: string) {
    super('hmget', [key], { replyEncoding: 'utf8' });
    this.wire = recordReadWire(key);
  }

  override toWritable(): string {
    return this.wire;
  }
}

/**
 * The record reads of one turn of the event loop in one pipeline (one socket write), each HMGET
 * written as one string: the head, the key, then the field names made once. ioredis builds a
 * command's arguments one by one — a `Buffer.byteLength`, a `$len` header and a concatenation
 * for each of the 23 field names: 4.5–8.5 µs of client CPU per read against 0.4–0.9 for this
 * command (tight loops; a get −7 µs paired: bench/README.md, round 11). Flushed on `setImmediate`, as ioredis's auto-pipelining is: the
 * reads of RPCs handled in one turn share a round trip, and each read is sent after the request
 * that asked for it arrived, so it sees every write acknowledged before that.
 */
class TurnReads {
  private pipeline: Pipeline | undefined;

  constructor(private readonly redis: Redis) {}

  read(key: string): Promise<(string | null)[]> {
    const command = new RecordReadCommand(key);
    if (this.pipeline === undefined) {
      // A Pipeline at run time; ioredis types `pipeline()` without `sendCommand`.
      this.pipeline = this.redis.pipeline() as unknown as Pipeline;
      setImmediate(() => this.flush());
    }
    this.pipeline.sendCommand(command);
    return command.promise as Promise<(string | null)[]>;
  }

  private flush(): void {
    const pipeline = this.pipeline!;
    this.pipeline = undefined;
    // Each read's own promise carries its reply or error (callRedis); exec's promise has its rejection handled by ioredis.
    void pipeline.exec();
  }
}

/**
 * The records of `ids` (HMGET of `recordFields`: the operation keys stay in Redis), read
 * concurrently: one write per node (a single Redis: one round trip). An id that is not a payment
 * id cannot name a record: undefined.
 */
export async function readRecords(read: RecordRead, keys: StoreKeys, operation: string, ids: readonly string[]): Promise<(PaymentRecord | undefined)[]> {
  return callRedis(operation, () =>
    Promise.all(
      ids.map(async (id) => {
        if (!isHexId(id)) return undefined;
        const values = await read(keys.record(id));
        return values[0] === null ? undefined : decodeRecordValues(values);
      }),
    ),
  );
}

export async function getRecords(read: RecordRead, keys: StoreKeys, ids: readonly string[]): Promise<(PaymentRecord | undefined)[]> {
  assert(ids.length <= readIdsMax, `get takes at most ${readIdsMax} ids`);
  return readRecords(read, keys, 'get', ids);
}

/**
 * A page of the merchant's or payer's index (ZRANGEBYLEX after `afterId`; ids are time-ordered)
 * and its records in one pipelined read per step, skipping missing records and filtering. It
 * steps until the page is full or the index ends: the index is finite, and each step reads at
 * most `listBatchMax` members.
 */
export async function listPayments(client: Redis | Cluster, read: RecordRead, keys: StoreKeys, query: PaymentQuery): Promise<Payment[]> {
  assertQuery(query);
  const index = query.merchantId !== undefined ? keys.merchantIndex(query.merchantId) : keys.payerIndex(query.payerId!);
  const filtered = query.states !== undefined || (query.merchantId !== undefined && query.payerId !== undefined);
  const batch = filtered ? listBatchMax : query.limit;
  const found: Payment[] = [];
  let after = query.afterId;
  for (;;) {
    const ids = await callRedis('list', () => client.zrangebylex(index, after === undefined ? '-' : `(${after}`, '+', 'LIMIT', 0, batch));
    if (ids.length === 0) return found;
    for (const record of await readRecords(read, keys, 'list', ids)) {
      if (record === undefined) continue;
      const p = record.payment;
      if (query.merchantId !== undefined && p.merchantId !== query.merchantId) continue;
      if (query.payerId !== undefined && p.payerId !== query.payerId) continue;
      if (query.states !== undefined && !query.states.includes(p.state)) continue;
      found.push(p);
      if (found.length === query.limit) return found;
    }
    if (ids.length < batch) return found;
    after = ids[ids.length - 1];
  }
}

/**
 * Every record, by SCAN over record keys, node by node (each master of a Cluster, in address
 * order). The cursor: `<node>:<SCAN cursor>:<ids found and not yet returned>`. SCAN's guarantees
 * hold: a record present for the whole scan is returned at least once (rarely twice).
 */
export async function scanRecords(
  client: Redis | Cluster,
  read: RecordRead,
  keys: StoreKeys,
  cursor: string,
  limit: number,
): Promise<{ records: PaymentRecord[]; cursor: string }> {
  assert(Number.isSafeInteger(limit) && limit >= 1 && limit <= pageMax, `limit must be 1..${pageMax}`);
  const nodes = scanNodes(client);
  let { node, at, pending } = parseCursor(cursor);
  const records: PaymentRecord[] = [];
  let calls = 0;
  while (records.length < limit) {
    if (pending.length === 0) {
      if (node >= nodes.length || calls >= scanCallsPerPageMax) break;
      const [next, found] = await callRedis('scan', () =>
        nodes[node]!.scan(at, 'MATCH', keys.recordPattern, 'COUNT', Math.max(limit, scanCountMin), 'TYPE', 'hash'),
      );
      calls += 1;
      pending = found.map((key) => key.slice(key.lastIndexOf(':') + 1));
      if (next === '0') [node, at] = [node + 1, '0'];
      else at = next;
      continue;
    }
    const take = pending.slice(0, limit - records.length);
    pending = pending.slice(take.length);
    for (const record of await readRecords(read, keys, 'scan', take)) if (record !== undefined) records.push(record);
  }
  const done = node >= nodes.length && pending.length === 0;
  return { records, cursor: done ? '' : `${node}:${at}:${pending.join(',')}` };
}

function scanNodes(client: Redis | Cluster): Redis[] {
  if (!('isCluster' in client) || !client.isCluster) return [client as Redis];
  const masters = (client as Cluster).nodes('master');
  const address = (r: Redis) => `${r.options.host}:${String(r.options.port).padStart(5, '0')}`;
  return [...masters].sort((a, b) => (address(a) < address(b) ? -1 : address(a) > address(b) ? 1 : 0));
}

function parseCursor(cursor: string): { node: number; at: string; pending: string[] } {
  if (cursor === '') return { node: 0, at: '0', pending: [] };
  const match = /^(\d+):(\d+):((?:[0-9a-f]{32}(?:,[0-9a-f]{32})*)?)$/.exec(cursor);
  assert(match !== null, 'scan cursor must be one this store returned');
  return { node: Number(match[1]), at: match[2]!, pending: match[3] === '' ? [] : match[3]!.split(',') };
}
