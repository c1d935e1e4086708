-- Release a token-owned lock and wake the processes waiting for it.
-- KEYS[1] lock, KEYS[2] waiter count, KEYS[3] wake-up list
-- ARGV[1] the holder's token, ARGV[2] lifetime of the wake-up list in ms
-- Returns 1 if the lock was ours and is now deleted, 0 otherwise (expired,
-- or taken over by another holder: then nobody is woken, the new holder will).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
local waiters = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
redis.call('DEL', KEYS[2], KEYS[3])
if waiters > 0 then
  if waiters > 10000 then
    waiters = 10000
  end
  for _ = 1, waiters do
    redis.call('RPUSH', KEYS[3], '1')
  end
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
return 1
