/**
 * The challenge store's Lua scripts. Each runs as one EVALSHA (`redisScripts`), one
 * round trip, atomically, and touches only keys that share one hash tag (one Redis Cluster slot).
 */

/**
 * The verification of one response, as a Lua function shared by the single and the batch script.
 * Keys: challenge, streak, lockouts, locked (all `cs:{payer:<payerId>}:...`). Returns two values:
 * 'locked', pttl | 'not_found', 0 | 'ok', index | 'exhausted', 0 | 'mismatch', left.
 */
const verifyFunction = `
local function verify(kChallenge, kStreak, kLockouts, kLocked, digest, force, failuresMax, backoffBaseMs, backoffMaxMs, memoryMs)
  local pttl = redis.call('PTTL', kLocked)
  if pttl > 0 then return 'locked', pttl end
  if pttl == -1 then return 'locked', tonumber(backoffMaxMs) end
  local stored = redis.call('HMGET', kChallenge, 'left', 'd')
  if not stored[1] then return 'not_found', 0 end
  local matched = -1
  if force ~= '1' then
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
    redis.call('DEL', kChallenge, kStreak)
    return 'ok', matched
  end
  local memory = tonumber(memoryMs)
  local streak = redis.call('INCR', kStreak)
  redis.call('PEXPIRE', kStreak, memory)
  if streak >= tonumber(failuresMax) then
    local before = tonumber(redis.call('GET', kLockouts) or '0')
    local lockMs = math.min(tonumber(backoffBaseMs) * math.pow(2, math.min(before, 40)), tonumber(backoffMaxMs))
    redis.call('SET', kLocked, '1', 'PX', math.floor(lockMs))
    redis.call('INCR', kLockouts)
    redis.call('PEXPIRE', kLockouts, memory)
    redis.call('DEL', kStreak)
  end
  local left = tonumber(stored[1]) - 1
  if left <= 0 then
    redis.call('DEL', kChallenge)
    return 'exhausted', 0
  end
  redis.call('HSET', kChallenge, 'left', left)
  return 'mismatch', left
end
`;

/**
 * KEYS: challenge, streak, lockouts, locked (all `cs:{payer:<payerId>}:...`).
 * ARGV: digest, force ('1' = count a failure without comparing), failuresMax, backoffBaseMs,
 * backoffMaxMs, memoryMs.
 * Returns {'locked', pttl} | {'not_found'} | {'ok', index} | {'exhausted'} | {'mismatch', left}.
 */
export const verifyLua = `${verifyFunction}
local outcome, value = verify(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
if outcome == 'not_found' or outcome == 'exhausted' then return {outcome} end
return {outcome, value}
`;

/**
 * Many verifications in order. KEYS: the four keys of `verifyLua` per request. ARGV:
 * failuresMax, backoffBaseMs, backoffMaxMs, memoryMs, then digest and force per request.
 * Returns outcome, value per request (value 0 where `verifyLua` has none).
 */
export const verifyManyLua = `${verifyFunction}
local out = {}
for i = 0, #KEYS / 4 - 1 do
  local outcome, value = verify(KEYS[4 * i + 1], KEYS[4 * i + 2], KEYS[4 * i + 3], KEYS[4 * i + 4], ARGV[5 + 2 * i], ARGV[6 + 2 * i], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
  out[2 * i + 1] = outcome
  out[2 * i + 2] = value
end
return out
`;

/** KEYS: challenge. ARGV: attemptsMax, comma-joined digests, ttlMs. Replaces any previous one. */
export const putChallengeLua = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'left', ARGV[1], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/**
 * Many challenges. KEYS: the challenge's payer index (`cs:{ch:<id>}:payer`) and the challenge,
 * per challenge. ARGV: payer id, attemptsMax, comma-joined digests, ttlMs per challenge. Does what
 * `putChallenge` does with its two commands; returns the position (0-based) and previous payer of
 * every challenge whose index named another payer (the caller drops that payer's old challenge).
 */
export const putChallengesLua = `
local moved = {}
for i = 0, #KEYS / 2 - 1 do
  local payer, ttl = ARGV[4 * i + 1], ARGV[4 * i + 4]
  local previous = redis.call('SET', KEYS[2 * i + 1], payer, 'PX', ttl, 'GET')
  local challenge = KEYS[2 * i + 2]
  redis.call('DEL', challenge)
  redis.call('HSET', challenge, 'left', ARGV[4 * i + 2], 'd', ARGV[4 * i + 3])
  redis.call('PEXPIRE', challenge, ttl)
  if previous and previous ~= payer then
    moved[#moved + 1] = i
    moved[#moved + 1] = previous
  end
end
return moved
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

/**
 * Many claims in order, under one scope (one hash tag). KEYS: the idempotency hashes. ARGV: ttlMs,
 * then fingerprint, has-result ('1' / '0') and resultIfNew per claim. Returns status, result per
 * claim (result '' unless done).
 */
export const beginIdempotencyManyLua = `
local out = {}
for i = 1, #KEYS do
  local fp, hasResult, result = ARGV[3 * i - 1], ARGV[3 * i], ARGV[3 * i + 1]
  local stored = redis.call('HMGET', KEYS[i], 'fp', 'state', 'result')
  local status, value = 'in_progress', ''
  if not stored[1] then
    if hasResult == '1' then
      redis.call('HSET', KEYS[i], 'fp', fp, 'state', 'done', 'result', result)
    else
      redis.call('HSET', KEYS[i], 'fp', fp, 'state', 'pending')
    end
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    status = 'new'
  elseif stored[1] ~= fp then
    status = 'conflict'
  elseif stored[2] == 'done' then
    status, value = 'done', stored[3]
  end
  out[2 * i - 1] = status
  out[2 * i] = value
end
return out
`;

/** KEYS: idempotency hash. ARGV: fingerprint, result, ttlMs. Returns 0 when another fingerprint holds the key. */
export const completeIdempotencyLua = `
local fp = redis.call('HGET', KEYS[1], 'fp')
if fp and fp ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'done', 'result', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/**
 * Many results under one scope. KEYS: the idempotency hashes. ARGV: ttlMs, then fingerprint and
 * result per key. Writes nothing and returns 0 when another fingerprint holds any of the keys.
 */
export const completeIdempotencyManyLua = `
for i = 1, #KEYS do
  local fp = redis.call('HGET', KEYS[i], 'fp')
  if fp and fp ~= ARGV[2 * i] then return 0 end
end
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 'fp', ARGV[2 * i], 'state', 'done', 'result', ARGV[2 * i + 1])
  redis.call('PEXPIRE', KEYS[i], ARGV[1])
end
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

/** Many events in order. KEYS: window counters. ARGV: limit and windowMs per counter. Returns 1 (counted) or 0 per event. */
export const rateLimitManyLua = `
local out = {}
for i = 1, #KEYS do
  local limit, window = tonumber(ARGV[2 * i - 1]), ARGV[2 * i]
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count >= limit then
    out[i] = 0
  else
    redis.call('INCR', KEYS[i])
    if count == 0 or redis.call('PTTL', KEYS[i]) == -1 then redis.call('PEXPIRE', KEYS[i], window) end
    out[i] = 1
  end
end
return out
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
