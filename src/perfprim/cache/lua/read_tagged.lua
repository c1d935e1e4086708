-- Read a cache entry and check its tags in the same round trip (standalone Redis only:
-- the tag counters live in other slots).
-- KEYS[1] the entry. Returns the stored bytes, false when absent, or 0 when one of the
-- entry's tags was invalidated after the entry was computed (its counter moved on).
-- An entry of codec version 2 carries, after its 28-byte header, a 4-byte length and
-- that many bytes of text: key NUL version NUL key NUL version ...
local v = redis.call('GET', KEYS[1])
if not v then
  return false
end
if string.sub(v, 1, 3) ~= 'pP\2' or string.len(v) < 32 then
  return v
end
local n = struct.unpack('>I4', v, 29)
local section = string.sub(v, 33, 32 + n) .. '\0'
for key, version in string.gmatch(section, '([^%z]+)%z(%-?%d+)%z') do
  local current = tonumber(redis.call('GET', key) or '0') or 0
  if current ~= tonumber(version) then
    return 0
  end
end
return v
