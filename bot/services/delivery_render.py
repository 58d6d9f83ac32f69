"""What each kind of delivery says when the dispatcher sends it, in the recipient's language."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from bot.channels.base import Outgoing, Sent
from bot.locales import t
from bot.services.outbox import notify
from bot.services.texts import msg
from db.models import Delivery, Partner, Therapist
from db.uow import UnitOfWork
from schedules.dispatcher import Rendered, Renderer

# Notices a partner still receives after leaving or after the couple closed.
_FAREWELLS = frozenset({"couple.closed"})


class DyadRenderer(Renderer):
    """Renders notices now; prompts and check-ins register their own renderers."""

    def __init__(self) -> None:
        self.kinds: dict[str, KindRenderer] = {}

    async def _recipient(self, uow: UnitOfWork, delivery: Delivery) -> Partner | Therapist | None:
        if delivery.partner_id is not None:
            partner = await uow.partners.get(delivery.partner_id)
            if partner is None or partner.chat_id is None or not partner.reachable:
                return None
            if partner.left_at is not None and delivery.key not in _FAREWELLS:
                return None
            return partner
        if delivery.therapist_id is not None:
            therapist = await uow.therapists.get(delivery.therapist_id)
            if therapist is None or therapist.chat_id is None:
                return None
            return therapist
        return None

    async def render(self, uow: UnitOfWork, delivery: Delivery) -> Rendered | None:
        person = await self._recipient(uow, delivery)
        if person is None or person.chat_id is None:
            return None
        if delivery.kind == "notice":
            text = msg(
                person.language, delivery.key, **notice_params(person.language, delivery.params)
            )
            return Rendered(person.chat_id, Outgoing(text))
        kind = self.kinds.get(delivery.kind)
        if kind is None:
            raise LookupError(f"no renderer for delivery kind {delivery.kind!r}")
        message = await kind.render(uow, delivery, person)
        return None if message is None else Rendered(person.chat_id, message)

    async def on_sent(self, uow: UnitOfWork, delivery: Delivery, sent: Sent) -> None:
        kind = self.kinds.get(delivery.kind)
        if kind is not None:
            await kind.on_sent(uow, delivery, sent)

    async def on_blocked(self, uow: UnitOfWork, delivery: Delivery, now: datetime) -> None:
        if delivery.partner_id is None:
            return
        # Conditional, so that of several workers hitting 403 at once only one tells the therapist.
        marked = await uow.session.execute(
            update(Partner)
            .where(Partner.id == delivery.partner_id, Partner.reachable.is_(True))
            .values(reachable=False, unreachable_since=now)
            .execution_options(synchronize_session=False)
        )
        if marked.rowcount != 1:  # type: ignore[attr-defined]
            return
        partner = await uow.partners.get(delivery.partner_id)
        assert partner is not None
        await uow.session.refresh(partner)
        couple = await uow.couples.get(partner.couple_id)
        assert couple is not None
        therapist = await uow.therapists.get(couple.therapist_id)
        assert therapist is not None
        await notify(
            uow,
            therapist,
            "couple.partner_unreachable",
            dedupe_key=f"unreachable:{partner.id}:{now.isoformat()}",
            now=now,
            couple_id=couple.id,
            handle=couple.handle,
            slot=partner.slot,
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
