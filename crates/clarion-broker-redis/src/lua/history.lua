-- Read a page of history and the stream's position, creating an empty
-- stream (a new epoch) when there is none.
-- KEYS[1] stream, KEYS[2] meta
-- ARGV[1] generation, ARGV[2] candidate epoch, ARGV[3] meta ttl ms
-- ARGV[4] since offset ('' for none), ARGV[5] since epoch
-- ARGV[6] limit, ARGV[7] '1' for newest first
-- Returns {top, epoch, id1, body1, id2, body2, ...}.
local stored = redis.call('hget', KEYS[2], 'e')
local top = 0
if not stored then
  stored = ARGV[2]
  redis.call('del', KEYS[1], KEYS[2])
  redis.call('hset', KEYS[2], 'e', stored, 's', 0)
  redis.call('pexpire', KEYS[2], ARGV[3])
else
  top = tonumber(redis.call('hget', KEYS[2], 's')) or 0
end
local epoch = stored .. '-' .. ARGV[1]
local out = {top, epoch}
local limit = tonumber(ARGV[6])
if limit == 0 then return out end
local now = redis.call('time')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local since = nil
if ARGV[4] ~= '' and ARGV[5] == epoch then since = tonumber(ARGV[4]) end
local got = 0
if ARGV[7] == '1' then
  -- Newest first: expired entries are the oldest, so stop at the first.
  if since == 0 then return out end
  local from = '+'
  if since then from = '(' .. since .. '-0' end
  local entries = redis.call('xrevrange', KEYS[1], from, '-', 'COUNT', limit)
  for _, e in ipairs(entries) do
    if tonumber(e[2][2]) <= now_ms then break end
    out[#out + 1] = e[1]
    out[#out + 1] = e[2][4]
  end
  return out
end
-- Oldest first: expired entries are a prefix; skip them and read on.
local start = '-'
if since then start = '(' .. since .. '-0' end
while got < limit do
  local entries = redis.call('xrange', KEYS[1], start, '+', 'COUNT', limit - got)
  if #entries == 0 then break end
  for _, e in ipairs(entries) do
    if tonumber(e[2][2]) > now_ms then
      out[#out + 1] = e[1]
      out[#out + 1] = e[2][4]
      got = got + 1
    end
  end
  start = '(' .. entries[#entries][1]
end
return out
