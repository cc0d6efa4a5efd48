/**
 * The challenge store's Lua scripts. Each runs as one EVALSHA (ioredis `defineCommand`), one
 * round trip, atomically, and touches only keys that share one hash tag (one Redis Cluster slot).
 */

/**
 * KEYS: challenge, streak, lockouts, locked (all `cs:{payer:<payerId>}:...`).
 * ARGV: digest, force ('1' = count a failure without comparing), failuresMax, backoffBaseMs,
 * backoffMaxMs, memoryMs.
 * Returns {'locked', pttl} | {'not_found'} | {'ok', index} | {'exhausted'} | {'mismatch', left}.
 */
export const verifyLua = `
local pttl = redis.call('PTTL', KEYS[4])
if pttl > 0 then return {'locked', pttl} end
if pttl == -1 then return {'locked', tonumber(ARGV[5])} end
local stored = redis.call('HMGET', KEYS[1], 'left', 'd')
if not stored[1] then return {'not_found'} end
local matched = -1
if ARGV[2] ~= '1' then
  local digest = ARGV[1]
  local i = 0
  for candidate in string.gmatch(stored[2], '[^,]+') do
    local diff = 0
    if #candidate ~= #digest then diff = 1 end
    for j = 1, math.min(#candidate, #digest) do
      diff = bit.bor(diff, bit.bxor(string.byte(candidate, j), string.byte(digest, j)))
    end
    if diff == 0 and matched < 0 then matched = i end
    i = i + 1
  end
end
if matched >= 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'ok', matched}
end
local memoryMs = tonumber(ARGV[6])
local streak = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], memoryMs)
if streak >= tonumber(ARGV[3]) then
  local before = tonumber(redis.call('GET', KEYS[3]) or '0')
  local lockMs = math.min(tonumber(ARGV[4]) * math.pow(2, math.min(before, 40)), tonumber(ARGV[5]))
  redis.call('SET', KEYS[4], '1', 'PX', math.floor(lockMs))
  redis.call('INCR', KEYS[3])
  redis.call('PEXPIRE', KEYS[3], memoryMs)
  redis.call('DEL', KEYS[2])
end
local left = tonumber(stored[1]) - 1
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return {'exhausted'}
end
redis.call('HSET', KEYS[1], 'left', left)
return {'mismatch', left}
`;

/** KEYS: challenge. ARGV: attemptsMax, comma-joined digests, ttlMs. Replaces any previous one. */
export const putChallengeLua = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'left', ARGV[1], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/**
 * KEYS: idempotency hash. ARGV: fingerprint, ttlMs[, resultIfNew]. Claims the key when absent
 * (SET NX semantics); with resultIfNew the new key is stored as done with it at once.
 * Returns {'new'} | {'conflict'} | {'done', result} | {'in_progress'}.
 */
export const beginIdempotencyLua = `
local stored = redis.call('HMGET', KEYS[1], 'fp', 'state', 'result')
if not stored[1] then
  if ARGV[3] then
    redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'done', 'result', ARGV[3])
  else
    redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'pending')
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'new'}
end
if stored[1] ~= ARGV[1] then return {'conflict'} end
if stored[2] == 'done' then return {'done', stored[3]} end
return {'in_progress'}
`;

/** KEYS: idempotency hash. ARGV: fingerprint, result, ttlMs. Returns 0 when another fingerprint holds the key. */
export const completeIdempotencyLua = `
local fp = redis.call('HGET', KEYS[1], 'fp')
if fp and fp ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'done', 'result', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/** KEYS: idempotency hash. Releases a claim still in progress; a stored result stays. */
export const abandonIdempotencyLua = `
if redis.call('HGET', KEYS[1], 'state') == 'pending' then redis.call('DEL', KEYS[1]) end
return 1
`;

/** KEYS: window counter. ARGV: limit, windowMs. Fixed window; a refused event is not counted. */
export const rateLimitLua = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
if count == 0 or redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`;

/**
 * M5 pay numbers. KEYS[1] = the number's key; ARGV[1] = claimant. The value is the payer id,
 * then `<payer id>|<claimant>` once used. Returns the payer id, or nil when unknown, expired or
 * used by another claimant.
 */
export const takePayNumberLua = `
local value = redis.call('GET', KEYS[1])
if not value then return nil end
local bar = string.find(value, '|', 1, true)
if not bar then
  redis.call('SET', KEYS[1], value .. '|' .. ARGV[1], 'KEEPTTL')
  return value
end
if string.sub(value, bar + 1) == ARGV[1] then return string.sub(value, 1, bar - 1) end
return nil
`;
