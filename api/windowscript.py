"""A request's rate-limit checks in one Redis round trip: one Lua script of ours over the
``limits`` package's moving windows, and the probing flags beside them.

Why (issue 16): a keyed code lookup made three to five checks, each its own ``EVALSHA``
(``limits``' scripts take one window each), and each round trip cost the replica more CPU
than the check itself. Here a request's checks go as one list: the script takes them in
order and stops at the first refusal, as the same calls one after another did (what was
taken before the refusal stays taken; a refused window takes nothing; a look,
``consume`` false, never takes), and updates the probing flag a check asks for.

The windows are ``limits``' own (its ``acquire_moving_window.lua`` and ``moving_window.lua``,
``limits`` 5.x): the key ``<prefix>:LIMITER/<bucket>/<key>/<amount>/<multiples>/second``, a
list of hit timestamps, newest first, trimmed to ``amount``, expiring ``expiry`` seconds
after the last hit. A check of ``cost`` is refused when the list's entry at index
``amount - cost`` is within the window (``amount - cost + 1`` hits in it already), which is
both ``limits``' acquire test and, for a look, its ``test`` (the count in the window at most
``amount - cost``). The wait of a refusal is when that entry leaves the window: for a cost of
1 the window's oldest hit, ``limits``' ``reset``. So ``limits``' strategies read and take the
same windows (tests/api/test_windowscript.py checks both ways).

A request's first check may be a block (``Block``, ``api.tokenblocks``): up to ``size`` hits
at once while the window keeps ``spare`` free after them (else one), stamped with the block's
lease end, later than now. Every hit is stamped at least the list's newest, so the list stays
newest first and the tests above stay exact; a key lives until its newest hit leaves the
window.

A flag (``FLAG_REFUSAL``: a refused look counts a refusal on the key's flag, making it;
``FLAG_FAILURE``: a failed code probe counted on the flag, made when the probe was refused)
is ``first last failed refused`` in the hash ``flags``, its first time in the sorted set
``flags:first`` (the bound: the oldest go first) and its last in ``flags:last``
(``flags(since=...)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, cast

from limits import RateLimitItem

from api.ratelimit import FLAG_FAILURE, FLAG_REFUSAL, Check

# KEYS: each check's window, then the flags' hash, first-time and last-time sets.
# ARGV: the windows' now, the flags' now, max_flags, then nine per check: amount, expiry, cost,
# consume (1/0), flag mode (0 none, 1 FLAG_REFUSAL, 2 FLAG_FAILURE), the flag's key, least,
# spare, stamp. A plain check has least = cost, spare 0 and stamp '' (now). A block
# (``Block``) has least 1: it takes ``cost`` when the window then still has ``spare`` free,
# else ``least``; its hits are stamped ``stamp`` (its lease's end, later than now).
# Every hit is stamped at least the list's newest (its head), so the list stays newest first
# and ``LINDEX amount - least`` stays the acquire test; a key lives until its newest hit
# leaves the window.
# Returns {refused check (1-based; 0: none), its wait in seconds (-1: never), made, granted}
# where made is 1 when the script made a new flag (logged once across the replicas), else 0,
# and granted is how many hits the first check took (0 when it took none).
SCRIPT: Final = """
local now = tonumber(ARGV[1])
local n = #KEYS - 3
local table, by_first, by_last = KEYS[n + 1], KEYS[n + 2], KEYS[n + 3]
local granted = 0

local function flag(who, failed, refused, create)
  local old = redis.call('HGET', table, who)
  if not old then
    if not create then return 0 end
    redis.call('HSET', table, who, ARGV[2] .. ' ' .. ARGV[2] .. ' ' .. failed .. ' ' .. refused)
    redis.call('ZADD', by_first, ARGV[2], who)
    redis.call('ZADD', by_last, ARGV[2], who)
    local over = redis.call('ZCARD', by_first) - tonumber(ARGV[3])
    if over > 0 then
      local gone = redis.call('ZRANGE', by_first, 0, over - 1)
      redis.call('HDEL', table, unpack(gone))
      redis.call('ZREM', by_first, unpack(gone))
      redis.call('ZREM', by_last, unpack(gone))
    end
    return 1
  end
  local first, last, f, r = string.match(old, '^(%S+) (%S+) (%S+) (%S+)$')
  if tonumber(ARGV[2]) > tonumber(last) then last = ARGV[2] end
  redis.call('HSET', table, who, first .. ' ' .. last .. ' '
             .. string.format('%d', tonumber(f) + failed) .. ' '
             .. string.format('%d', tonumber(r) + refused))
  redis.call('ZADD', by_last, last, who)
  return 0
end

for i = 1, n do
  local at = 3 + (i - 1) * 9
  local amount, expiry = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  local cost, least = tonumber(ARGV[at + 3]), tonumber(ARGV[at + 7])
  local wait = nil
  if least > amount then
    wait = -1
  else
    local entry = redis.call('LINDEX', KEYS[i], amount - least)
    if entry and tonumber(entry) >= now - expiry then
      wait = tonumber(entry) + expiry - now
    elseif ARGV[at + 4] == '1' then
      local take = least
      local spare = tonumber(ARGV[at + 8])
      if cost > least and cost + spare <= amount then
        local past = redis.call('LINDEX', KEYS[i], amount - cost - spare)
        if not past or tonumber(past) < now - expiry then take = cost end
      end
      local stamp = ARGV[at + 9]
      if stamp == '' then stamp = ARGV[1] end
      local head = redis.call('LINDEX', KEYS[i], 0)
      if head and tonumber(head) > tonumber(stamp) then stamp = head end
      for _ = 1, take do redis.call('LPUSH', KEYS[i], stamp) end
      redis.call('LTRIM', KEYS[i], 0, amount - 1)
      redis.call('EXPIRE', KEYS[i], expiry + math.ceil(tonumber(stamp) - now))
      if i == 1 then granted = take end
    end
  end
  local mode, made = ARGV[at + 5], 0
  if mode == '1' and wait then
    made = flag(ARGV[at + 6], 0, 1, true)
  elseif mode == '2' then
    made = flag(ARGV[at + 6], 1, wait and 1 or 0, wait ~= nil)
  end
  if wait then return {i, tostring(wait), made, granted} end
end
return {0, '0', 0, granted}
"""


@dataclass(frozen=True)
class Refusal:
    """The script's answer when a check was refused: which, and for how long."""

    index: int  # 0-based, into the checks given
    wait: float  # seconds; math.inf: the cost is more than the window ever holds


@dataclass(frozen=True)
class Block:
    """A request's first check taken as a block (``api.sharedlimits``' token blocks): up to
    ``size`` hits at once, when the window keeps ``spare`` hits free after them (else one),
    stamped ``stamp`` (the end of the block's lease, on the windows' clock), so that each hit
    stays in the window at least ``expiry`` seconds after the request it admits."""

    size: int
    spare: int
    stamp: float
    #: The lease's end on the replica's monotonic clock (kept there, not sent).
    until: float = 0.0


def flag_keys(prefix: str) -> list[str]:
    return [f"{prefix}:flags", f"{prefix}:flags:first", f"{prefix}:flags:last"]


@dataclass(frozen=True)
class Window:
    """One named limit's window: its Redis key around a caller's key (``limits``'
    ``key_for`` under the prefix, put together once rather than at every check), its
    amount and its expiry."""

    head: str
    tail: str
    amount: int
    expiry: int

    @classmethod
    def of(cls, bucket: str, item: RateLimitItem, prefix: str) -> Window:
        marker = "\x00"  # no key of ours holds it: where the caller's key goes
        head, tail = f"{prefix}:{item.key_for(bucket, marker)}".split(marker)
        return cls(head, tail, item.amount, item.get_expiry())


def windows(items: Mapping[str, RateLimitItem], prefix: str) -> dict[str, Window]:
    """Each named limit's ``Window`` under ``prefix``."""
    return {bucket: Window.of(bucket, item, prefix) for bucket, item in items.items()}


def arguments(
    checks: Sequence[Check],
    table: Mapping[str, Window],
    flags: list[str],
    *,
    now: float,
    flag_now: float,
    max_flags: int,
    block: Block | None = None,
) -> tuple[list[str], list[str | int]]:
    """The script's KEYS and ARGV for ``checks`` (each bucket one of ``table``'s) and the
    flags' keys (``flag_keys``); ``block``: the first check (a plain one of cost 1) taken as
    that block."""
    keys = []
    args: list[str | int] = [repr(now), repr(flag_now), max_flags]
    for number, check in enumerate(checks):
        window = table[check.bucket]
        keys.append(window.head + check.key + window.tail)
        flag = check.flag if check.flag in (FLAG_REFUSAL, FLAG_FAILURE) else 0
        cost = 1 if check.cost == 1 else max(1, math.ceil(check.cost))
        args += [window.amount, window.expiry]
        if number == 0 and block is not None and block.size > 1:
            args += [block.size, 1, 0, check.key, 1, block.spare, repr(block.stamp)]
        else:
            args += [cost, int(check.consume), flag, check.key, cost, 0, ""]
    return keys + flags, args


def outcome(answer: list[object]) -> tuple[Refusal | None, bool]:
    """The script's answer: the refusal (None: every check passed) and whether it made a
    new flag."""
    index, wait, made = answer[:3]
    refusal = None
    if int(index):  # type: ignore[call-overload]
        seconds = float(wait.decode() if isinstance(wait, bytes) else str(wait))
        refusal = Refusal(int(index) - 1, math.inf if seconds < 0 else max(seconds, 1e-3))  # type: ignore[call-overload]
    return refusal, bool(made)


def granted(answer: list[object]) -> int:
    """How many hits the script's first check took (a block's size; 0: none)."""
    return int(cast(int, answer[3]))


__all__ = [
    "SCRIPT",
    "Block",
    "Refusal",
    "Window",
    "arguments",
    "flag_keys",
    "granted",
    "outcome",
    "windows",
]
