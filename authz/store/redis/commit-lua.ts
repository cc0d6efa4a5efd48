import { commonLua } from './lua-common.js';

/**
 * The commit step, following memory/state.ts `commit`: the claim first (replay, conflict), then
 * the version (stale), then one HSET with the new payment's fields, the version and the due
 * time, the due index, and the claim's result.
 *
 * KEYS per item: record, due index, then the claim's key when the item has a claim. ARGV[1]
 * slack, ARGV[2] closedRetentionMs (0: never; else a final record out of the due index expires
 * after it, and one put back into the index no longer does), then per item (11 + f): payment id,
 * expectVersion, nowMs, due ('' unchanged | 'n' out of the index | ms), has payment ('1'/'0'),
 * its merchant and payer, f, claim fingerprint ('' no claim), claim keyTtlMs, claim result,
 * then the new payment's f field/value strings (digests included when they change).
 * Returns per item {'committed', record} | {'stale', record?} | {'replayed', result} | {'conflict'};
 * a commit that would change a payment's merchant or payer stops the script with an error
 * reply "assertion failed: …" (earlier items stay applied, as in memory).
 */
export const commitLua = `${commonLua}
local retention = tonumber(ARGV[2])

local function commitItem(kRec, kDue, kClaim, a)
  local id, expect, now, dueAt = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3]
  local hasPayment, fields = ARGV[a + 4] == '1', tonumber(ARGV[a + 7])
  local claimValue, claimPx, claimWritten
  if kClaim then
    local fp, ttl = ARGV[a + 8], tonumber(ARGV[a + 9])
    claimValue, claimPx = entry(fp, now + ttl, ARGV[a + 10]), int(ttl + slack)
    local old
    old, claimWritten = claim(kClaim, claimValue, claimPx, now)
    if old then
      local ofp, _, result = parseEntry(old)
      if ofp == fp then return { 'replayed', result } end
      return { 'conflict' }
    end
  end
  local r = load(kRec)
  if not r or r.v ~= expect then
    if claimWritten then redis.call('DEL', kClaim) end
    if r then return { 'stale', flatten(r) } end
    return { 'stale' }
  end
  local changes = {}
  if hasPayment then
    if r.m ~= ARGV[a + 5] or r.py ~= ARGV[a + 6] then
      if claimWritten then redis.call('DEL', kClaim) end
      return redis.error_reply("assertion failed: a commit may not change a payment's id, merchant or payer")
    end
    for j = a + 11, a + 10 + fields do changes[#changes + 1] = ARGV[j] end
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
  save(kRec, r, changes)
  if kClaim and not claimWritten then redis.call('SET', kClaim, claimValue, 'PX', claimPx) end
  if retention > 0 and #changes > 0 and final[r.st] then
    -- Final and out of the due index: Redis drops it after the retention; due again: it stays.
    if r.du == '' then redis.call('PEXPIRE', kRec, int(retention)) elseif dueAt ~= '' then redis.call('PERSIST', kRec) end
  end
  return { 'committed', flatten(r) }
end

local out = {}
local k, a = 1, 3
while k <= #KEYS do
  local kClaim
  local width = 2
  if ARGV[a + 8] ~= '' then
    kClaim = KEYS[k + 2]
    width = 3
  end
  local reply = commitItem(KEYS[k], KEYS[k + 1], kClaim, a)
  if reply.err then return reply end
  out[#out + 1] = reply
  k = k + width
  a = a + 11 + tonumber(ARGV[a + 7])
end
return out
`;
