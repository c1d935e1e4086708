-- Register as a waiter if the lock is still held, in one round trip.
-- KEYS[1] lock, KEYS[2] waiter count; ARGV[1] lifetime in ms for a lock without one
-- Returns the lock's remaining lifetime in ms (> 0) after registering, or 0
-- if the lock is free (the caller reads the value or tries to take the lock).
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then
  return 0
end
if ttl < 0 then
  ttl = tonumber(ARGV[1])
end
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ttl + 1000)
return ttl
