"""What each kind of delivery says when the dispatcher sends it, in the recipient's language.

A delivery to a person goes to their address on its channel: a Telegram chat (the
default), or a therapist's email address (partners have none: nothing of theirs is ever
emailed). Channels whose deliveries go to no person (a practice's webhooks) register a
:class:`ChannelRenderer` in ``channels``.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import datetime
from typing import Protocol

from bot.channels.base import Address, Button, Outgoing, Sent
from bot.channels.registry import EMAIL, TELEGRAM
from bot.core import callbacks
from bot.locales import t
from bot.services.reachability import mark_unreachable
from bot.services.texts import msg
from db.models import Delivery, Partner, Therapist
from db.uow import UnitOfWork
from schedules.dispatcher import Rendered, Renderer

DISCREET_NOTICES = frozenset({"couple.goal_set", "couple.space_ready_goal"})
"""Notices that carry shared words (the goal): a neutral note with Open in discreet mode."""


def discreet_note(partner: Partner, action: str, delivery_id: int) -> Outgoing:
    """The neutral, silent note a discreet partner gets, with an Open button."""
    button = Button(msg(partner.language, "prompts.open"), callbacks.encode(action, delivery_id))
    return Outgoing(msg(partner.language, "prompts.discreet_ready"), ((button,),), silent=True)


# Notices a partner still receives after leaving or after the couple closed.
_FAREWELLS = frozenset({"couple.closed"})
_TAGS = re.compile(r"<[^>]+>")


class ChannelRenderer(Protocol):
    """Renders every delivery of a channel that is addressed to no person (webhooks)."""

    async def render(self, uow: UnitOfWork, delivery: Delivery) -> Rendered | None:
        """The message and its address, or None to skip it."""
        ...

    async def on_sent(self, uow: UnitOfWork, delivery: Delivery, sent: Sent) -> None:
        """What the sent message starts."""
        ...


def address_on(person: Partner | Therapist, channel: str) -> Address | None:
    """Where a person is reached on a channel, if they are."""
    if channel == TELEGRAM:
        return person.chat_id
    if channel == EMAIL:
        # Only therapists have an email address: a partner's words never go by email.
        return person.email if isinstance(person, Therapist) else None
    raise LookupError(f"no renderer for channel {channel!r}")


class DyadRenderer(Renderer):
    """Renders notices now; prompts and check-ins register their own renderers."""

    def __init__(self) -> None:
        self.kinds: dict[str, KindRenderer] = {}
        self.channels: dict[str, ChannelRenderer] = {}

    async def _recipient(self, uow: UnitOfWork, delivery: Delivery) -> Partner | Therapist | None:
        """The delivery's person, when they can still be reached on its channel."""
        person: Partner | Therapist | None = None
        if delivery.partner_id is not None:
            partner = await uow.partners.get(delivery.partner_id)
            if partner is None or not partner.reachable:
                return None
            if partner.left_at is not None and delivery.key not in _FAREWELLS:
                return None
            person = partner
        elif delivery.therapist_id is not None:
            person = await uow.therapists.get(delivery.therapist_id)
        if person is None or address_on(person, delivery.channel) is None:
            return None
        return person

    async def render(self, uow: UnitOfWork, delivery: Delivery) -> Rendered | None:
        channel = self.channels.get(delivery.channel)
        if channel is not None:
            return await channel.render(uow, delivery)
        person = await self._recipient(uow, delivery)
        if person is None:
            return None
        address = address_on(person, delivery.channel)
        assert address is not None
        if delivery.kind == "notice":
            if delivery.channel == EMAIL:
                return Rendered(address, email_notice(person, delivery))
            if delivery.channel != TELEGRAM:
                raise LookupError(f"notices go by Telegram, not {delivery.channel!r}")
            if isinstance(person, Partner) and person.discreet and delivery.key in DISCREET_NOTICES:
                return Rendered(address, discreet_note(person, "no", delivery.id))
            text = msg(
                person.language, delivery.key, **notice_params(person.language, delivery.params)
            )
            return Rendered(address, Outgoing(text))
        kind = self.kinds.get(delivery.kind)
        if kind is None:
            raise LookupError(f"no renderer for delivery kind {delivery.kind!r}")
        message = await kind.render(uow, delivery, person)
        return None if message is None else Rendered(address, message)

    async def on_sent(self, uow: UnitOfWork, delivery: Delivery, sent: Sent) -> None:
        channel = self.channels.get(delivery.channel)
        if channel is not None:
            await channel.on_sent(uow, delivery, sent)
            return
        kind = self.kinds.get(delivery.kind)
        if kind is not None:
            await kind.on_sent(uow, delivery, sent)

    async def on_blocked(self, uow: UnitOfWork, delivery: Delivery, now: datetime) -> None:
        channel = self.channels.get(delivery.channel)
        if channel is not None and hasattr(channel, "on_blocked"):
            await channel.on_blocked(uow, delivery, now)  # e.g. the bot removed from a group
            return
        if delivery.partner_id is None:
            return
        await mark_unreachable(uow, delivery.partner_id, now)


def email_notice(person: Partner | Therapist, delivery: Delivery) -> Outgoing:
    """A notice as a plain-text email (an urgent one that Telegram could not deliver in time)."""
    language = person.language
    params = notice_params(language, delivery.params)
    text = html.unescape(_TAGS.sub("", t(language, delivery.key, **params)))
    footer = t(language, "email.notice_footer")
    digest = hashlib.sha256(f"{delivery.recipient}/{delivery.dedupe_key}".encode()).hexdigest()
    return Outgoing(
        f"{text}\n\n-- \n{footer}\n",
        subject=t(language, "email.notice_subject", handle=str(params.get("handle", ""))),
        idempotency_key=f"dyad-notice-{delivery.id}-{digest[:16]}",
    )


def notice_params(language: str, params: dict[str, object]) -> dict[str, object]:
    """A notice's parameters; ``x_key`` ones are catalog keys, given as ``x`` in the language."""
    out: dict[str, object] = {}
    for name, value in params.items():
        if name.endswith("_key") and isinstance(value, str):
            out[name.removesuffix("_key")] = t(language, value)
        else:
            out[name] = value
    return out


class KindRenderer:
    """Renders one delivery kind (prompts, check-ins, digests)."""

    async def render(
        self, uow: UnitOfWork, delivery: Delivery, person: Partner | Therapist
    ) -> Outgoing | None:
        """The message, or None to skip."""
        raise NotImplementedError

    async def on_sent(self, uow: UnitOfWork, delivery: Delivery, sent: Sent) -> None:
        """What the sent message starts."""
