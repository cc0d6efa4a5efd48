import { commonLua, guardLua } from './lua-common.js';

/**
 * The sweeper's claim over some shards' due indexes, in KEYS order, until `limit` records are
 * claimed: each due record (due time ≤ now) gets its due time moved to now + leaseMs in the
 * record and the index, atomically, so a concurrent claimer never gets it. Record keys are
 * derived from the index key's shard (same slot). An index entry whose record is gone is dropped.
 *
 * KEYS: due indexes. ARGV[1] slack, ARGV[2] nowMs, ARGV[3] limit, ARGV[4] leaseMs.
 * Returns {shards examined, record, record, …}.
 */
export const claimDueLua = `${commonLua}
local now, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local at = int(now + tonumber(ARGV[4]))
local out = { 0 }
local claimed = 0
for i = 1, #KEYS do
  out[1] = i
  local kDue = KEYS[i]
  local prefix = tagPrefix(kDue)
  local ids = redis.call('ZRANGEBYSCORE', kDue, '-inf', int(now), 'LIMIT', 0, int(limit - claimed))
  for _, id in ipairs(ids) do
    local kRec = prefix .. 'p:' .. id
    local r = load(kRec)
    if r then
      save(kRec, r, { 'du', at })
      redis.call('ZADD', kDue, at, id)
      claimed = claimed + 1
      out[#out + 1] = values(r)
    else
      redis.call('ZREM', kDue, id)
    end
  end
  if claimed >= limit then break end
end
return out
`;

/**
 * Guard events in order (memory/state.ts \`guard\`). KEYS: the payers' guards. ARGV[1] slack,
 * ARGV[2..5] the lockout policy, then per event: kind ('c' check | 'f' failure | 's' success), nowMs.
 * Returns per event the milliseconds the payer is locked out for, or -1 when not locked.
 */
export const guardEventsLua = `${commonLua}${guardLua}
local out = {}
for i = 1, #KEYS do
  local kind, now = ARGV[4 + 2 * i], tonumber(ARGV[5 + 2 * i])
  local g = liveGuard(readGuard(KEYS[i]), now)
  if not (g and g.lockedUntil > now) then
    if kind == 's' then
      guardSuccess(KEYS[i], g, now)
    elseif kind == 'f' then
      g = guardFailure(KEYS[i], g, now)
    end
  end
  if g and g.lockedUntil > now then out[i] = g.lockedUntil - now else out[i] = -1 end
end
return out
`;
