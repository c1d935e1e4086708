-- A cache read that takes the load lock on a miss, in one round trip.
-- KEYS[1] the cached value's key, KEYS[2] its lock (same cluster slot)
-- ARGV[1] the would-be holder's token, ARGV[2] lock lifetime in ms
-- Returns {1, value} if the value exists, {2} if it is absent and the lock is
-- now ours, {0} if it is absent and another holder has the lock.
local value = redis.call('GET', KEYS[1])
if value then
  return {1, value}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {2}
end
return {0}
