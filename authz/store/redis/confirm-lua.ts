import { commonLua, guardLua } from './lua-common.js';

/**
 * The confirm step, following memory/state.ts `confirm` check by check. All of an item's keys
 * are in its payment's shard; the payer's guard key is derived from the record's payer
 * (`tagPrefix`: the same shard, hence the same slot).
 *
 * KEYS per item: record, idempotency record, due index. ARGV[1] slack, ARGV[2..5] the lockout
 * policy, then per item (13): payment id, fingerprint, keyTtlMs, nowMs, factor digit, `after`
 * digits, answer kind ('d' digest | 'w' wrong | 'a' accept | 'x' decline), answer 1 (digest |
 * '+'bank code or '' | decline reason), answer 2 (decline detail), attemptsMax, driveLeaseMs,
 * caller merchant (''), caller payer ('').
 * Returns per item: {outcome} | {outcome, extra, record}; extra: the refusal, the attempts left,
 * the retry-after ms or the replayed result.
 */
export const confirmLua = `${commonLua}${guardLua}
-- Constant-time comparison of two digests (false when either is empty or the lengths differ).
local function same(stored, given)
  if #stored == 0 or #stored ~= #given then return false end
  local diff = 0
  for j = 1, #stored do diff = bit.bor(diff, bit.bxor(string.byte(stored, j), string.byte(given, j))) end
  return diff == 0
end

local function due(kDue, r, changes, id, at)
  if r.du == at then return end
  add(changes, 'du', at)
  redis.call('ZADD', kDue, at, id)
end

-- A final state (or EXPIRED/DECLINED) reached in a step: challenges gone, due for the void after the drive lease.
local function finish(kRec, kDue, r, id, now, lease, changes)
  if (r.sc or '') ~= '' then add(changes, 'sc', '') end
  for i = 0, 6 do
    if (r['d' .. i] or '') ~= '' then add(changes, 'd' .. i, '') end
  end
  add(changes, 'up', int(now))
  add(changes, 'v', bump(r))
  due(kDue, r, changes, id, int(now + lease))
  save(kRec, r, changes)
end

local function satisfy(kRec, kDue, r, id, f, bank, attemptsMax, now, lease)
  local sf = r.sf .. f
  local changes = { 'sf', sf, 'd' .. f, '', 'al', attemptsMax, 'up', int(now), 'v', bump(r) }
  if bank ~= '' then add(changes, 'ba', bank) end
  local approved = true
  for j = 1, #r.rq do
    if not has(sf, string.sub(r.rq, j, j)) then
      approved = false
      break
    end
  end
  if approved then
    add(changes, 'st', 'APPROVED')
    if (r.sc or '') ~= '' then add(changes, 'sc', '') end
    due(kDue, r, changes, id, int(now + lease))
  end
  save(kRec, r, changes)
end

-- The checks after the key, in memory/state.ts's order. Returns outcome, extra.
local function decide(kRec, kDue, r, a, now)
  local id, lease = ARGV[a], tonumber(ARGV[a + 10])
  if r.st == 'APPROVED' then return 'approved', '' end
  if r.st ~= 'CHALLENGED' then return 'refused', 'state:' .. r.st end
  local f = ARGV[a + 4]
  if not has(r.rq, f) or has(r.sf, f) then return 'refused', 'factor' end
  local after = ARGV[a + 5]
  for j = 1, #after do
    local g = string.sub(after, j, j)
    if has(r.rq, g) and not has(r.sf, g) then return 'refused', 'order' end
  end
  if now >= tonumber(r.ex) then
    finish(kRec, kDue, r, id, now, lease, { 'st', 'EXPIRED' })
    return 'expired', ''
  end
  local kGuard = tagPrefix(kRec) .. 'g:' .. r.py
  local guard = liveGuard(readGuard(kGuard), now)
  if guard and guard.lockedUntil > now then
    finish(kRec, kDue, r, id, now, lease, { 'st', 'DECLINED', 'dr', '+ATTEMPTS_EXHAUSTED', 'dd', '+payer locked out' })
    return 'locked', int(guard.lockedUntil - now)
  end
  local kind = ARGV[a + 6]
  if kind == 'x' then
    finish(kRec, kDue, r, id, now, lease, { 'st', 'DECLINED', 'dr', '+' .. ARGV[a + 7], 'dd', '+' .. ARGV[a + 8] })
    return 'declined', ''
  end
  if kind == 'a' or (kind == 'd' and same(r['d' .. f] or '', ARGV[a + 7])) then
    if kind ~= 'a' then guardSuccess(kGuard, guard, now) end
    local bank = ''
    if kind == 'a' then bank = ARGV[a + 7] end
    satisfy(kRec, kDue, r, id, f, bank, ARGV[a + 9], now, lease)
    return 'satisfied', ''
  end
  guardFailure(kGuard, guard, now)
  local left = tonumber(r.al) - 1
  if left <= 0 then
    finish(kRec, kDue, r, id, now, lease, { 'st', 'DECLINED', 'dr', '+ATTEMPTS_EXHAUSTED', 'dd', '+too many wrong answers', 'al', '0' })
    return 'exhausted', ''
  end
  save(kRec, r, { 'al', int(left), 'up', int(now), 'v', bump(r) })
  return 'mismatch', int(left)
end

-- What a confirm stores under its key.
local function resultOf(outcome, extra)
  if outcome == 'refused' then return extra end
  if outcome == 'mismatch' or outcome == 'locked' then return outcome .. ':' .. extra end
  if outcome == 'expired' or outcome == 'exhausted' then return outcome end
  return 'p'
end

local function confirmItem(kRec, kOp, kDue, a)
  local r = load(kRec)
  local merchant, payer = ARGV[a + 11], ARGV[a + 12]
  if not r or (merchant ~= '' and r.m ~= merchant) or (payer ~= '' and r.py ~= payer) then return { 'not_found' } end
  local fp, ttl, now = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local px = int(ttl + slack)
  local old, written = claim(kOp, entry(fp, now + ttl, 'p'), px, now)
  if old then
    local ofp, _, result = parseEntry(old)
    if ofp ~= fp then return { 'conflict' } end
    return { 'replayed', result, flatten(r) }
  end
  local outcome, extra = decide(kRec, kDue, r, a, now)
  local result = resultOf(outcome, extra)
  if result ~= 'p' or not written then redis.call('SET', kOp, entry(fp, now + ttl, result), 'PX', px) end
  return { outcome, extra, flatten(r) }
end

local out = {}
for i = 0, #KEYS / 3 - 1 do
  out[i + 1] = confirmItem(KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3], 6 + 13 * i)
end
return out
`;
