import { recordFields } from './record-codec.js';

/**
 * Lua shared by the scripts (prepended to each). Conventions: ARGV[1] is always the expiry
 * slack (ms); numbers go to Redis and into values through `int` (`%d`: exact up to 2^53, where
 * Lua's tostring keeps 14 digits); every time decision compares with the item's `now`, never
 * with the server's clock; Redis TTLs (`PX`) are relative to the item's own times plus the
 * slack, so Redis reclaims an entry only after the store considers it dead (README.md, "Time").
 */
export const commonLua = `
local slack = tonumber(ARGV[1])
local function int(n) return string.format('%d', n) end

-- An idempotency record: '<fingerprint (64 hex)>:<expiresAtMs>:<result>'.
local function entry(fp, exp, result) return fp .. ':' .. int(exp) .. ':' .. result end
local function parseEntry(v)
  local colon = string.find(v, ':', 66, true)
  return string.sub(v, 1, 64), tonumber(string.sub(v, 66, colon - 1)), string.sub(v, colon + 1)
end

-- Claims an idempotency key with one command (SET NX GET). Returns the live stored value when the
-- key is taken; else nil and whether 'value' is stored (false: a dead entry Redis still holds is
-- in the way, and the caller overwrites it).
local function claim(key, value, px, now)
  local old = redis.call('SET', key, value, 'NX', 'GET', 'PX', px)
  if not old then return nil, true end
  local _, exp = parseEntry(old)
  if exp > now then return old, false end
  return nil, false
end

-- A payment record (HASH) as a table of its fields, nil when absent. The same pass notes its
-- operation keys' fields ('o:…', record-codec.ts) at r[1] — looking at the first bytes only of a
-- field outside recordFields, so a field another version wrote is left alone (bench/README.md,
-- round 9). Numeric keys: no field name is a number.
local recordField = { ${recordFields.map((f) => `['${f}'] = true`).join(', ')} }
local recordFieldList = { ${recordFields.map((f) => `'${f}'`).join(', ')} }
local function load(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return nil end
  local ops = {}
  local r = { ops }
  for i = 1, #flat, 2 do
    local f = flat[i]
    r[f] = flat[i + 1]
    if not recordField[f] then
      local a, b = string.byte(f, 1, 2)
      if a == 111 and b == 58 then ops[#ops + 1] = f end
    end
  end
  return r
end
-- A record as a reply: its fields' values in recordFields order, false for a missing one
-- (record-codec.ts decodeRecordValues; no field names, no operation keys: a confirm's reply 788 → 453
-- bytes an item, redis-server about 2.5 µs and the client about 4 µs less per record than the
-- HGETALL with the script's writes appended: bench/README.md, round 10).
local function values(r)
  local out = {}
  for i = 1, #recordFieldList do out[i] = r[recordFieldList[i]] or false end
  return out
end
-- One HSET with every change (field, value, ...), mirrored into r; nothing when nothing changed.
local function save(key, r, changes)
  if #changes == 0 then return end
  redis.call('HSET', key, unpack(changes))
  for i = 1, #changes, 2 do r[changes[i]] = changes[i + 1] end
end
local function add(changes, field, value)
  changes[#changes + 1] = field
  changes[#changes + 1] = value
end
local function bump(r) return int(tonumber(r.v) + 1) end

-- The live idempotency record of an operation on the payment (field 'o:…' of r), or nil.
local function liveOperation(r, field, now)
  local v = r[field]
  if not v then return nil end
  local fp, exp, result = parseEntry(v)
  if exp <= now then return nil end
  return fp, result
end

-- Writes the record's changes and an operation's idempotency record in one HSET (port.ts,
-- "Keys"): the key always when 'changed' (the operation changed the record), else only while the
-- payment holds fewer than 'keysMax' live keys; expired keys go (HDEL) with the write.
local function saveWithKey(kRec, r, changes, changed, field, value, now, keysMax)
  local live, dead = 0, {}
  for _, f in ipairs(r[1]) do
    local _, exp = parseEntry(r[f])
    if exp > now then live = live + 1 elseif f ~= field then dead[#dead + 1] = f end
  end
  if changed or live < keysMax then add(changes, field, value) end
  if #changes == 0 then return end
  if #dead > 0 then
    redis.call('HDEL', kRec, unpack(dead))
    for _, f in ipairs(dead) do r[f] = nil end
  end
  save(kRec, r, changes)
end
-- Factor sets are strings of factor digits.
local function has(set, digit) return string.find(set, digit, 1, true) ~= nil end

-- The key of a record from its id (the shard sits in bits 74..79: hex digits 13-14) and any
-- key of the same store (for its prefix).
local function recordKey(like, id)
  local shard = math.floor(tonumber(string.sub(id, 13, 14), 16) / 4) % 64
  return string.match(like, '^(.-):{') .. string.format(':{s%02d}:p:', shard) .. id
end
-- 'ps:{sNN}:' of a key in a store shard: keys derived in a script keep the declared key's slot.
local function tagPrefix(key) return string.match(key, '^[^}]*}:') end

local final = { SUCCEEDED = true, DECLINED = true, EXPIRED = true, CANCELLED = true }
`;

/**
 * The payer's guard (failure streak, lockout count, lockout): STRING
 * 'streak:lockouts:lockedUntilMs:expiresAtMs'. Needs the lockout policy at ARGV[2..5]:
 * failuresMax, backoffBaseMs, backoffMaxMs, memoryMs. Mirrors memory/state.ts (liveGuard,
 * guardSuccess, guardFailure).
 */
export const guardLua = `
local failuresMax, backoffBase, backoffMax, memoryMs = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])

local function lockoutMs(before) return math.min(backoffBase * math.pow(2, math.min(before, 40)), backoffMax) end

-- A guard's value as GET or MGET returns it (false when absent).
local function parseGuard(v)
  if not v then return nil end
  local s, l, u, e = string.match(v, '^(%d+):(%d+):(%d+):(%d+)$')
  return { streak = tonumber(s), lockouts = tonumber(l), lockedUntil = tonumber(u), exp = tonumber(e) }
end

local function readGuard(key) return parseGuard(redis.call('GET', key)) end

-- The guard as the policy sees it at now: nil when forgotten; streak and count forgotten while still locked.
local function liveGuard(g, now)
  if not g then return nil end
  local streakLive = g.exp > now
  if not streakLive and g.lockedUntil <= now then return nil end
  if streakLive then return g end
  return { streak = 0, lockouts = 0, lockedUntil = g.lockedUntil, exp = g.exp }
end

local function writeGuard(key, g, now, keepTtl)
  local value = int(g.streak) .. ':' .. int(g.lockouts) .. ':' .. int(g.lockedUntil) .. ':' .. int(g.exp)
  if keepTtl then
    redis.call('SET', key, value, 'KEEPTTL')
  else
    redis.call('SET', key, value, 'PX', int(math.max(g.exp, g.lockedUntil) - now + slack))
  end
end

local function guardSuccess(key, g, now)
  if g and g.streak > 0 then writeGuard(key, { streak = 0, lockouts = g.lockouts, lockedUntil = g.lockedUntil, exp = g.exp }, now, true) end
end

-- One more consecutive failure; at failuresMax the payer is locked out and the streak restarts.
local function guardFailure(key, g, now)
  local b = g or { streak = 0, lockouts = 0, lockedUntil = 0, exp = 0 }
  local e = { streak = b.streak + 1, lockouts = b.lockouts, lockedUntil = b.lockedUntil, exp = now + memoryMs }
  if e.streak >= failuresMax then
    e = { streak = 0, lockouts = b.lockouts + 1, lockedUntil = now + lockoutMs(b.lockouts), exp = now + memoryMs }
  end
  writeGuard(key, e, now, false)
  return e
end
`;
