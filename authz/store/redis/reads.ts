import type { Cluster, Redis } from 'ioredis';
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

/**
 * The records of `ids` (HMGET of `recordFields`: the operation keys stay in Redis), read
 * concurrently: with auto-pipelining one write per node (a single Redis: one round trip). An
 * id that is not a payment id cannot name a record: undefined.
 */
export async function readRecords(client: Redis | Cluster, keys: StoreKeys, operation: string, ids: readonly string[]): Promise<(PaymentRecord | undefined)[]> {
  return callRedis(operation, () =>
    Promise.all(
      ids.map(async (id) => {
        if (!isHexId(id)) return undefined;
        const values = await client.hmget(keys.record(id), ...recordFields);
        return values[0] === null ? undefined : decodeRecordValues(values);
      }),
    ),
  );
}

export async function getRecords(client: Redis | Cluster, keys: StoreKeys, ids: readonly string[]): Promise<(PaymentRecord | undefined)[]> {
  assert(ids.length <= readIdsMax, `get takes at most ${readIdsMax} ids`);
  return readRecords(client, keys, 'get', ids);
}

/**
 * A page of the merchant's or payer's index (ZRANGEBYLEX after `afterId`; ids are time-ordered)
 * and its records in one pipelined read per step, skipping missing records and filtering. It
 * steps until the page is full or the index ends: the index is finite, and each step reads at
 * most `listBatchMax` members.
 */
export async function listPayments(client: Redis | Cluster, keys: StoreKeys, query: PaymentQuery): Promise<Payment[]> {
  assertQuery(query);
  const index = query.merchantId !== undefined ? keys.merchantIndex(query.merchantId) : keys.payerIndex(query.payerId!);
  const filtered = query.states !== undefined || (query.merchantId !== undefined && query.payerId !== undefined);
  const batch = filtered ? listBatchMax : query.limit;
  const found: Payment[] = [];
  let after = query.afterId;
  for (;;) {
    const ids = await callRedis('list', () => client.zrangebylex(index, after === undefined ? '-' : `(${after}`, '+', 'LIMIT', 0, batch));
    if (ids.length === 0) return found;
    for (const record of await readRecords(client, keys, 'list', ids)) {
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
    for (const record of await readRecords(client, keys, 'scan', take)) if (record !== undefined) records.push(record);
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
