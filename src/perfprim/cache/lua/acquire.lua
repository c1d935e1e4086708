-- Take a token-owned lock and say whether the value already exists, in one round trip.
-- KEYS[1] lock, KEYS[2] the cached value's key (same cluster slot)
-- ARGV[1] the holder's token, ARGV[2] lifetime in ms
-- Returns 0 if another holder has the lock, 1 if taken and the value is absent,
-- 2 if taken but the value exists (a holder just wrote it: read it, do not load).
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 2
end
return 1
