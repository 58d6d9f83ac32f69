"""Telegram's flood limits as sliding windows over the event loop's monotonic time."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

RATE_LIMITED_METHODS = frozenset({"sendMessage", "sendDocument", "editMessageText"})


@dataclass(frozen=True)
class RateLimits:
    """Telegram's published limits; `enforce=False` only counts violations (for benchmarks)."""

    overall_per_second: int = 30
    per_chat_per_second: int = 1
    per_group_per_minute: int = 20
    enforce: bool = True


@dataclass
class RateLimitViolations:
    """Requests over a limit: each counted once in `requests`, and once per limit it broke."""

    requests: int = 0
    overall: int = 0
    per_chat: int = 0
    per_group: int = 0
    by_chat: dict[int, int] = field(default_factory=dict)


class _Window:
    def __init__(self, size: float, limit: int) -> None:
        self.size = size
        self.limit = limit
        self.times: deque[float] = deque()

    def wait(self, now: float) -> float:
        """Seconds until one more send fits; 0 when it fits now."""
        while self.times and self.times[0] <= now - self.size:
            self.times.popleft()
        if len(self.times) < self.limit:
            return 0.0
        return self.times[len(self.times) - self.limit] + self.size - now


class RateLimiter:
    """Admits or refuses one rate-limited request at a time."""

    def __init__(self, limits: RateLimits, now: Callable[[], float]) -> None:
        self.limits = limits
        self.violations = RateLimitViolations()
        self._now = now
        self._overall = _Window(1.0, limits.overall_per_second)
        self._chats: dict[int, _Window] = {}
        self._groups: dict[int, _Window] = {}

    def admit(self, chat_id: int) -> int | None:
        """Record a send to `chat_id`; when it is over a limit, the retry_after to answer."""
        now = self._now()
        chat = self._chats.setdefault(chat_id, _Window(1.0, self.limits.per_chat_per_second))
        windows = [("overall", self._overall), ("per_chat", chat)]
        if chat_id < 0:  # groups and channels have negative ids
            group = self._groups.setdefault(
                chat_id, _Window(60.0, self.limits.per_group_per_minute)
            )
            windows.append(("per_group", group))
        waits = {name: window.wait(now) for name, window in windows}
        broken = [name for name, wait in waits.items() if wait > 0]
        if broken:
            self.violations.requests += 1
            self.violations.by_chat[chat_id] = self.violations.by_chat.get(chat_id, 0) + 1
            for name in broken:
                setattr(self.violations, name, getattr(self.violations, name) + 1)
            if self.limits.enforce:
                return max(1, math.ceil(max(waits.values())))
        for _, window in windows:
            window.times.append(now)
        return None
