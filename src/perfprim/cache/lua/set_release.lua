-- Store the loaded value and release the load lock (waking its waiters), in one round trip.
-- KEYS[1] value, KEYS[2] lock, KEYS[3] waiter count, KEYS[4] wake-up list
-- ARGV[1] the encoded value, ARGV[2] its lifetime in ms ('' for none),
-- ARGV[3] the holder's token, ARGV[4] lifetime of the wake-up list in ms
-- The value is written whatever happened to the lock. Returns 1 if the lock
-- was still ours (and is now released), 0 otherwise.
if ARGV[2] == '' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
if redis.call('GET', KEYS[2]) ~= ARGV[3] then
  return 0
end
redis.call('DEL', KEYS[2])
local waiters = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
redis.call('DEL', KEYS[3], KEYS[4])
if waiters > 0 then
  if waiters > 10000 then
    waiters = 10000
  end
  for _ = 1, waiters do
    redis.call('RPUSH', KEYS[4], '1')
  end
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
end
return 1
