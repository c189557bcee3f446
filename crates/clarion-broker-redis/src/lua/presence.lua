-- Presence of one channel: add, remove, list or count, after pruning
-- expired entries (each entry is pruned once: amortised O(1)).
-- KEYS[1] data (client -> '<len>:<user><info>'), KEYS[2] expiry (client ->
-- ms), KEYS[3] users (user -> clients)
-- ARGV[1] operation: 'add', 'remove', 'list', 'stats'
-- add: ARGV[2] client, ARGV[3] user, ARGV[4] info JSON, ARGV[5] ttl ms;
--   returns {client added, user's first}
-- remove: ARGV[2] client; returns {client removed, user's last}
-- list: returns the stored values; stats: {clients, users}
local data, expiry, users = KEYS[1], KEYS[2], KEYS[3]
local now = redis.call('time')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)

local function user_of(value)
  local len = string.match(value, '^(%d+):')
  local from = #len + 2
  return string.sub(value, from, from + tonumber(len) - 1)
end

-- One client of `user` less; 1 if it was the last.
local function release(user)
  if redis.call('hincrby', users, user, -1) <= 0 then
    redis.call('hdel', users, user)
    return 1
  end
  return 0
end

local function drop(client)
  local value = redis.call('hget', data, client)
  redis.call('zrem', expiry, client)
  if not value then return nil end
  redis.call('hdel', data, client)
  return release(user_of(value))
end

for _, client in ipairs(redis.call('zrangebyscore', expiry, '-inf', now_ms)) do
  drop(client)
end

-- Keys live as long as their longest-lived entry.
local function extend(key, ttl)
  if redis.call('pttl', key) < ttl then redis.call('pexpire', key, ttl) end
end

local op = ARGV[1]
if op == 'add' then
  local client, user, ttl = ARGV[2], ARGV[3], tonumber(ARGV[5])
  local old = redis.call('hget', data, client)
  redis.call('hset', data, client, #user .. ':' .. user .. ARGV[4])
  redis.call('zadd', expiry, now_ms + ttl, client)
  local added, first = 0, 0
  if not old then
    added = 1
    if redis.call('hincrby', users, user, 1) == 1 then first = 1 end
  elseif user_of(old) ~= user then
    release(user_of(old))
    redis.call('hincrby', users, user, 1)
  end
  extend(data, ttl)
  extend(expiry, ttl)
  extend(users, ttl)
  return {added, first}
elseif op == 'remove' then
  local last = drop(ARGV[2])
  if last == nil then return {0, 0} end
  return {1, last}
elseif op == 'list' then
  return redis.call('hvals', data)
else
  return {redis.call('hlen', data), redis.call('hlen', users)}
end
