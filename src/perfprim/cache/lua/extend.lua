-- Extend a token-owned lock (compare-and-pexpire).
-- KEYS[1] lock; ARGV[1] the holder's token, ARGV[2] new lifetime in ms
-- Returns 1 if extended, 0 if the lock is no longer ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
