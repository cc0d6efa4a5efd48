import { commonLua } from './lua-common.js';

/**
 * Keyed claims (enrollment; memory/state.ts claimKey, completeKey, releaseKey) and M5 pay
 * numbers: one key each, off the hot path. A claim is a HASH: f fingerprint, r result (absent
 * while claimed), v the first claimant's value, l lease until (ms), x expires at (ms).
 */

/** KEYS[1] claim. ARGV: slack, fingerprint, value, leaseMs, keyTtlMs, nowMs. Returns {'claimed', value, '1'|'0'} | {'done', result} | {'in_progress', ms} | {'conflict'}. */
export const claimKeyLua = `${commonLua}
local fp, value, leaseMs, ttl, now = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local s = redis.call('HMGET', KEYS[1], 'f', 'r', 'v', 'l', 'x')
if s[1] and tonumber(s[5]) > now then
  if s[1] ~= fp then return { 'conflict' } end
  if s[2] then return { 'done', s[2] } end
  local lease = tonumber(s[4] or '0')
  if lease > now then return { 'in_progress', int(lease - now) } end
  redis.call('HSET', KEYS[1], 'l', int(now + leaseMs))
  return { 'claimed', s[3] or value, '1' }
end
if s[1] then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'f', fp, 'v', value, 'l', int(now + leaseMs), 'x', int(now + ttl))
redis.call('PEXPIRE', KEYS[1], int(ttl + slack))
return { 'claimed', value, '0' }
`;

/** KEYS[1] claim. ARGV: slack, fingerprint, result, keyTtlMs, nowMs. A live claim of another fingerprint: error reply "assertion failed: …". */
export const completeKeyLua = `${commonLua}
local fp, result, ttl, now = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local s = redis.call('HMGET', KEYS[1], 'f', 'x')
if s[1] and tonumber(s[2]) > now and s[1] ~= fp then return redis.error_reply('assertion failed: completeKey with another request fingerprint') end
if s[1] then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'f', fp, 'r', result, 'x', int(now + ttl))
redis.call('PEXPIRE', KEYS[1], int(ttl + slack))
return 1
`;

/** KEYS[1] claim. ARGV: slack, fingerprint. Drops a claim of this fingerprint that has no result yet (live or not, as in memory). */
export const releaseKeyLua = `${commonLua}
local s = redis.call('HMGET', KEYS[1], 'f', 'r')
if s[1] == ARGV[2] and not s[2] then redis.call('DEL', KEYS[1]) end
return 1
`;

/**
 * KEYS[1] pay number: 'expiresAtMs:<payer length>:<payer>' then ':<claimant>' once used.
 * ARGV: slack, claimant, nowMs. Returns the payer when live and unused (it is now used by the
 * claimant) or used by the same claimant; nil otherwise.
 */
export const takePayNumberLua = `${commonLua}
local v = redis.call('GET', KEYS[1])
if not v then return nil end
local exp, n, rest = string.match(v, '^(%d+):(%d+):(.*)$')
if tonumber(exp) <= tonumber(ARGV[3]) then return nil end
n = tonumber(n)
local payer, claimant = string.sub(rest, 1, n), string.sub(rest, n + 2)
if #rest > n then return (claimant == ARGV[2]) and payer or nil end
redis.call('SET', KEYS[1], v .. ':' .. ARGV[2], 'KEEPTTL')
return payer
`;

/** The stored form of a new pay number (a plain SET; see takePayNumberLua). */
export function payNumberValue(payerId: string, expiresAtMs: number): string {
  return `${expiresAtMs}:${payerId.length}:${payerId}`;
}
