"""A partner whose Telegram speaks pt-BR joins, checks in and gets Brazil's crisis lines in
Portuguese, end to end; the other partner and the therapist stay in English."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.instruments import load_instruments
from bot.locales import t
from db.models import Alert, CheckIn, Partner
from fakebotapi import FakeMessage, FakeUser
from tests.e2e.conftest import Harness

SCALE_ANSWERS = ("7", "6", "8", "5")


async def _tap(user: FakeUser, message: FakeMessage, label: str) -> None:
    """Press the button labelled exactly ``label`` on ``message``."""
    (data,) = [d for text, d in message.buttons if text == label]
    assert data is not None
    await user.press(message, data)


async def _press(user: FakeUser, label: str) -> None:
    """Wait for the next message with buttons and press the one labelled exactly ``label``."""
    await _tap(user, await user.wait_for_message(lambda m: bool(m.buttons)), label)


async def test_a_pt_br_partner_onboards_checks_in_and_gets_crisis_lines_in_portuguese(
    harness: Harness,
) -> None:
    therapist = await harness.therapist()
    handle, token_a, token_b = await harness.new_couple(therapist)
    alex, joana = harness.user("Alex"), harness.user("Joana", "pt-BR")
    await harness.join(alex, token_a, typed_timezone="America/New_York")

    # Before any choice, Telegram's pt-BR already picks Portuguese.
    await joana.send_command("start", token_b)
    consent = await joana.wait_for_message(lambda m: bool(m.buttons))
    assert consent.button_texts == [t("pt", "onboarding.accept"), t("pt", "onboarding.decline")]
    assert any("Boas-vindas ao Dyad, Joana" in m.text for m in joana.messages)
    await _tap(joana, consent, t("pt", "onboarding.accept"))
    languages = await joana.wait_for_message(lambda m: "Português" in m.button_texts)
    assert languages.text == t("pt", "onboarding.language_question")
    await _tap(joana, languages, "Português")
    zones = await joana.wait_for_message(lambda m: bool(m.buttons))
    assert zones.text == t("pt", "onboarding.timezone_question")
    assert {"America/Sao Paulo", "America/Manaus"} <= set(zones.button_texts)
    await _tap(joana, zones, "America/Sao Paulo")
    window = await joana.wait_for_message(lambda m: bool(m.buttons))
    assert window.text == t("pt", "onboarding.window_question")
    await _tap(joana, window, t("pt", "onboarding.window_evening"))
    await _press(joana, t("pt", "onboarding.discreet_no"))
    await joana.wait_for_message(lambda m: m.text == t("pt", "onboarding.done"))
    await harness.deliver_waiting()  # the space-ready notice comes in Joana's window
    assert joana.last_message is not None
    assert joana.last_message.text == t("pt", "couple.space_ready")
    async with harness.db.uow() as uow:
        partner = await uow.session.scalar(select(Partner).filter_by(slot="B"))
    assert partner is not None
    assert (partner.language, partner.timezone) == ("pt", "America/Sao_Paulo")

    # A whole check-in in Portuguese, every question in the instrument's Portuguese text.
    items = {item.id: item for item in load_instruments()["dyad_checkin"].items}
    await joana.send_command("checkin")
    first = await joana.wait_for_message(lambda m: bool(m.buttons))
    assert items["wellbeing"].text_in("pt") in first.text
    await _tap(joana, first, SCALE_ANSWERS[0])
    for value in SCALE_ANSWERS[1:]:
        await _press(joana, value)
    skill = await joana.wait_for_message(lambda m: bool(m.buttons))
    assert items["skill"].text_in("pt") in skill.text
    await _tap(joana, skill, "Sim")
    await joana.wait_for_message(lambda m: items["note"].text_in("pt") in m.text)
    await joana.send_text("Conversamos sobre o dinheiro com calma no domingo.")
    await _press(joana, "Sim, tudo bem")
    safety = await joana.wait_for_message(lambda m: "Prefiro não dizer" in m.button_texts)
    assert "medo do seu par" in safety.text
    await _tap(joana, safety, "Não")
    await joana.wait_for_message(lambda m: m.text == t("pt", "checkin.thanks"))
    async with harness.db.uow() as uow:
        row = await uow.session.scalar(select(CheckIn))
    assert row is not None and row.status == "complete" and row.ok_to_raise is True
    assert not row.risk

    # Crisis words in Portuguese, typed with no question open: Brazil's lines, in Portuguese.
    before_alex = len(alex.messages)
    await joana.send_text("às vezes penso em me matar")
    resources = await joana.wait_for_message(lambda m: "188" in m.text)
    assert "Se você está em perigo agora, ligue para o 190." in resources.text
    assert "CVV (Centro de Valorização da Vida): 188" in resources.text
    assert "Ligue 180 (Central de Atendimento à Mulher): 180" in resources.text
    await harness.settle()
    alerts = [m for m in therapist.messages if "Safety alert" in m.text]
    assert len(alerts) == 1 and "partner B" in alerts[0].text and handle in alerts[0].text
    assert "matar" not in alerts[0].text
    assert len(alex.messages) == before_alex
    async with harness.db.uow() as uow:
        alert = await uow.session.scalar(select(Alert))
    assert alert is not None and (alert.kind, alert.slot) == ("suicide", "B")
