"""Faults a test can make the fake answer with: queued ones and a seeded random policy."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["429", "403", "5xx", "timeout", "400"]
FAULT_KINDS: frozenset[str] = frozenset({"429", "403", "5xx", "timeout", "400"})

# Methods the random policy hits by default: the ones that change what a user sees.
DEFAULT_FAULTY_METHODS = frozenset(
    {
        "sendMessage",
        "sendDocument",
        "editMessageText",
        "editMessageReplyMarkup",
        "deleteMessage",
        "answerCallbackQuery",
        "sendChatAction",
    }
)


@dataclass(frozen=True)
class Fault:
    """One fault to answer with now."""

    kind: FaultKind
    retry_after: int = 1
    description: str | None = None
    timeout_applies: bool = False
    delay: float | None = None
    """How long a timeout holds the answer; None means the fake's `timeout_delay`."""


@dataclass(eq=False)
class InjectedFault:
    """A queued fault for the next `remaining` matching calls."""

    fault: Fault
    method: str | None
    chat_id: int | None
    remaining: int

    def matches(self, method: str, chat_id: int | None) -> bool:
        """Whether a call of `method` to `chat_id` takes this fault."""
        if self.method is not None and self.method.lower() != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id


@dataclass(frozen=True)
class FiredFault:
    """A fault that was actually answered, for assertions."""

    method: str
    chat_id: int | None
    kind: FaultKind
    injected: bool


@dataclass
class FaultRates:
    """Probabilities per call of the random policy."""

    server_error: float = 0.0
    timeout: float = 0.0
    too_many_requests: float = 0.0
    methods: frozenset[str] = DEFAULT_FAULTY_METHODS
    retry_after: int = 1
    timeout_applies: bool = False


class Faults:
    """Queued faults first, then the random policy; remembers every fault it fired."""

    def __init__(self, seed: int = 0) -> None:
        self.pending: list[InjectedFault] = []
        self.fired: list[FiredFault] = []
        self.rates = FaultRates()
        self._random = random.Random(seed)

    def inject(
        self,
        method: str | None = "sendMessage",
        chat_id: int | None = None,
        kind: FaultKind = "5xx",
        times: int = 1,
        retry_after: int = 1,
        *,
        description: str | None = None,
        timeout_applies: bool = False,
        delay: float | None = None,
    ) -> InjectedFault:
        """Queue `kind` for the next `times` calls of `method` (None: any) to `chat_id`."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if method is None and chat_id is None:
            raise ValueError("a fault needs a method, a chat_id, or both")
        if times < 1:
            raise ValueError("times must be at least 1")
        injected = InjectedFault(
            fault=Fault(
                kind=kind,
                retry_after=retry_after,
                description=description,
                timeout_applies=timeout_applies,
                delay=delay,
            ),
            method=method,
            chat_id=chat_id,
            remaining=times,
        )
        self.pending.append(injected)
        return injected

    def set_rates(
        self,
        server_error: float = 0.0,
        timeout: float = 0.0,
        too_many_requests: float = 0.0,
        *,
        seed: int | None = None,
        methods: frozenset[str] = DEFAULT_FAULTY_METHODS,
        retry_after: int = 1,
        timeout_applies: bool = False,
    ) -> None:
        """Make each call of `methods` fail at random with these probabilities."""
        if server_error + timeout + too_many_requests > 1.0:
            raise ValueError("fault probabilities add up to more than 1")
        for rate in (server_error, timeout, too_many_requests):
            if rate < 0:
                raise ValueError("fault probabilities cannot be negative")
        self.rates = FaultRates(
            server_error=server_error,
            timeout=timeout,
            too_many_requests=too_many_requests,
            methods=methods,
            retry_after=retry_after,
            timeout_applies=timeout_applies,
        )
        if seed is not None:
            self._random = random.Random(seed)

    def clear(self) -> None:
        """Drop queued faults and switch the random policy off."""
        self.pending.clear()
        self.rates = FaultRates()

    def take(self, method: str, chat_id: int | None) -> Fault | None:
        """The fault this call gets, if any (consuming a queued one)."""
        for injected in self.pending:
            if injected.matches(method, chat_id):
                injected.remaining -= 1
                if injected.remaining == 0:
                    self.pending.remove(injected)
                self.fired.append(FiredFault(method, chat_id, injected.fault.kind, True))
                return injected.fault
        rates = self.rates
        if method not in rates.methods:
            return None
        total = rates.server_error + rates.timeout + rates.too_many_requests
        if total <= 0:
            return None
        roll = self._random.random()
        kind: FaultKind
        if roll < rates.server_error:
            kind = "5xx"
        elif roll < rates.server_error + rates.timeout:
            kind = "timeout"
        elif roll < total:
            kind = "429"
        else:
            return None
        self.fired.append(FiredFault(method, chat_id, kind, False))
        return Fault(
            kind=kind, retry_after=rates.retry_after, timeout_applies=rates.timeout_applies
        )
