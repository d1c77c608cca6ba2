"""The Lua scripts of the Redis store: each runs atomically, over the keys of one guild.

Every write to a guild's keys is one script, and so is every read that must see one moment
(a conversation's header, history and participants together). A script's keys all carry the
guild's hash tag, so on Redis Cluster it runs on the one node that holds the guild's slot, as
atomically as on a single server; keys that span guilds (``threads``, ``guilds``) are never in a
script.

With a spool, a write's first two arguments are the spool's marker field ('' for none) and the
mutation's sequence number: a script that finds the marker at or past that number in the
conversation's hash has run before (a flush cut short, an answer lost) and does nothing.

Every write to a conversation bumps its version (the ``_v`` field of its hash). A rewrite reads
the conversation, applies the mutation in Python, and sends the result with the version it
read; the script writes only if the version is unchanged, else the rewrite reads again. A new
conversation's version starts at the server's clock in microseconds, so one deleted and made
again never repeats a version a reader saw.
"""

from __future__ import annotations

from redis.commands.core import AsyncScript

from memory.stores.redis.connection import RedisClient

__all__ = ["StoreScripts"]

# Shared by the scripts below (each one is sent whole: Redis runs no script of another).
_CHANGED_FN = """
local function changed(gen, changes, thread)
  local n = redis.call('INCR', gen)
  redis.call('ZADD', changes, n, thread)
  return n
end
"""
_VERSION_FN = """
local function new_version(hdr)
  local now = redis.call('TIME')
  redis.call('HSET', hdr, '_v', now[1] .. string.format('%06d', tonumber(now[2])))
end
"""
_PUSH_FN = """
local function push(command, key, from, count)
  local last = from + count - 1
  while from <= last do
    local to = math.min(from + 999, last)
    redis.call(command, key, unpack(ARGV, from, to))
    from = to + 1
  end
end
"""

# KEYS: hdr, log, ids, people, convs
# ARGV: marker, seq, thread id, created (score), people (JSON list), then field, value...
CREATE = (
    _VERSION_FN
    + """
if ARGV[1] ~= '' then
  local last = redis.call('HGET', KEYS[1], ARGV[1])
  if last and last >= ARGV[2] then return 2 end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[1] ~= '' then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
    redis.call('HINCRBY', KEYS[1], '_v', 1)
  end
  return 0
end
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
new_version(KEYS[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
local people = cjson.decode(ARGV[5])
for i = 1, #people do redis.call('RPUSH', KEYS[4], people[i]) end
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[3])
return 1
"""
)

# KEYS: hdr, log, ids, people
# ARGV: marker, seq, message JSON, message id ('' for none), created (microseconds,
#       zero-padded), created_at (JSON), requester ('' for none)
APPEND = """
if ARGV[1] ~= '' then
  local last = redis.call('HGET', KEYS[1], ARGV[1])
  if last and last >= ARGV[2] then return 2 end
end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HINCRBY', KEYS[1], '_v', 1)
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

# KEYS: hdr, log, ids, people, gen, changes
# ARGV: marker, seq, the version read ('' for none), thread id, SCRUB or '' (a forget),
#       '1' to drop ended_at or '', 'set' or 'all', then the header: count, field, value...,
#       the participants: count, id..., then for 'set' index, message... (the messages that
#       changed), for 'all' the message ids: count, id..., then every message.
# Returns -1: no such conversation, 2: applied before, 0: it changed since it was read, 1: done.
REWRITE = (
    _CHANGED_FN
    + _PUSH_FN
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[1] ~= '' then
  local last = redis.call('HGET', KEYS[1], ARGV[1])
  if last and last >= ARGV[2] then return 2 end
end
if (redis.call('HGET', KEYS[1], '_v') or '') ~= ARGV[3] then return 0 end
local i = 9
for _ = 1, tonumber(ARGV[8]) do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
if ARGV[6] == '1' then redis.call('HDEL', KEYS[1], 'ended_at') end
redis.call('DEL', KEYS[4])
local count = tonumber(ARGV[i])
push('RPUSH', KEYS[4], i + 1, count)
i = i + 1 + count
if ARGV[7] == 'set' then
  while i < #ARGV do
    redis.call('LSET', KEYS[2], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
else
  redis.call('DEL', KEYS[2], KEYS[3])
  count = tonumber(ARGV[i])
  push('SADD', KEYS[3], i + 1, count)
  i = i + 1 + count
  push('RPUSH', KEYS[2], i, #ARGV - i + 1)
end
if ARGV[5] ~= '' then
  changed(KEYS[5], KEYS[6], ARGV[4])
  changed(KEYS[5], KEYS[6], ARGV[5])
end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('HINCRBY', KEYS[1], '_v', 1)
return 1
"""
)

# A whole conversation, written anew.
# KEYS: hdr, log, ids, people, convs, gen, changes
# ARGV: thread id, created (score), then the header: count, field, value..., the
#       participants: count, id..., the message ids: count, id..., then every message.
PUT = (
    _CHANGED_FN
    + _VERSION_FN
    + _PUSH_FN
    + """
local version = redis.call('HGET', KEYS[1], '_v')
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
local i = 4
for _ = 1, tonumber(ARGV[3]) do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
local count = tonumber(ARGV[i])
push('RPUSH', KEYS[4], i + 1, count)
i = i + 1 + count
count = tonumber(ARGV[i])
push('SADD', KEYS[3], i + 1, count)
i = i + 1 + count
push('RPUSH', KEYS[2], i, #ARGV - i + 1)
if version then
  redis.call('HSET', KEYS[1], '_v', version)
  redis.call('HINCRBY', KEYS[1], '_v', 1)
else
  new_version(KEYS[1])
end
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
changed(KEYS[6], KEYS[7], ARGV[1])
return 1
"""
)

# KEYS: hdr, log, ids, people, convs, gen, changes   ARGV: thread id, SCRUB
# Returns how many of the conversation's keys there were.
PURGE = (
    _CHANGED_FN
    + """
local deleted = redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[1])
changed(KEYS[6], KEYS[7], ARGV[1])
changed(KEYS[6], KEYS[7], ARGV[2])
return deleted
"""
)

# KEYS: hdr, log, people   Returns the header (field, value...), the history, the participants.
READ = """
return {
  redis.call('HGETALL', KEYS[1]),
  redis.call('LRANGE', KEYS[2], 0, -1),
  redis.call('LRANGE', KEYS[3], 0, -1),
}
"""

# KEYS: gen, changes   ARGV: thread id
CHANGED = _CHANGED_FN + "\nreturn changed(KEYS[1], KEYS[2], ARGV[1])\n"

# KEYS: gen, changes   ARGV: the lowest score ('-inf', or '(' and a generation)
# Returns the generation now (nil if none yet) and the threads changed since.
CHANGES_SINCE = """
return {
  redis.call('GET', KEYS[1]),
  redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], '+inf'),
}
"""

# KEYS: mem, mems, gen, changes   ARGV: thread id, the record (JSON)
SAVE_MEMORY = (
    _CHANGED_FN
    + """
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
changed(KEYS[3], KEYS[4], ARGV[1])
return 1
"""
)

# KEYS: mem, mems, gen, changes   ARGV: thread id, SCRUB   Returns 1 if there was a memory.
DELETE_MEMORY = (
    _CHANGED_FN
    + """
local deleted = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
changed(KEYS[3], KEYS[4], ARGV[1])
changed(KEYS[3], KEYS[4], ARGV[2])
return deleted
"""
)


class StoreScripts:
    """The store's scripts, registered on its client (loaded by the server on first use)."""

    def __init__(self, client: RedisClient) -> None:
        self.create: AsyncScript = client.register_script(CREATE)
        self.append: AsyncScript = client.register_script(APPEND)
        self.rewrite: AsyncScript = client.register_script(REWRITE)
        self.put: AsyncScript = client.register_script(PUT)
        self.purge: AsyncScript = client.register_script(PURGE)
        self.read: AsyncScript = client.register_script(READ)
        self.changed: AsyncScript = client.register_script(CHANGED)
        self.changes_since: AsyncScript = client.register_script(CHANGES_SINCE)
        self.save_memory: AsyncScript = client.register_script(SAVE_MEMORY)
        self.delete_memory: AsyncScript = client.register_script(DELETE_MEMORY)
