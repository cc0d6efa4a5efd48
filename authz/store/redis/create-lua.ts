import { commonLua } from './lua-common.js';

/**
 * The create step's Lua. Three functions, one per slot a create touches, composed into one
 * script on a single Redis (`createAllLua`) and run as ordered phases on a Cluster
 * (`createKeyLua`, `createCountLua`, `createRecordLua`; README.md, "Cluster phases").
 * ARGV[1] slack, ARGV[2] closedRetentionMs (0: records never expire).
 */
const createFunctions = `
local retention = tonumber(ARGV[2])

-- Index entries (ZADD), collected per index key and written by 'flushIndexes' at the end of the
-- call ('finishing'), one ZADD per key and 'zaddPairsMax' entries: a call of one merchant's
-- payments, or of one shard's, adds to its index once. Nothing in a create reads an index, so no
-- item of the call can tell.
local deferred, deferredKeys = {}, {}
local zaddPairsMax = 500
local function addIndex(k, score, member)
  local list = deferred[k]
  if list == nil then
    list = {}
    deferred[k] = list
    deferredKeys[#deferredKeys + 1] = k
  end
  list[#list + 1] = score
  list[#list + 1] = member
end
local function flushIndexes()
  for _, k in ipairs(deferredKeys) do
    local list = deferred[k]
    for from = 1, #list, 2 * zaddPairsMax do
      redis.call('ZADD', k, unpack(list, from, math.min(from + 2 * zaddPairsMax - 1, #list)))
    end
  end
end

-- What a live create key answers for fingerprint fp: 'conflict', '' | 'refused', token | 'named', id.
local function named(old, fp)
  local ofp, _, res = parseEntry(old)
  if ofp ~= fp then return 'conflict', '' end
  if string.sub(res, 1, 2) ~= 'p:' then return 'refused', res end
  return 'named', string.sub(res, 3)
end

-- The create key (merchant slot). mode 'c' claims it for payment 'value' (and indexes the id
-- under the merchant), 'r' claims it with the refusal 'value', 'k' only looks.
-- Returns status, value: 'new', id | 'absent' (k) | 'refused', token | 'conflict' | 'named', id.
local function createKey(kKey, kIdx, mode, fp, ttl, now, value)
  local result = value
  if mode ~= 'r' then result = 'p:' .. value end
  local px = int(ttl + slack)
  local old, written
  if mode == 'k' then
    old = redis.call('GET', kKey)
    if old then
      local _, exp = parseEntry(old)
      if exp <= now then old = nil end
    end
    if not old then return 'absent', '' end
  else
    old, written = claim(kKey, entry(fp, now + ttl, result), px, now)
  end
  if old then return named(old, fp) end
  if not written then redis.call('SET', kKey, entry(fp, now + ttl, result), 'PX', px) end
  if mode == 'r' then return 'refused', value end
  addIndex(kIdx, 0, value)
  return 'new', value
end

-- Counters, by key (the key names the window; 'windowEnd' is its end, ms). 'left' the hits the
-- call still names from the current one on (every reference, counted or not: the caller keeps
-- it), 'spare' hits reserved and not yet used, 'count' the value after the last hit. A counter's
-- first hit in the call reserves every hit left (INCRBY: one command instead of one per hit; on
-- the window's first hit a TTL to its end plus the slack, relative to the item's clock: README.md,
-- "Time"), later hits use the reservation, and 'finishing' returns what is unused (DECRBY). Each
-- hit sees the count it would have seen counted alone; counted either way; false when the count
-- is over 'limit'.
local left, spare, count = {}, {}, {}
local function countShared(k, limit, windowEnd, now)
  local c
  if spare[k] == nil then
    local n = left[k]
    c = redis.call('INCRBY', k, n)
    if c == n then redis.call('PEXPIRE', k, int(windowEnd - now + slack)) end
    c = c - n + 1
    spare[k] = n - 1
  else
    spare[k] = spare[k] - 1
    c = count[k] + 1
  end
  count[k] = c
  return c <= limit
end

-- Runs a call's items ('run'), then finishes what they began (the counters' unused reservations
-- returned, the index entries written) and answers the error that stopped them, if one did: an
-- error reply of a command (a foreign value under the store's keys) or a bug leaves the items
-- before it whole, as if each had written alone. Nil when none did.
local function finishing(run)
  local ok, failure = pcall(run)
  for k, n in pairs(spare) do
    if n > 0 then redis.call('DECRBY', k, n) end
  end
  flushIndexes()
  if ok then return nil end
  if type(failure) == 'table' and failure.err then return redis.error_reply(failure.err) end
  return redis.error_reply(tostring(failure))
end

-- The record (payer shard). mode 'i' inserts (a new key: the id is fresh); 'o' the key names this
-- very payment (a retry after a Cluster crash between the phases): inserts unless it is there;
-- 'n' the key names another payment: reads it. T[from..to] are the record's fields.
local function createRecord(kRec, kPayer, kDue, mode, id, due, retire, T, from, to)
  if mode ~= 'i' then
    local r = load(kRec)
    if r then return { 'replayed', values(r) } end
    if mode == 'n' then return { 'missing', id } end
  end
  redis.call('HSET', kRec, unpack(T, from, to))
  addIndex(kPayer, 0, id)
  if due ~= '' then addIndex(kDue, due, id) end
  if retire == '1' and retention > 0 then redis.call('PEXPIRE', kRec, int(retention)) end
  return { 'created' }
end
`;

/**
 * Single Redis: every item whole, memory's order in one script: the key is claimed for the
 * payment (SET NX GET); a live one answers; else the counters count in order and the first over
 * its limit turns the claim into the refusal (one more SET, only then); else the merchant index
 * and the record. A counter several items of the call name (a number prefix, a merchant's phone
 * lookups) is written once per call, not once per hit (`countShared`), and so is each index
 * (merchant, payer, due): one ZADD per index key of the call, at its end (`addIndex`).
 * KEYS: every key of the call once (batch.ts `sharedKeyCalls`). ARGV from 3, per item one
 * argument, its strings packed (pack.ts; the script's table I): fingerprint, keyTtlMs, nowMs,
 * payment id, due ('' or ms), retire ('1': final and not due), rate count n, field count f, then
 * limit and window end (ms) per counter, then the record's f field/value strings, then the
 * positions (numbers) in KEYS of its create key, merchant index, record, payer index, due index
 * and n rate counters.
 * Returns (packed: `cmsgpack.pack`, pack.ts `unpackReply`) per item: {'created'} | {'replayed', record} | {'missing', id} | {'refused', token} | {'conflict'}.
 */
export const createAllLua = `${commonLua}${createFunctions}
local function claimAndCount(kKey, kIdx, I, at, fp, ttl, now, id, rates)
  local px = int(ttl + slack)
  local value = entry(fp, now + ttl, 'p:' .. id)
  local old, written = claim(kKey, value, px, now)
  if old then return named(old, fp) end
  for h = 0, rates - 1 do
    if not countShared(KEYS[I[at + 5 + h]], tonumber(I[9 + 2 * h]), tonumber(I[10 + 2 * h]), now) then
      local refusal = 'rate:' .. h
      redis.call('SET', kKey, entry(fp, now + ttl, refusal), 'PX', px)
      return 'refused', refusal
    end
  end
  if not written then redis.call('SET', kKey, value, 'PX', px) end
  addIndex(kIdx, 0, id)
  return 'new', id
end

-- Every item unpacked once, its counters' references counted.
local items = {}
for a = 3, #ARGV do
  local I = { cmsgpack.unpack(ARGV[a]) }
  items[a] = I
  local rates = tonumber(I[7])
  local at = 9 + 2 * rates + tonumber(I[8])
  for h = 0, rates - 1 do
    local k = KEYS[I[at + 5 + h]]
    left[k] = (left[k] or 0) + 1
  end
end

local out = {}
local failed = finishing(function()
  for a = 3, #ARGV do
    local I = items[a]
    local fp, ttl, now, id, due, retire = I[1], tonumber(I[2]), tonumber(I[3]), I[4], I[5], I[6]
    local rates, fields = tonumber(I[7]), tonumber(I[8])
    local from = 9 + 2 * rates
    local at = from + fields -- its keys' positions in KEYS
    local kKey, kIdx, kRec, kPayer, kDue = KEYS[I[at]], KEYS[I[at + 1]], KEYS[I[at + 2]], KEYS[I[at + 3]], KEYS[I[at + 4]]
    local status, value = claimAndCount(kKey, kIdx, I, at, fp, ttl, now, id, rates)
    for h = 0, rates - 1 do
      local k = KEYS[I[at + 5 + h]]
      left[k] = left[k] - 1
    end
    if status == 'conflict' then
      out[#out + 1] = { 'conflict' }
    elseif status == 'refused' then
      out[#out + 1] = { 'refused', value }
    elseif status == 'new' then
      out[#out + 1] = createRecord(kRec, kPayer, kDue, 'i', id, due, retire, I, from, from + fields - 1)
    elseif value == id then
      out[#out + 1] = createRecord(kRec, kPayer, kDue, 'o', id, due, retire, I, from, from + fields - 1)
    else
      out[#out + 1] = createRecord(recordKey(kKey, value), nil, nil, 'n', value, '', '0', I, 0, -1)
    end
  end
end)
if failed then return failed end
return cmsgpack.pack(out)
`;

/**
 * Cluster phase "key" (one merchant slot). KEYS per item: create key, merchant index. ARGV from
 * 3, per item: mode ('c' | 'r' | 'k'), fingerprint, keyTtlMs, nowMs, payment id or refusal.
 * Returns per item {status, value} (see createKey).
 */
export const createKeyLua = `${commonLua}${createFunctions}
local out = {}
local failed = finishing(function()
  for i = 0, #KEYS / 2 - 1 do
    local a = 3 + 5 * i
    local status, value = createKey(KEYS[2 * i + 1], KEYS[2 * i + 2], ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), ARGV[a + 4])
    out[i + 1] = { status, value }
  end
end)
if failed then return failed end
return out
`;

/** Cluster phase "count" (one counter slot). KEYS: counters (of their windows). ARGV from 3, per counter: limit, window end (ms), nowMs. Returns 1 (within its limit) or 0 (over) per counter; every hit counts. */
export const createCountLua = `${commonLua}${createFunctions}
for i = 1, #KEYS do left[KEYS[i]] = (left[KEYS[i]] or 0) + 1 end
local out = {}
local failed = finishing(function()
  for i = 1, #KEYS do
    local a = 3 * i
    out[i] = countShared(KEYS[i], tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])) and 1 or 0
    left[KEYS[i]] = left[KEYS[i]] - 1
  end
end)
if failed then return failed end
return out
`;

/**
 * Cluster phase "record" (one payer shard). KEYS per item: record, payer index, due index. ARGV
 * from 3, per item: mode ('i' | 'o' | 'n'), payment id, due, retire, field count f, f strings.
 * Returns per item what createAllLua returns for it.
 */
export const createRecordLua = `${commonLua}${createFunctions}
local out = {}
local failed = finishing(function()
  local a = 3
  for i = 0, #KEYS / 3 - 1 do
    local fields = tonumber(ARGV[a + 4])
    out[i + 1] = createRecord(KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV, a + 5, a + 4 + fields)
    a = a + 5 + fields
  end
end)
if failed then return failed end
return out
`;
