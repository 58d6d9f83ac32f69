"""Telegram's one-second window, counted where every request of the bot passes.

Telegram counts a message when it *arrives*, which is somewhere between the moment it was
sent and the moment its answer came back. So a slot of the window is taken when a request
starts and is given back only one second after its answer: no one-second window of
arrivals can then hold more than ``limit`` messages, whatever the network's delay.

Two kinds of request share the window. **Urgent** ones (replies to a person) may use all
of it and go first: while one waits, no bulk request starts. **Bulk** ones (the outbox)
may use all of it too while nobody is replying, but leave as many slots free as replies
used in the last second (up to ``max_reserve``), so a steady stream of replies keeps the
room it needs without a fixed share that would sit idle during a fan-out.

:class:`LocalWindow` keeps the window in this process (SQLite, one worker).
:class:`RedisWindow` keeps it in Redis, shared by every worker of the bot: one atomic
script per start and per answer, in Redis's own clock. A worker that dies leaves at most
the requests it had in flight, each counted for ``hold`` seconds at most, so its share is
the others' again within seconds; there is no static split to configure.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

COUNTED_METHODS = frozenset(
    {
        "sendmessage",
        "senddocument",
        "sendphoto",
        "sendaudio",
        "sendvideo",
        "sendvoice",
        "sendanimation",
        "sendsticker",
        "sendlocation",
        "sendcontact",
        "sendpoll",
        "senddice",
        "sendmediagroup",
        "copymessage",
        "copymessages",
        "forwardmessage",
        "forwardmessages",
        "editmessagetext",
        "editmessagecaption",
        "editmessagemedia",
        "editmessagereplymarkup",
    }
)
"""Bot API methods that put a message in a chat: the ones Telegram's limits count."""

HOLD_SECONDS = 5.0
"""How long a request in flight is counted at most (a dead worker's slots come back then)."""


@dataclass(frozen=True)
class Grant:
    """A slot taken in the window: give it back (answered) with :meth:`Window.release`."""

    token: str
    urgent: bool


class Window(Protocol):
    """The bot's sliding window, in this process or shared by all workers."""

    limit: int

    async def try_acquire(
        self, *, urgent: bool, chat: int | str | None = None
    ) -> tuple[Grant | None, float]:
        """A slot now, or None and how long to wait before asking again (seconds)."""
        ...

    async def release(
        self, grant: Grant, *, chat: int | str | None = None, spacing: float = 0.0
    ) -> None:
        """The request was answered: its slot counts for one more second, then frees."""
        ...

    async def pause(self, seconds: float, chat: int | str | None = None) -> None:
        """Telegram answered 429: nothing (or nothing to ``chat``) for ``seconds``."""
        ...

    async def urgent_waiting(self) -> None:
        """An urgent request is waiting: bulk requests hold back for a moment."""
        ...

    async def aclose(self) -> None:
        """Release what the window holds (connections)."""
        ...


@dataclass
class LocalWindow:
    """The window in this process (monotonic time)."""

    limit: int = 30
    max_reserve: int = 10
    size: float = 1.0
    monotonic: Callable[[], float] = time.monotonic
    _in_flight: dict[str, bool] = field(default_factory=dict)
    _answered: deque[tuple[float, bool]] = field(default_factory=deque)
    _paused_until: float = 0.0
    _urgent_until: float = 0.0

    def _trim(self, now: float) -> None:
        while self._answered and self._answered[0][0] + self.size <= now + 1e-9:
            self._answered.popleft()

    async def try_acquire(
        self, *, urgent: bool, chat: int | str | None = None
    ) -> tuple[Grant | None, float]:
        now = self.monotonic()
        if self._paused_until > now:
            return None, self._paused_until - now
        self._trim(now)
        used = len(self._in_flight) + len(self._answered)
        limit = self.limit
        if not urgent:
            if self._urgent_until > now:
                return None, min(self._urgent_until - now, 0.01)
            replies = sum(1 for _, was_urgent in self._answered if was_urgent)
            replies += sum(1 for was_urgent in self._in_flight.values() if was_urgent)
            limit -= min(replies, self.max_reserve)
        if used < limit:
            token = uuid.uuid4().hex
            self._in_flight[token] = urgent
            return Grant(token, urgent), 0.0
        if self._answered:
            # The oldest answer leaves the window first; those still in flight later still.
            return None, max(self._answered[0][0] + self.size - now, 0.001)
        return None, 0.005

    async def release(
        self, grant: Grant, *, chat: int | str | None = None, spacing: float = 0.0
    ) -> None:
        if self._in_flight.pop(grant.token, None) is None:
            return
        self._answered.append((self.monotonic(), grant.urgent))
        while len(self._answered) > 4 * self.limit:
            self._answered.popleft()

    async def pause(self, seconds: float, chat: int | str | None = None) -> None:
        if chat is None:
            self._paused_until = max(self._paused_until, self.monotonic() + seconds)

    async def urgent_waiting(self) -> None:
        self._urgent_until = self.monotonic() + 0.05

    async def aclose(self) -> None:
        """Nothing to release."""


# Redis: KEYS[1] the window (a sorted set: token -> the time it stops counting), KEYS[2] the
# pause, KEYS[3] the mark of an urgent request waiting, KEYS[4] the chat's hold ("" for none).
# ARGV: token, urgent (0/1), limit, max reserve, hold (ms). Returns {0, wait ms} or {1, 0}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return {0, paused} end
if KEYS[4] ~= '' then
  local held = redis.call('PTTL', KEYS[4])
  if held > 0 then return {0, held} end
end
local urgent = ARGV[2] == '1'
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[3])
if not urgent then
  local waiting = redis.call('PTTL', KEYS[3])
  if waiting > 0 then return {0, math.min(waiting, 10)} end
  local replies = 0
  for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if string.sub(member, 1, 1) == 'u' then replies = replies + 1 end
  end
  limit = limit - math.min(replies, tonumber(ARGV[4]))
end
local used = redis.call('ZCARD', KEYS[1])
if used >= limit then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = tonumber(first[2]) - now
  if wait > 1000 then wait = 5 end
  return {0, math.max(wait, 1)}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]) + 1000, ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]) + 2000)
if KEYS[4] ~= '' then redis.call('SET', KEYS[4], '1', 'PX', tonumber(ARGV[5])) end
return {1, 0}
"""

# KEYS[1] the window, KEYS[2] the chat's hold ("" for none); ARGV: token, spacing (ms).
_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + 1000, ARGV[1])
if KEYS[2] ~= '' then
  local spacing = tonumber(ARGV[2])
  if spacing > 0 then
    redis.call('SET', KEYS[2], '1', 'PX', spacing)
  else
    redis.call('DEL', KEYS[2])
  end
end
return 1
"""

# KEYS[1] the pause key; ARGV[1] its length (ms): the later of this and any pause set.
_PAUSE = """
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
"""


class RedisWindow:
    """The window in Redis, shared by every worker of one bot (keys under ``prefix``)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "dyad:budget",
        limit: int = 30,
        max_reserve: int = 10,
        hold: float = HOLD_SECONDS,
        client: Any = None,
    ) -> None:
        if client is None:
            from redis.asyncio import Redis

            client = Redis.from_url(url)
        self.client = client
        self.limit = limit
        self.max_reserve = max_reserve
        self.hold_ms = int(hold * 1000)
        self.prefix = prefix
        self._window = f"{prefix}:window"
        self._pause = f"{prefix}:pause"
        self._urgent = f"{prefix}:urgent"
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._pause_script = client.register_script(_PAUSE)

    def _chat_key(self, chat: int | str | None) -> str:
        return "" if chat is None else f"{self.prefix}:chat:{chat}"

    async def try_acquire(
        self, *, urgent: bool, chat: int | str | None = None
    ) -> tuple[Grant | None, float]:
        token = ("u" if urgent else "b") + uuid.uuid4().hex
        keys = [self._window, self._pause, self._urgent, self._chat_key(chat)]
        args = [token, int(urgent), self.limit, self.max_reserve, self.hold_ms]
        granted, wait_ms = await self._acquire(keys=keys, args=args)
        if int(granted):
            return Grant(token, urgent), 0.0
        return None, int(wait_ms) / 1000

    async def release(
        self, grant: Grant, *, chat: int | str | None = None, spacing: float = 0.0
    ) -> None:
        keys = [self._window, self._chat_key(chat)]
        await self._release(keys=keys, args=[grant.token, int(spacing * 1000)])

    async def pause(self, seconds: float, chat: int | str | None = None) -> None:
        key = self._pause if chat is None else self._chat_key(chat)
        await self._pause_script(keys=[key], args=[max(int(seconds * 1000), 1)])

    async def urgent_waiting(self) -> None:
        await self.client.set(self._urgent, "1", px=50)

    async def aclose(self) -> None:
        await self.client.aclose()
