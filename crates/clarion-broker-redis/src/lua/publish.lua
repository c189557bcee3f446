-- Publish: idempotency check, epoch creation, offset increment, history
-- append and pub/sub delivery in one atomic step.
-- KEYS[1] stream, KEYS[2] meta, KEYS[3] idempotency result
-- ARGV[1] generation, ARGV[2] candidate epoch, ARGV[3] body (publication JSON)
-- ARGV[4] history size (0: live only), ARGV[5] ttl ms, ARGV[6] meta ttl ms
-- ARGV[7] idempotency window ms (0: no key), ARGV[8] pub/sub channel
-- ARGV[9] '1': SPUBLISH, else PUBLISH
-- Returns {offset, epoch, suppressed}: offset and epoch '' without history.
local size, window = tonumber(ARGV[4]), tonumber(ARGV[7])
if window > 0 then
  local prev = redis.call('hmget', KEYS[3], 'o', 'e')
  if prev[1] then
    if prev[1] == '' then return {'', '', 1} end
    return {prev[1], prev[2] .. '-' .. ARGV[1], 1}
  end
end
local offset, stored, epoch = '', '', ''
if size > 0 then
  local ttl = tonumber(ARGV[5])
  local now = redis.call('time')
  local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  stored = redis.call('hget', KEYS[2], 'e')
  if not stored then
    stored = ARGV[2]
    redis.call('del', KEYS[2])
    redis.call('hset', KEYS[2], 'e', stored, 's', 0)
  end
  local top = redis.call('hincrby', KEYS[2], 's', 1)
  -- A new stream: drop what an evicted meta hash may have left behind.
  if top == 1 then redis.call('del', KEYS[1]) end
  redis.call('xadd', KEYS[1], 'MAXLEN', size, top .. '-0', 't', now_ms + ttl, 'd', ARGV[3])
  redis.call('pexpire', KEYS[1], ttl)
  redis.call('pexpire', KEYS[2], math.max(ttl, tonumber(ARGV[6])))
  offset = tostring(top)
  epoch = stored .. '-' .. ARGV[1]
end
local message = 'p' .. offset .. ':' .. epoch .. ':' .. ARGV[3]
if ARGV[9] == '1' then
  redis.call('spublish', ARGV[8], message)
else
  redis.call('publish', ARGV[8], message)
end
if window > 0 then
  redis.call('hset', KEYS[3], 'o', offset, 'e', stored)
  redis.call('pexpire', KEYS[3], window)
end
return {offset, epoch, 0}
