"""The Lua scripts of the memory queue and its leases: each touches one key.

A script runs atomically where a read and the write that depends on it must not be split by
another worker's command: whose entry it is, whose lock it is.
"""

from __future__ import annotations

__all__ = ["HEARTBEAT", "HOLD", "LEAVE", "REFRESH", "RELEASE"]

# Re-claim the entry for its owner (resetting its idle time), unless another worker owns it
# by now. JUSTID: a heartbeat is not a delivery, so it does not count towards giving up.
HEARTBEAT = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 or pending[1][2] ~= ARGV[3] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
return 1
"""
# Lock a conversation for this lease (ARGV[1]), unless a lease of another batch entry holds
# it; a lease of the same entry (ARGV[2] is "<entry>/") is a worker this one took over from.
HOLD = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] and string.sub(held, 1, string.len(ARGV[2])) ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""
REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# A consumer leaves the group only with nothing pending: deleting it would orphan its entries.
LEAVE = """
local mine = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #mine > 0 then return 0 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""
