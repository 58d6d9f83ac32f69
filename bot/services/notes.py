"""The therapist-only view of words a partner kept for their therapist (``/notes HANDLE``).

A check-in note or a prompt's reply answered "No, just for my therapist" (or left without
an answer to "OK to raise in session?") is never quoted in the digest, which may be shown
in session, nor sent by e-mail or webhook. The partner was told their therapist would read
it: here they can, in their private chat, and every read is in the audit log.

Both partners are shown in the same form with the same room (newest first, whole while
they fit); which partner comes first follows the digest's alternation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.core.digest import cut_at_word
from bot.locales.formats import format_datetime
from bot.services.crypto import Cipher
from bot.services.safety_flow import FREE_TEXT
from bot.services.texts import msg, msgn
from db.models import CheckIn, Couple, Partner, Response, Slot, Therapist
from db.uow import UnitOfWork

ROOM_PER_PARTNER = 1600  # two partners, headings and dates stay inside one Telegram message
PERIOD = timedelta(days=60)


@dataclass(frozen=True)
class PrivateNote:
    """One kept-private text: when, and its words."""

    at: datetime
    text: str


async def private_notes(
    uow: UnitOfWork, partner: Partner, cipher: Cipher, since: datetime
) -> list[PrivateNote]:
    """The partner's check-in notes and prompt replies not marked OK to raise, newest first."""
    notes = [
        PrivateNote(row.completed_at or row.started_at, cipher.decrypt(row.note_ciphertext))
        for row in await uow.session.scalars(
            select(CheckIn).where(
                CheckIn.partner_id == partner.id,
                CheckIn.note_ciphertext.is_not(None),
                CheckIn.ok_to_raise.is_not(True),
                CheckIn.started_at >= since,
            )
        )
        if row.note_ciphertext is not None
    ]
    notes += [
        PrivateNote(row.created_at, cipher.decrypt(row.text_ciphertext))
        for row in await uow.session.scalars(
            select(Response).where(
                Response.partner_id == partner.id,
                Response.text_ciphertext.is_not(None),
                Response.ok_to_raise.is_(False),
                Response.kind.not_in(("couple_space", FREE_TEXT)),
                Response.created_at >= since,
            )
        )
        if row.text_ciphertext is not None
    ]
    return sorted(notes, key=lambda note: note.at, reverse=True)


def within_room(notes: list[PrivateNote], room: int) -> tuple[list[PrivateNote], int]:
    """The notes shown in ``room`` characters, and how many were left out.

    ``notes`` come newest first (as :func:`private_notes` gives them); each is shown whole
    while it fits and the last one is cut at a word, so both partners, given the same
    room, get the same share of the page (``/notes`` and the console's notes page alike).
    """
    shown: list[PrivateNote] = []
    left = room
    for note in notes:
        if left <= 0:
            break
        text = cut_at_word(note.text, left)
        shown.append(PrivateNote(note.at, text))
        left -= len(note.text)
    return shown, len(notes) - len(shown)


async def notes_view(
    uow: UnitOfWork, therapist: Therapist, couple: Couple, cipher: Cipher, now: datetime
) -> str:
    """Both partners' kept-private words of the last 60 days, side by side; audited."""
    lang = therapist.language
    zone = ZoneInfo(therapist.timezone)
    partners = {p.slot: p for p in await uow.partners.of_couple(couple.id)}
    order: tuple[Slot, Slot] = ("A", "B") if couple.digests_sent % 2 == 0 else ("B", "A")
    lines = [msg(lang, "notes.header", handle=couple.handle, days=PERIOD.days)]
    for slot in order:
        partner = partners.get(slot)
        name = (partner.display_name if partner else None) or msg(lang, "notes.slot", slot=slot)
        lines += ["", msg(lang, "notes.partner", name=name)]
        notes = await private_notes(uow, partner, cipher, now - PERIOD) if partner else []
        shown, left_out = within_room(notes, ROOM_PER_PARTNER)
        if not shown:
            lines.append(msg(lang, "notes.none"))
        for note in shown:
            when = format_datetime(note.at.astimezone(zone), lang)
            lines.append(msg(lang, "notes.item", when=when, text=note.text))
        if left_out:
            lines.append(msgn(lang, "notes.more", left_out))
    lines += ["", msg(lang, "notes.footer")]
    uow.audit.record(
        actor=f"therapist:{therapist.id}", action="notes.read", couple_id=couple.id, at=now
    )
    await uow.commit()
    return "\n".join(lines)
