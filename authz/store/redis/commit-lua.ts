import { commonLua } from './lua-common.js';

/**
 * The commit step, following memory/state.ts `commit`: the record (missing: stale), the claim
 * (a field of the record: replay, conflict), the version (stale), then one HSET with the new
 * payment's fields, the version, the due time and the claim's result, and the due index. A
 * settle (port.ts `CommitItem.settle`) reads nothing: one HSET of the four fields it changes
 * (state, updatedAtMs, version, due time), and the due index.
 *
 * KEYS per item: record, due index. ARGV[1] slack, ARGV[2] closedRetentionMs (0: never; else a
 * final record out of the due index expires after it, and one put back into the index no longer
 * does), ARGV[3] operationKeysPerPaymentMax, then per item one argument, its 13 + f strings packed
 * (pack.ts; the script's table I): payment id, expectVersion,
 * nowMs, due ('' unchanged | 'n' out of the index | ms), has payment ('1'/'0'), its merchant and
 * payer, f, claim field ('' no claim), claim fingerprint, claim keyTtlMs, claim result, settle
 * ('1'/'0'), then f strings: the new payment's field/value pairs (digests included when they
 * change), or a settle's updatedAtMs and new version (f = 2; the script writes state SUCCEEDED
 * and the due time itself).
 * Returns (packed: `cmsgpack.pack`, pack.ts `unpackReply`) per item {'committed', record} | {'settled'} | {'stale', record?} | {'replayed', result}
 * | {'conflict'}; a commit that would change a payment's merchant or payer, or a settle of a
 * payment without a record, stops the script with an error reply "assertion failed: …" (earlier
 * items stay applied, as in memory).
 */
export const commitLua = `${commonLua}
local retention, keysMax = tonumber(ARGV[2]), tonumber(ARGV[3])

-- Final and out of the due index: Redis drops the record after the retention; due again: it stays.
local function retain(kRec, state, du, dueAt)
  if retention == 0 or not final[state] then return end
  if du == '' then redis.call('PEXPIRE', kRec, int(retention)) elseif dueAt ~= '' then redis.call('PERSIST', kRec) end
end

local function index(kDue, id, dueAt)
  if dueAt == 'n' then redis.call('ZREM', kDue, id) else redis.call('ZADD', kDue, dueAt, id) end
end

-- A settle: the four fields it changes, written blind (I: updatedAtMs and the new version). The
-- decline, sealed-code and digest fields are not cleared: a SUCCEEDED record's are void
-- (record-codec.ts decodes none), and writing '' into ten fields, most of them absent, cost 3.5
-- of a settle's 8.4 µs (bench/lua-replay.ts, round 10). Every record has 'st': an HSET that adds
-- all four fields found no record, so it is taken back and the item is a programmer error.
local function settleItem(kRec, kDue, I)
  local id, dueAt = I[1], I[4]
  local du = dueAt
  if dueAt == 'n' then du = '' end
  local added = redis.call('HSET', kRec, 'st', 'SUCCEEDED', 'up', I[14], 'v', I[15], 'du', du)
  if added == 4 then
    redis.call('DEL', kRec)
    return redis.error_reply('assertion failed: a settle names payment ' .. id .. ', which has no record')
  end
  index(kDue, id, dueAt)
  retain(kRec, 'SUCCEEDED', du, dueAt)
  return { 'settled' }
end

local function commitItem(kRec, kDue, I)
  local id, expect, now, dueAt = I[1], I[2], tonumber(I[3]), I[4]
  local hasPayment, fields, claimField = I[5] == '1', tonumber(I[8]), I[9]
  if I[13] == '1' then return settleItem(kRec, kDue, I) end
  local r = load(kRec)
  if not r then return { 'stale' } end
  if claimField ~= '' then
    local ofp, result = liveOperation(r, claimField, now)
    if ofp then
      if ofp == I[10] then return { 'replayed', result } end
      return { 'conflict' }
    end
  end
  if r.v ~= expect then return { 'stale', values(r) } end
  local changes = {}
  if hasPayment then
    if r.m ~= I[6] or r.py ~= I[7] then
      return redis.error_reply("assertion failed: a commit may not change a payment's id, merchant or payer")
    end
    for j = 14, 13 + fields do changes[#changes + 1] = I[j] end
    add(changes, 'v', bump(r))
  end
  if dueAt == 'n' then
    if r.du ~= '' then
      add(changes, 'du', '')
      redis.call('ZREM', kDue, id)
    end
  elseif dueAt ~= '' and dueAt ~= r.du then
    add(changes, 'du', dueAt)
    redis.call('ZADD', kDue, dueAt, id)
  end
  local written = #changes > 0
  if claimField == '' then
    save(kRec, r, changes)
  else
    local ttl = tonumber(I[11])
    saveWithKey(kRec, r, changes, hasPayment, claimField, entry(I[10], now + ttl, I[12]), now, keysMax)
  end
  if written then retain(kRec, r.st, r.du, dueAt) end
  return { 'committed', values(r) }
end

local out = {}
for i = 1, #KEYS / 2 do
  local reply = commitItem(KEYS[2 * i - 1], KEYS[2 * i], { cmsgpack.unpack(ARGV[3 + i]) })
  if reply.err then return reply end
  out[i] = reply
end
return cmsgpack.pack(out)
`;
