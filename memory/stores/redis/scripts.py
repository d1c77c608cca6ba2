"""The Lua scripts of the Redis store: each runs atomically, over the keys of one guild.

With a spool, a script's first two arguments are the spool's marker field ('' for none) and
the mutation's sequence number: a script that finds the marker at or past that number in the
conversation's hash has run before (a flush cut short, an answer lost) and does nothing.
"""

from __future__ import annotations

__all__ = ["APPEND", "CHANGED", "CREATE"]

# KEYS: hdr, log, ids, people, convs
# ARGV: marker field ('' for none), seq, thread id, created (score), people (JSON list),
#       then header field, value, field, value...
CREATE = """
if ARGV[1] ~= '' then
  local last = redis.call('HGET', KEYS[1], ARGV[1])
  if last and last >= ARGV[2] then return 2 end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
  return 0
end
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
local people = cjson.decode(ARGV[5])
for i = 1, #people do redis.call('RPUSH', KEYS[4], people[i]) end
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[3])
return 1
"""

# KEYS: hdr, log, ids, people
# ARGV: marker field ('' for none), seq, message JSON, message id ('' for none),
#       created (microseconds, zero-padded), created_at (JSON), requester ('' for none)
APPEND = """
if ARGV[1] ~= '' then
  local last = redis.call('HGET', KEYS[1], ARGV[1])
  if last and last >= ARGV[2] then return 2 end
end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
if ARGV[4] ~= '' and redis.call('SADD', KEYS[3], ARGV[4]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[3])
local updated = redis.call('HGET', KEYS[1], '_updated_us')
if (not updated) or ARGV[5] > updated then
  redis.call('HSET', KEYS[1], '_updated_us', ARGV[5], 'updated_at', ARGV[6])
end
if ARGV[7] ~= '' and not redis.call('LPOS', KEYS[4], ARGV[7]) then
  redis.call('RPUSH', KEYS[4], ARGV[7])
end
return 1
"""

# KEYS: gen, changes   ARGV: thread id
CHANGED = """
local n = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], n, ARGV[1])
return n
"""
