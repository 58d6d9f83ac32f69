"""A couple's optional Telegram group: it mirrors only what both partners chose to share.

Linking: a partner (or the therapist) asks for a one-time code in their private chat, then
sends ``/linkgroup@bot CODE`` in a group holding both partners, perhaps the therapist, and
the bot. The code is short-lived, single-use and kept only as a hash, and works only for
the couple's own partners and therapist. The group must hold nobody else (getChatMember,
getChatMemberCount); then both partners are asked privately, in the same words, whether
to use it: a phone may be shared or watched, so nobody gets therapy posts in a group they
did not choose. The link is active once both agreed.

What goes there: the shared goal, couple-space questions, and the answers both partners
chose to share, posted together in one message once both are in. Nothing else: the group
renderer takes only those kinds, and before every post checks again that the link is
active and the group still holds only the couple (and their therapist).

Anyone else joining, a partner leaving or the bot being removed suspends the link; both
partners are told privately in the same words, and so is the therapist. Nothing is ever
said in the group about why.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal, Protocol

from sqlalchemy import func, select

from bot.channels.base import Blocked, Button, Migrated, Outgoing, Sent
from bot.channels.registry import GROUP_CHANNEL
from bot.core import callbacks
from bot.core.clock import Clock
from bot.core.tokens import hash_token, looks_like_token, new_token
from bot.locales import LOCALES, resolve
from bot.services.crypto import Cipher
from bot.services.delivery_render import KindRenderer
from bot.services.outbox import enqueue, notify, recipient_key
from bot.services.practice_config import parse_practice_config
from bot.services.texts import UserError, msg
from db.models import (
    LIVE_LINK,
    Couple,
    Delivery,
    DeliveryKind,
    GroupLink,
    GroupLinkCode,
    Partner,
    Response,
    SuspendReason,
    Therapist,
)
from db.uow import UnitOfWork
from schedules.dispatcher import Rendered
from schedules.planner import notify_in_window

log = logging.getLogger(__name__)

CODE_TTL = timedelta(minutes=15)
CONSENT_KIND: Final = "group_consent"
"""The private question each partner answers before a group is used (a Telegram delivery)."""
GROUP_KINDS: frozenset[DeliveryKind] = frozenset(
    {"group_notice", "group_goal", "group_prompt", "group_reveal"}
)
"""Everything that may ever be posted in a group; the renderer refuses any other kind."""
GROUP_NOTICES = frozenset({"group.welcome"})
"""The only catalog texts posted as notices in a group."""
DELETABLE_FOR = timedelta(hours=47)  # Telegram lets a bot delete its own posts for 48 hours
POST_LIMIT = 4000  # under Telegram's 4096, for the language breaks and names
_LANGUAGE_BREAK = "\n\n———\n\n"


class MembershipProbe(Protocol):
    """Who is in a group, as the chat platform says now."""

    @property
    def bot_id(self) -> int:
        """The bot's own user id."""
        ...

    async def member_count(self, chat_id: int) -> int:
        """Everyone in the group, bots included."""
        ...

    async def is_member(self, chat_id: int, user_id: int) -> bool:
        """Whether ``user_id`` is in the group."""
        ...


@dataclass(frozen=True)
class GroupChat:
    """The group an update came from, without Telegram's types."""

    id: int
    type: str
    title: str


@dataclass(frozen=True)
class IssuedCode:
    """A new link code: the code exists only here, never in the database."""

    code: str
    minutes: int


# Looking things up -------------------------------------------------------------------------


async def link_of_couple(uow: UnitOfWork, couple_id: int) -> GroupLink | None:
    """The couple's group link, whatever its state."""
    return await uow.group_links.of_couple(couple_id)


async def link_of_chat(uow: UnitOfWork, chat_id: int) -> GroupLink | None:
    """The link a group chat holds, whatever its state."""
    return await uow.group_links.of_chat(chat_id)


async def group_is_linked(uow: UnitOfWork, couple_id: int) -> bool:
    """Whether the couple has an active group (where shared answers are posted too)."""
    link = await link_of_couple(uow, couple_id)
    return link is not None and link.status == "active"


async def _people(uow: UnitOfWork, couple_id: int) -> tuple[Couple, list[Partner], Therapist]:
    couple = await uow.couples.get(couple_id)
    assert couple is not None
    therapist = await uow.therapists.get(couple.therapist_id)
    assert therapist is not None
    return couple, await uow.partners.of_couple(couple_id), therapist


def _allowed_ids(partners: Sequence[Partner], therapist: Therapist) -> set[int]:
    """Who may be in the group besides the bot: the couple's partners and their therapist."""
    ids = {p.telegram_user_id for p in partners} | {therapist.telegram_user_id}
    return {i for i in ids if i is not None}


def _sender_key(partners: Sequence[Partner], therapist: Therapist, user_id: int) -> str | None:
    """``partner:12`` or ``therapist:3`` for a partner or the therapist of the couple."""
    for partner in partners:
        if partner.active and partner.telegram_user_id == user_id:
            return recipient_key(partner)
    if therapist.telegram_user_id == user_id:
        return recipient_key(therapist)
    return None


def group_languages(partners: Sequence[Partner]) -> list[str]:
    """The locales a group post is written in: each partner's, in a fixed order."""
    spoken = {resolve(p.language) for p in partners if p.active}
    return [locale for locale in LOCALES if locale in spoken] or ["en"]


def group_text(languages: Sequence[str], render: Callable[[str], str]) -> str:
    """One post in every locale of the couple, in the same fixed order (nobody first);
    a text two locales say alike (es-ES and es-419 often do) is posted once."""
    return _LANGUAGE_BREAK.join(dict.fromkeys(render(language) for language in languages))


# Who is in the group -------------------------------------------------------------------------


Verdict = Literal["ok", "partners_missing", "others"]
"""What a membership check found: only the couple (and their therapist), or not."""


async def check_members(
    probe: MembershipProbe, chat_id: int, partner_ids: Sequence[int], therapist_id: int | None
) -> tuple[Verdict, int]:
    """``ok``, ``partners_missing`` or ``others``, and the member count it saw."""
    count = await probe.member_count(chat_id)
    for user_id in partner_ids:
        if not await probe.is_member(chat_id, user_id):
            return "partners_missing", count
    allowed = len(partner_ids) + 1  # and the bot
    if (
        count > allowed
        and therapist_id is not None
        and await probe.is_member(chat_id, therapist_id)
    ):
        allowed += 1
    return ("others" if count > allowed else "ok"), count


# Linking -----------------------------------------------------------------------------------


async def issue_code(uow: UnitOfWork, couple: Couple, issued_by: str, now: datetime) -> IssuedCode:
    """A one-time code for ``/linkgroup CODE`` in the couple's group; only its hash is kept."""
    partners = await uow.partners.of_couple(couple.id)
    if (
        couple.status != "active"
        or couple.space_ready_at is None
        or not all(p.active for p in partners)
    ):
        raise UserError("group.needs_space")
    if await group_is_linked(uow, couple.id):
        raise UserError("group.linked_elsewhere")
    code = new_token()
    uow.group_links.add_code(
        GroupLinkCode(
            code_hash=hash_token(code),
            couple_id=couple.id,
            issued_by=issued_by,
            created_at=now,
            expires_at=now + CODE_TTL,
        )
    )
    await uow.commit()
    return IssuedCode(code, int(CODE_TTL.total_seconds()) // 60)


async def redeem_code(
    uow: UnitOfWork,
    probe: MembershipProbe,
    code: str,
    sender_id: int,
    chat: GroupChat,
    now: datetime,
) -> Outgoing:
    """``/linkgroup CODE`` in a group: check it, then ask both partners privately."""
    if chat.type not in ("group", "supergroup"):
        raise UserError("group.only_in_groups")
    if not looks_like_token(code):
        raise UserError("group.code_unknown")
    row = await uow.group_links.code_by_hash(hash_token(code))
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise UserError("group.code_unknown")
    couple, partners, therapist = await _people(uow, row.couple_id)
    linked_by = _sender_key(partners, therapist, sender_id)
    # A code is no use to anyone but the couple's partners and their therapist: another
    # couple's code reads as unknown, and says nothing about whose it is.
    if couple.status != "active" or linked_by is None:
        raise UserError("group.code_unknown")
    sender = next((p for p in partners if p.telegram_user_id == sender_id and p.active), therapist)

    async def refuse(reason: str) -> UserError:
        # Whoever else is in the group learns nothing: the reason goes to the sender privately.
        await notify(
            uow,
            sender,
            reason,
            dedupe_key=f"{reason}:{now.isoformat()}",
            now=now,
            couple_id=couple.id,
        )
        await uow.commit()
        return UserError("group.refused")

    if not all(p.active and p.telegram_user_id is not None for p in partners):
        raise await refuse("group.needs_space")
    link = await link_of_couple(uow, couple.id)
    if link is not None and link.chat_id == chat.id and link.status in LIVE_LINK:
        raise await refuse("group.already_linked")
    if link is not None and link.status == "active":
        raise await refuse("group.linked_elsewhere")
    # A link still waiting for both to agree gives way to this one (its buttons go stale).
    held = await link_of_chat(uow, chat.id)
    if held is not None and held.couple_id != couple.id and held.status in LIVE_LINK:
        raise await refuse("group.has_others")  # that couple's partners are outsiders here
    partner_ids = [p.telegram_user_id for p in partners if p.telegram_user_id is not None]
    verdict, count = await check_members(probe, chat.id, partner_ids, therapist.telegram_user_id)
    if verdict != "ok":
        raise await refuse("group.has_others" if verdict == "others" else "group.partners_missing")
    if not await uow.group_links.claim_code(row.id, now):
        raise UserError("group.code_unknown")
    if held is not None and held.couple_id != couple.id:
        held.chat_id, held.status = None, "unlinked"
        await uow.flush()  # the chat id is unique: free it before this couple takes it
    if link is None:
        link = GroupLink(couple_id=couple.id, attempt=0, linked_by=linked_by, created_at=now)
        uow.group_links.add(link)
    link.chat_id = chat.id
    link.status = "pending"
    link.attempt += 1
    link.linked_by = linked_by
    link.members_seen = count
    link.a_agreed_at = link.b_agreed_at = None
    link.created_at = now
    link.active_since = link.suspended_at = None
    link.suspended_reason = None
    await uow.flush()
    for partner in partners:
        await enqueue(
            uow,
            partner,
            kind=CONSENT_KIND,
            key="group.consent_question",
            dedupe_key=f"group_consent:{link.id}:{link.attempt}",
            due_at=now,
            couple_id=couple.id,
            params={"link_id": link.id, "attempt": link.attempt, "title": chat.title[:128]},
        )
    uow.audit.record(actor=linked_by, action="group.link_asked", couple_id=couple.id, at=now)
    await uow.commit()
    return Outgoing(
        group_text(group_languages(partners), lambda lang: msg(lang, "group.consent_asked"))
    )


async def answer_consent(
    uow: UnitOfWork, partner: Partner, link_id: int, attempt: int, choice: str, now: datetime
) -> Outgoing:
    """A partner's private yes or no; the link is active once both said yes."""
    link = await uow.group_links.get(link_id)
    if (
        link is None
        or link.couple_id != partner.couple_id
        or link.attempt != attempt
        or link.status != "pending"
        or choice not in ("yes", "no")
    ):
        raise UserError("common.stale_button")
    if choice == "no":
        if await uow.group_links.end_pending(link_id, attempt):
            await _tell(
                uow,
                link.couple_id,
                "group.declined",
                "group.therapist_declined",
                now,
                happening=f"{link_id}.{attempt}",
                asker=recipient_key(partner),
            )
            uow.audit.record(
                actor=recipient_key(partner),
                action="group.declined",
                couple_id=link.couple_id,
                at=now,
            )
    else:
        # Conditional, so that two partners agreeing at once on two workers both count.
        agreed = await uow.group_links.agree(link_id, attempt, partner.slot, now)
        if agreed is None:
            raise UserError("common.stale_button")
        if None not in agreed:
            await _activate(uow, link.couple_id, link_id, attempt, now, recipient_key(partner))
    await uow.commit()
    return Outgoing(msg(partner.language, "group.consent_noted"))


async def _activate(
    uow: UnitOfWork, couple_id: int, link_id: int, attempt: int, now: datetime, asker: str
) -> None:
    if not await uow.group_links.activate(link_id, attempt, now):
        return
    await _enqueue_post(
        uow,
        couple_id,
        kind="group_notice",
        key="group.welcome",
        dedupe_key=f"welcome:{link_id}:{attempt}",
        now=now,
    )
    await _tell(
        uow,
        couple_id,
        "group.linked",
        "group.therapist_linked",
        now,
        happening=f"{link_id}.{attempt}",
        asker=asker,
    )
    uow.audit.record(actor="system", action="group.linked", couple_id=couple_id, at=now)


async def _tell(
    uow: UnitOfWork,
    couple_id: int,
    partner_key: str,
    therapist_key: str,
    now: datetime,
    *,
    happening: str,
    asker: str | None = None,
    **therapist_params: Any,
) -> None:
    """Both partners privately, in the same words; the therapist in theirs.

    ``happening`` names what happened (the link and its attempt), so that the same kind of
    news about another attempt is never taken for a repeat of this one. ``asker`` is whoever
    did it (``partner:12``): for them the notice is the reply to their own command or
    button, sent at once; for a partner who did nothing it is Dyad's initiative, and waits
    for their window outside quiet hours (within the daily maximum).
    """
    couple, partners, therapist = await _people(uow, couple_id)
    dedupe = f"{partner_key}:{couple_id}:{happening}:{now.isoformat()}"
    for partner in partners:
        if not partner.active:
            continue
        if recipient_key(partner) == asker:  # a reply
            await notify(uow, partner, partner_key, dedupe_key=dedupe, now=now, couple_id=couple_id)
        else:  # an initiative
            await notify_in_window(
                uow, partner, partner_key, dedupe_key=dedupe, now=now, couple_id=couple_id
            )
    await notify(
        uow,
        therapist,
        therapist_key,
        dedupe_key=dedupe,
        now=now,
        couple_id=couple_id,
        handle=couple.handle,
        **therapist_params,
    )


async def unlink(uow: UnitOfWork, couple: Couple, actor: str, now: datetime) -> None:
    """``/unlinkgroup``: nothing more is posted in the group; everyone is told privately."""
    link = await link_of_couple(uow, couple.id)
    if link is None or link.status == "unlinked":
        raise UserError("group.not_linked")
    if await uow.group_links.unlink(link.id):
        await _tell(
            uow,
            couple.id,
            "group.unlinked",
            "group.therapist_unlinked",
            now,
            happening=f"{link.id}.{link.attempt}",
            asker=actor,
        )
        uow.audit.record(actor=actor, action="group.unlinked", couple_id=couple.id, at=now)
    await uow.commit()


async def unlink_from_group(
    uow: UnitOfWork, chat_id: int, sender_id: int, now: datetime
) -> Outgoing:
    """``/unlinkgroup`` typed in the group, by a partner or the therapist."""
    link = await link_of_chat(uow, chat_id)
    if link is None or link.status == "unlinked":
        raise UserError("group.not_linked_here")
    couple, partners, therapist = await _people(uow, link.couple_id)
    actor = _sender_key(partners, therapist, sender_id)
    if actor is None:
        raise UserError("group.not_yours")
    languages = group_languages(partners)
    await unlink(uow, couple, actor, now)
    return Outgoing(group_text(languages, lambda lang: msg(lang, "group.unlinked_here")))


# What happens in the group -----------------------------------------------------------------


async def suspend(uow: UnitOfWork, link_id: int, reason: SuspendReason, now: datetime) -> bool:
    """Stop posting in a live link's group and tell everyone privately; False if not live."""
    suspended = await uow.group_links.suspend(link_id, reason, now)
    if suspended is None:
        return False
    couple_id, attempt = suspended
    await _tell(
        uow,
        couple_id,
        f"group.suspended_{reason}",
        "group.therapist_suspended",
        now,
        happening=f"{link_id}.{attempt}",
        reason_key=f"group.reason_{reason}",
    )
    uow.audit.record(
        actor="system", action="group.suspended", couple_id=couple_id, at=now, detail=reason
    )
    return True


async def seat_changed(uow: UnitOfWork, couple: Couple, now: datetime) -> bool:
    """Who holds a seat changed (a partner left or erased, a newcomer was invited): suspend.

    The consent both partners gave was theirs: a group is used again only after a new
    ``/linkgroup`` that the two current partners agree to.
    """
    link = await link_of_couple(uow, couple.id)
    return link is not None and await suspend(uow, link.id, "seat_changed", now)


async def end_for_erasure(
    uow: UnitOfWork, couple: Couple, response_ids: Sequence[int], now: datetime
) -> list[tuple[int, int]]:
    """A partner erased their data: end the group link, and say which posts to delete.

    Returns (chat id, message id) of the group posts that showed any of ``response_ids``
    and that Telegram still lets a bot delete (its own messages, for 48 hours). Posts not
    yet sent are dropped. The link ends (``unlinked``, the chat forgotten).
    """
    link = await link_of_couple(uow, couple.id)
    if link is None:
        return []
    chat_id = link.chat_id
    erased = set(response_ids)
    deletable: list[tuple[int, int]] = []
    posts = await uow.session.scalars(
        select(Delivery).where(Delivery.couple_id == couple.id, Delivery.channel == GROUP_CHANNEL)
    )
    for post in posts:
        shown = {int(i) for i in post.params.get("response_ids", [])}
        if post.status == "pending":
            await uow.session.delete(post)
        elif (
            shown & erased
            and post.status == "sent"
            and post.message_id is not None
            and post.sent_at is not None
            and now - post.sent_at < DELETABLE_FOR
            and chat_id is not None
        ):
            deletable.append((chat_id, post.message_id))
    if link.status in LIVE_LINK:
        await suspend(uow, link.id, "seat_changed", now)
    link.status, link.chat_id = "unlinked", None
    uow.audit.record(
        actor="system",
        action="group.ended_erasure",
        couple_id=couple.id,
        at=now,
        detail=f"posts_deleted={len(deletable)}",
    )
    return deletable


async def migrated(uow: UnitOfWork, old_chat_id: int, now: datetime) -> bool:
    """Telegram upgraded a linked group to a supergroup (a new chat id): suspend its link.

    The old id is forgotten, so the new supergroup can be linked again with ``/linkgroup``
    once both partners agree (the upgrade may have come with new members).
    """
    link = await link_of_chat(uow, old_chat_id)
    if link is None:
        return False
    suspended = await suspend(uow, link.id, "migrated", now)
    link.chat_id = None
    await uow.commit()
    return suspended


async def members_joined(
    uow: UnitOfWork, chat_id: int, user_ids: Sequence[int], bot_id: int, now: datetime
) -> bool:
    """People joined a group: anyone but the couple, their therapist or the bot suspends it."""
    link = await link_of_chat(uow, chat_id)
    if link is None or link.status not in LIVE_LINK:
        return False
    _, partners, therapist = await _people(uow, link.couple_id)
    allowed = _allowed_ids(partners, therapist) | {bot_id}
    if all(user_id in allowed for user_id in user_ids):
        return False
    suspended = await suspend(uow, link.id, "outsider", now)
    await uow.commit()
    return suspended


async def member_left(
    uow: UnitOfWork, chat_id: int, user_id: int, bot_id: int, now: datetime
) -> bool:
    """Someone left a group: a partner or the bot leaving suspends its link."""
    link = await link_of_chat(uow, chat_id)
    if link is None or link.status not in LIVE_LINK:
        return False
    reason: SuspendReason
    if user_id == bot_id:
        reason = "bot_removed"
    else:
        _, partners, _ = await _people(uow, link.couple_id)
        if user_id not in {p.telegram_user_id for p in partners}:
            return False
        reason = "partner_left"
    suspended = await suspend(uow, link.id, reason, now)
    await uow.commit()
    return suspended


# Posting shared content ----------------------------------------------------------------------


async def _enqueue_post(
    uow: UnitOfWork,
    couple_id: int,
    *,
    kind: DeliveryKind,
    key: str,
    dedupe_key: str,
    now: datetime,
    params: dict[str, Any] | None = None,
) -> bool:
    """Queue one post in the couple's group (the only way anything is queued for a group)."""
    if kind not in GROUP_KINDS:
        raise ValueError(f"{kind!r} may never be posted in a group")
    return await uow.deliveries.queue(
        recipient=f"group:{couple_id}",
        couple_id=couple_id,
        channel=GROUP_CHANNEL,
        kind=kind,
        key=key,
        params=params,
        dedupe_key=dedupe_key,
        due_at=now,
    )


async def post_goal(uow: UnitOfWork, couple: Couple, now: datetime) -> None:
    """The therapist set the shared goal: post it in the couple's group too."""
    if await group_is_linked(uow, couple.id):
        await _enqueue_post(
            uow,
            couple.id,
            kind="group_goal",
            key="group.goal",
            dedupe_key=f"goal:{now.isoformat()}",
            now=now,
        )


async def post_space_prompt(uow: UnitOfWork, delivery: Delivery) -> None:
    """A couple-space question went to a partner: post it in the group, once a week."""
    if delivery.kind != "couple_space" or delivery.couple_id is None:
        return
    if not await group_is_linked(uow, delivery.couple_id):
        return
    when = delivery.sent_at or delivery.due_at
    # Each partner gets the week's question on their own local day: one post for both.
    day = date.fromisoformat(delivery.local_date) if delivery.local_date else when.date()
    year, week, _ = day.isocalendar()
    await _enqueue_post(
        uow,
        delivery.couple_id,
        kind="group_prompt",
        key=delivery.key,
        dedupe_key=f"space:{delivery.key}:{year}-W{week:02d}",
        now=when,
    )


async def post_shared_answers(
    uow: UnitOfWork, first: Response, second: Response, now: datetime
) -> None:
    """Both partners shared their couple-space answers: post them together, in one message."""
    if not (first.share and second.share) or not await group_is_linked(uow, first.couple_id):
        return
    earlier = await uow.session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.couple_id == first.couple_id, Delivery.kind == "group_reveal")
    )
    pair = sorted((first.id, second.id))
    await _enqueue_post(
        uow,
        first.couple_id,
        kind="group_reveal",
        key=first.prompt_key,
        dedupe_key=f"reveal:{pair[0]}:{pair[1]}",
        now=now,
        # Whose answer comes first alternates from one post to the next.
        params={"response_ids": pair, "first_slot": "A" if (earlier or 0) % 2 == 0 else "B"},
    )


def compose_shared_answers(header: str, answers: Sequence[tuple[str, str]]) -> str:
    """The header, then each (name, answer); every answer gets the same room (HTML-escaped)."""
    overhead = len(header) + sum(len(name) + 4 for name, _ in answers)
    room = max(1, (POST_LIMIT - overhead) // max(1, len(answers)))
    parts = [header]
    for name, answer in answers:
        shown = answer if len(answer) <= room else answer[: room - 1].rstrip() + "…"
        parts.append(f"<b>{html.escape(name, False)}</b>\n{html.escape(shown, False)}")
    return "\n\n".join(parts)


class GroupRenderer:
    """Renders a linked group's posts: shared content only, and only while the group is safe.

    Registered for the ``telegram_group`` channel; the address is the group's chat id.
    """

    def __init__(self, cipher: Cipher, probe: MembershipProbe, clock: Clock) -> None:
        self.cipher = cipher
        self.probe = probe
        self.clock = clock

    async def render(self, uow: UnitOfWork, delivery: Delivery) -> Rendered | None:
        """The post and the group's chat id, or None to skip it."""
        if (
            delivery.channel != GROUP_CHANNEL
            or delivery.kind not in GROUP_KINDS
            or delivery.couple_id is None
        ):
            log.warning("not a group post; skipped", extra={"delivery_id": delivery.id})
            return None
        link = await link_of_couple(uow, delivery.couple_id)
        if link is None or link.status != "active" or link.chat_id is None:
            return None
        couple, partners, therapist = await _people(uow, link.couple_id)
        active = [p for p in partners if p.active and p.telegram_user_id is not None]
        if couple.status != "active" or len(active) != len(partners):
            return None
        if not await self._still_only_the_couple(uow, link, active, therapist):
            return None
        text = await self._text(uow, delivery, couple, active)
        return None if text is None else Rendered(link.chat_id, Outgoing(text))

    async def on_sent(self, uow: UnitOfWork, delivery: Delivery, sent: Sent) -> None:
        """A post starts nothing."""

    async def on_blocked(self, uow: UnitOfWork, delivery: Delivery, now: datetime) -> None:
        """The bot was removed from the group: suspend its link."""
        if delivery.couple_id is None:
            return
        link = await link_of_couple(uow, delivery.couple_id)
        if link is not None:
            await suspend(uow, link.id, "bot_removed", now)

    async def _still_only_the_couple(
        self, uow: UnitOfWork, link: GroupLink, partners: list[Partner], therapist: Therapist
    ) -> bool:
        """Ask the group who is in it; anyone else there (or a partner gone) suspends it."""
        assert link.chat_id is not None
        now = self.clock.now()
        # Every post asks again: every current partner is in the group and nobody else is.
        # (A member count equal to the last one proves nothing: one left and one joined.)
        reason: SuspendReason | None = None
        try:
            ids = [p.telegram_user_id for p in partners if p.telegram_user_id is not None]
            verdict, count = await check_members(
                self.probe, link.chat_id, ids, therapist.telegram_user_id
            )
        except Migrated:
            await migrated(uow, link.chat_id, now)
            return False
        except Blocked:
            reason = "bot_removed"
        else:
            if verdict == "ok":
                link.members_seen = count
            else:
                reason = "outsider" if verdict == "others" else "partner_left"
        if reason is not None:
            await suspend(uow, link.id, reason, now)
        # The render's unit of work is not committed by the dispatcher: keep what we learnt.
        await uow.commit()
        return reason is None

    async def _text(
        self, uow: UnitOfWork, delivery: Delivery, couple: Couple, partners: list[Partner]
    ) -> str | None:
        # Nothing in a post comes from the delivery's parameters but ids checked here again:
        # the words are catalog texts, library prompts, the couple's goal and shared answers.
        languages = group_languages(partners)
        if delivery.kind == "group_notice":
            if delivery.key not in GROUP_NOTICES:
                return None

            def notice(lang: str) -> str:
                text = msg(lang, delivery.key)
                if couple.shared_goal:
                    text += "\n\n" + msg(lang, "group.goal", goal=couple.shared_goal)
                return text

            return group_text(languages, notice)
        if delivery.kind == "group_goal":
            goal = couple.shared_goal
            if not goal:
                return None
            return group_text(languages, lambda lang: msg(lang, "group.goal", goal=goal))
        practice = await uow.practices.get(couple.practice_id)
        assert practice is not None
        library = parse_practice_config(practice.config_toml).library
        if delivery.key not in library or library.get(delivery.key).kind != "couple_space":
            return None

        def title(lang: str) -> str:
            return library.text(delivery.key, lang, name="").strip()

        if delivery.kind == "group_prompt":
            return group_text(
                languages, lambda lang: msg(lang, "group.space_prompt", prompt=title(lang))
            )
        if delivery.kind == "group_reveal":
            return await self._shared_answers(uow, delivery, couple, partners, languages, title)
        return None

    async def _shared_answers(
        self,
        uow: UnitOfWork,
        delivery: Delivery,
        couple: Couple,
        partners: list[Partner],
        languages: list[str],
        title: Callable[[str], str],
    ) -> str | None:
        ids = [int(i) for i in delivery.params.get("response_ids", [])]
        responses = [await uow.session.get(Response, i) for i in ids]
        by_partner = {p.id: p for p in partners}
        answers: dict[str, tuple[str, str]] = {}
        for response in responses:
            # Every condition again at send time: both shared, neither raised a risk flag.
            if (
                response is None
                or response.couple_id != couple.id
                or response.kind != "couple_space"
                or response.prompt_key != delivery.key
                or response.share is not True
                or response.risk
                or response.text_ciphertext is None
                or response.partner_id not in by_partner
            ):
                return None
            partner = by_partner[response.partner_id]
            name = partner.display_name or partner.slot
            answers[partner.slot] = (name, self.cipher.decrypt(response.text_ciphertext))
        if sorted(answers) != ["A", "B"]:
            return None
        first = str(delivery.params.get("first_slot", "A"))
        order = ["A", "B"] if first == "A" else ["B", "A"]
        header = group_text(languages, lambda lang: msg(lang, "group.revealed", prompt=title(lang)))
        return compose_shared_answers(header, [answers[slot] for slot in order])


class GroupConsentRenderer(KindRenderer):
    """The private question each partner answers before a group is used (same words to both)."""

    async def render(
        self, uow: UnitOfWork, delivery: Delivery, person: Partner | Therapist
    ) -> Outgoing | None:
        if not isinstance(person, Partner) or not person.active:
            return None
        link = await uow.group_links.get(int(delivery.params.get("link_id", 0)))
        attempt = int(delivery.params.get("attempt", 0))
        if (
            link is None
            or link.couple_id != person.couple_id
            or link.status != "pending"
            or link.attempt != attempt
        ):
            return None
        lang = person.language
        row = (
            Button(msg(lang, "group.consent_yes"), callbacks.encode("gl", link.id, attempt, "yes")),
            Button(msg(lang, "group.consent_no"), callbacks.encode("gl", link.id, attempt, "no")),
        )
        title = str(delivery.params.get("title", ""))
        return Outgoing(msg(lang, "group.consent_question", title=title), (row,))
