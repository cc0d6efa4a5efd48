import { commonLua, guardLua } from './lua-common.js';

/**
 * The confirm step, following memory/state.ts `confirm` check by check. An item touches its
 * payment's record only (its idempotency record is a field of it: record-codec.ts) and the
 * payer's guards, derived from the record's payer (`tagPrefix`: the same shard, hence the same
 * slot): the payer-wide `g:<payer>`, and for a merchant's call (caller merchant set) also
 * `g:<payer>/m:<merchant>`, the one its answers count in (keys.ts). The record's changes and the idempotency record are one HSET; the due time is left
 * alone (port.ts: the caller posts or voids at once).
 *
 * KEYS per item: record. ARGV[1] slack, ARGV[2..5] the lockout policy, ARGV[6]
 * operationKeysPerPaymentMax, then per item one argument, its 13 strings packed (pack.ts; the
 * script's table I): payment id, fingerprint, keyTtlMs, nowMs,
 * factor digit, `after` digits, answer kind ('d' digest | 'w' wrong | 'a' accept | 'x' decline),
 * answer 1 (digest | '+'bank code or '' | decline reason), answer 2 (decline detail),
 * attemptsMax, caller merchant (''), caller payer (''), the key's field.
 * Returns (packed: `cmsgpack.pack`, pack.ts `unpackReply`) per item: {outcome} | {outcome, extra, record}; extra: the refusal, the attempts left,
 * the retry-after ms or the replayed result.
 */
export const confirmLua = `${commonLua}${guardLua}
local keysMax = tonumber(ARGV[6])

-- Whether two digests are equal (false when either is empty or the lengths differ), compared
-- through their SHA-1s ("double hashing"): the time the comparison takes depends on the hashes
-- only, never on how much of the stored digest the given one matches. A byte loop in Lua did
-- the same in 7.9 µs per compare, this 0.9 µs (redis-server, 64 hex digits).
local function same(stored, given)
  if #stored == 0 or #stored ~= #given then return false end
  return redis.sha1hex(stored) == redis.sha1hex(given)
end

-- A final state (or EXPIRED/DECLINED) reached in a step: challenges gone. Returns the changes.
local function finish(r, now, changes)
  if (r.sc or '') ~= '' then add(changes, 'sc', '') end
  for i = 0, 6 do
    if (r['d' .. i] or '') ~= '' then add(changes, 'd' .. i, '') end
  end
  add(changes, 'up', int(now))
  add(changes, 'v', bump(r))
  return changes
end

local function satisfy(r, f, bank, attemptsMax, now)
  local sf = r.sf .. f
  local changes = { 'sf', sf, 'd' .. f, '', 'al', attemptsMax, 'up', int(now), 'v', bump(r) }
  if bank ~= '' then add(changes, 'ba', bank) end
  for j = 1, #r.rq do
    if not has(sf, string.sub(r.rq, j, j)) then return changes end
  end
  add(changes, 'st', 'APPROVED')
  if (r.sc or '') ~= '' then add(changes, 'sc', '') end
  return changes
end

-- The checks after the key, in memory/state.ts's order. Returns outcome, extra, the record's changes.
local function decide(kRec, r, I, now)
  if r.st == 'APPROVED' then return 'approved', '', {} end
  if r.st ~= 'CHALLENGED' then return 'refused', 'state:' .. r.st, {} end
  local f = I[5]
  if not has(r.rq, f) or has(r.sf, f) then return 'refused', 'factor', {} end
  local after = I[6]
  for j = 1, #after do
    local g = string.sub(after, j, j)
    if has(r.rq, g) and not has(r.sf, g) then return 'refused', 'order', {} end
  end
  if now >= tonumber(r.ex) then return 'expired', '', finish(r, now, { 'st', 'EXPIRED' }) end
  -- The payer-wide guard always; a merchant's call also its (payer, merchant) guard, where it counts (port.ts "Lockout scopes").
  local kGuard = tagPrefix(kRec) .. 'g:' .. r.py
  local merchant = I[11]
  local wide, guard
  if merchant == '' then
    wide = liveGuard(readGuard(kGuard), now)
    guard = wide
  else
    local kWide = kGuard
    kGuard = kWide .. '/m:' .. merchant
    local v = redis.call('MGET', kWide, kGuard)
    wide, guard = liveGuard(parseGuard(v[1]), now), liveGuard(parseGuard(v[2]), now)
  end
  local lockedUntil = math.max(wide and wide.lockedUntil or 0, guard and guard.lockedUntil or 0)
  if lockedUntil > now then
    return 'locked', int(lockedUntil - now), finish(r, now, { 'st', 'DECLINED', 'dr', '+ATTEMPTS_EXHAUSTED', 'dd', '+payer locked out' })
  end
  local kind = I[7]
  if kind == 'x' then return 'declined', '', finish(r, now, { 'st', 'DECLINED', 'dr', '+' .. I[8], 'dd', '+' .. I[9] }) end
  if kind == 'a' or (kind == 'd' and same(r['d' .. f] or '', I[8])) then
    if kind ~= 'a' then guardSuccess(kGuard, guard, now) end
    local bank = ''
    if kind == 'a' then bank = I[8] end
    return 'satisfied', '', satisfy(r, f, bank, I[10], now)
  end
  guardFailure(kGuard, guard, now)
  local left = tonumber(r.al) - 1
  if left <= 0 then
    return 'exhausted', '', finish(r, now, { 'st', 'DECLINED', 'dr', '+ATTEMPTS_EXHAUSTED', 'dd', '+too many wrong answers', 'al', '0' })
  end
  return 'mismatch', int(left), { 'al', int(left), 'up', int(now), 'v', bump(r) }
end

-- What a confirm stores under its key.
local function resultOf(outcome, extra)
  if outcome == 'refused' then return extra end
  if outcome == 'mismatch' or outcome == 'locked' then return outcome .. ':' .. extra end
  if outcome == 'expired' or outcome == 'exhausted' then return outcome end
  return 'p'
end

local function confirmItem(kRec, I)
  local r = load(kRec)
  local merchant, payer = I[11], I[12]
  if not r or (merchant ~= '' and r.m ~= merchant) or (payer ~= '' and r.py ~= payer) then return { 'not_found' } end
  local fp, ttl, now, field = I[2], tonumber(I[3]), tonumber(I[4]), I[13]
  local ofp, result = liveOperation(r, field, now)
  if ofp then
    if ofp ~= fp then return { 'conflict' } end
    return { 'replayed', result, values(r) }
  end
  local outcome, extra, changes = decide(kRec, r, I, now)
  saveWithKey(kRec, r, changes, #changes > 0, field, entry(fp, now + ttl, resultOf(outcome, extra)), now, keysMax)
  return { outcome, extra, values(r) }
end

local out = {}
for i = 1, #KEYS do
  out[i] = confirmItem(KEYS[i], { cmsgpack.unpack(ARGV[6 + i]) })
end
return cmsgpack.pack(out)
`;
