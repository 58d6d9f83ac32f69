"""The Spanish variant, end to end: the Telegram language code and the chosen time zone
pick es-419 or es-ES, and every later text follows it."""

from __future__ import annotations

from sqlalchemy import select

from bot.locales import t
from db.models import Partner
from tests.e2e.conftest import Harness


async def test_a_latin_american_time_zone_gives_ustedes_and_spain_keeps_vosotros(
    harness: Harness,
) -> None:
    therapist = await harness.therapist()
    _, token_a, token_b = await harness.new_couple(therapist)
    lucia = harness.user("Lucía", language_code="es")
    blanca = harness.user("Blanca", language_code="es")
    await harness.join(
        lucia, token_a, language="Español", typed_timezone="America/Mexico_City", window="Morning"
    )
    await harness.join(
        blanca, token_b, language="Español", typed_timezone="Europe/Madrid", window="Morning"
    )
    await harness.deliver_waiting()  # the space-ready notice waits for each one's window
    assert lucia.last_message is not None and blanca.last_message is not None
    assert lucia.last_message.text == t("es-419", "couple.space_ready")
    assert blanca.last_message.text == t("es-ES", "couple.space_ready")
    assert "estén" in lucia.last_message.text and "estéis" in blanca.last_message.text
    async with harness.db.uow() as uow:
        partners = {p.slot: p for p in await uow.session.scalars(select(Partner))}
    assert (partners["A"].language, partners["B"].language) == ("es-419", "es")

    # /settings names the variant and offers the other one.
    await lucia.send_command("settings")
    menu = await lucia.wait_for_message()
    assert "Español (Latinoamérica)" in menu.text
    await lucia.press_button(t("es-419", "partner.settings_language"))
    await lucia.wait_for_message()
    await lucia.press_button("Español (España)")
    assert (await lucia.wait_for_message()).text == t("es-ES", "partner.saved")
    async with harness.db.uow() as uow:
        partner = await uow.session.scalar(select(Partner).where(Partner.slot == "A"))
    assert partner is not None and partner.language == "es"
