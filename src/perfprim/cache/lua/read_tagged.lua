-- Read a cache entry and check its tags in the same round trip (standalone Redis only:
-- the tag counters live in other slots).
-- KEYS[1] the entry. Returns the stored bytes, false when absent, or 0 when one of the
-- entry's tags was invalidated after the entry was computed (its counter moved on).
-- An entry of codec version 2 carries, after its 28-byte header, a 4-byte length and
-- that many bytes of JSON: [[tag counter key, version], ...].
local v = redis.call('GET', KEYS[1])
if not v then
  return false
end
if string.sub(v, 1, 3) ~= 'pP\2' or string.len(v) < 32 then
  return v
end
local n = struct.unpack('>I4', v, 29)
local ok, tags = pcall(cjson.decode, string.sub(v, 33, 32 + n))
if not ok or type(tags) ~= 'table' then
  return v -- the client's decoder refuses it and counts it
end
for _, tag in ipairs(tags) do
  local current = tonumber(redis.call('GET', tag[1]) or '0') or 0
  if current ~= tag[2] then
    return 0
  end
end
return v
