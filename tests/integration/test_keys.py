"""Encryption keys: where they come from, and rotating every stored text to the newest one."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import main
from bot.cli.data import keys
from bot.config import ConfigError, load_settings
from bot.services.crypto import Cipher, load_cipher, new_key
from bot.services.data_rights import rotate_ciphertexts
from db.engine import Database
from db.models import CheckIn, Couple, Partner, Practice, Response, Therapist

NOW = datetime(2026, 10, 19, 9, 0, tzinfo=UTC)


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """The command line configures the root logger for its process; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def _partner(db: Database) -> Partner:
    async with db.uow() as uow:
        practice = await uow.practices.add(Practice(slug="north", name="North", created_at=NOW))
        therapist = await uow.therapists.add(
            Therapist(practice_id=practice.id, display_name="Dr X", created_at=NOW)
        )
        couple = await uow.couples.add(
            Couple(
                practice_id=practice.id,
                therapist_id=therapist.id,
                handle="c1",
                label="A & J",
                created_at=NOW,
            )
        )
        partner = await uow.partners.add(Partner(couple_id=couple.id, slot="A"))
        await uow.commit()
    return partner


async def _store(db: Database, partner: Partner, notes: list[bytes | None]) -> None:
    """One check-in per note, and a prompt answer with the same text."""
    async with db.uow() as uow:
        for token in notes:
            uow.session.add(
                CheckIn(
                    partner_id=partner.id,
                    couple_id=partner.couple_id,
                    instrument="dyad_checkin",
                    note_ciphertext=token,
                    started_at=NOW,
                )
            )
            uow.session.add(
                Response(
                    partner_id=partner.id,
                    couple_id=partner.couple_id,
                    prompt_key="hope.small_win",
                    kind="hope",
                    text_ciphertext=token,
                    created_at=NOW,
                )
            )
        await uow.commit()


async def _tokens(db: Database) -> list[bytes]:
    async with db.uow() as uow:
        notes = await uow.session.scalars(select(CheckIn.note_ciphertext).order_by(CheckIn.id))
        texts = await uow.session.scalars(select(Response.text_ciphertext).order_by(Response.id))
        return [token for token in [*notes, *texts] if token is not None]


async def test_rotation_moves_every_stored_text_to_the_newest_key(db: Database) -> None:
    old, new = new_key(), new_key()
    partner = await _partner(db)
    written = [f"note {n}: canary-{n}" for n in range(5)]
    await _store(db, partner, [Cipher([old]).encrypt(text) for text in written] + [None])

    report = await rotate_ciphertexts(db, [new, old], batch=2)

    assert (report.rotated, report.current, report.unreadable) == (10, 0, [])
    only_new = Cipher([new])
    assert [only_new.decrypt(token) for token in await _tokens(db)] == written + written
    again = await rotate_ciphertexts(db, [new, old], batch=2)
    assert (again.rotated, again.current, again.unreadable) == (0, 10, [])


async def test_a_text_no_configured_key_opens_is_reported_and_left_alone(db: Database) -> None:
    old, new, lost = new_key(), new_key(), new_key()
    partner = await _partner(db)
    orphan = Cipher([lost]).encrypt("written under a key nobody kept")
    await _store(db, partner, [Cipher([old]).encrypt("fine"), orphan])

    report = await rotate_ciphertexts(db, [new, old])

    async with db.uow() as uow:
        checkin = await uow.session.scalar(select(CheckIn.id).filter_by(note_ciphertext=orphan))
        response = await uow.session.scalar(select(Response.id).filter_by(text_ciphertext=orphan))
    assert report.rotated == 2
    assert report.unreadable == [f"checkins#{checkin}", f"responses#{response}"]
    assert (await _tokens(db)).count(orphan) == 2


async def test_the_rotate_command_reports_counts_and_fails_on_unreadable_rows(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cli_logging: None
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    old, new = new_key(), new_key()
    partner = await _partner(sqlite_db)
    await _store(sqlite_db, partner, [Cipher([old]).encrypt("hello")])
    env = {"DYAD_DATABASE_URL": sqlite_db.url, "DYAD_ENCRYPTION_KEYS": f"{new}, {old}"}
    runner = CliRunner()

    first = await asyncio.to_thread(runner.invoke, keys, ["rotate"], env=env)
    assert first.exit_code == 0, first.output
    assert (
        first.stdout.strip() == "rotated 2 rows to the newest key; 0 already used it; 0 unreadable"
    )
    await _store(sqlite_db, partner, [Cipher([new_key()]).encrypt("lost")])
    second = await asyncio.to_thread(runner.invoke, keys, ["rotate"], env=env)
    assert second.exit_code == 1
    assert "rotated 0 rows" in second.stdout and "2 already used it" in second.stdout
    assert len(second.stderr.strip().splitlines()) == 2
    assert "no configured key opens it" in second.stderr


def test_keys_new_prints_a_key_the_cipher_accepts() -> None:
    printed = CliRunner().invoke(keys, ["new"])
    assert printed.exit_code == 0
    key = printed.stdout.strip()
    assert Cipher([key]).decrypt(Cipher([key]).encrypt("ok")) == "ok"
    assert CliRunner().invoke(keys, ["new"]).stdout.strip() != key


def test_postgresql_without_keys_is_a_configuration_error() -> None:
    settings = load_settings(_env_file=None, database_url="postgresql://dyad@db.example/dyad")
    with pytest.raises(ConfigError, match="DYAD_ENCRYPTION_KEYS"):
        load_cipher(settings)


def test_sqlite_without_keys_gets_an_owner_only_key_file_made_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'dyad.db'}")
    with caplog.at_level(logging.WARNING, logger="bot.services.crypto"):
        first = load_cipher(settings)
        key_file = tmp_path / "dyad.key"
        content = key_file.read_text()
        second = load_cipher(settings)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text() == content
    assert second.decrypt(first.encrypt("kept across restarts")) == "kept across restarts"
    assert len([r for r in caplog.records if "key file" in r.getMessage()]) == 1


def test_dyad_run_on_postgresql_without_keys_refuses_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cli_logging: None,
) -> None:
    async def no_migration(self: Database) -> None:
        """The refusal is about keys, so no database is needed to see it."""

    monkeypatch.setattr(Database, "migrate", no_migration)
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in [k for k in os.environ if k.startswith("DYAD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DYAD_DATABASE_URL", "postgresql://dyad@127.0.0.1:9/dyad")
    monkeypatch.setenv("DYAD_BOT_TOKEN", "123:" + "a" * 30)
    monkeypatch.setattr(sys, "argv", ["dyad", "run"])

    with pytest.raises(SystemExit) as exited:
        main()

    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "DYAD_ENCRYPTION_KEYS" in lines[0], lines


async def test_rotation_reaches_digests_and_events_waiting_in_the_outbox(db: Database) -> None:
    """A digest queued under the old key still opens, under the new key alone, once rotated."""
    from bot.services.digests import DigestRenderer, queue_digest
    from db.models import Delivery

    old, new = new_key(), new_key()
    partner = await _partner(db)
    async with db.uow() as uow:
        couple = await uow.couples.get(partner.couple_id)
        assert couple is not None
        therapist = await uow.therapists.get(couple.therapist_id)
        assert therapist is not None
        therapist.email = "ana@example.org"
        await uow.partners.add(Partner(couple_id=couple.id, slot="B"))
        await queue_digest(
            uow, couple, Cipher([old]), NOW, key="digest:test", actor="test", email=True
        )
        await uow.commit()

    report = await rotate_ciphertexts(db, [new, old])

    assert report.unreadable == []
    assert report.rotated >= 2  # at least one Telegram chunk and the e-mail
    renderer = DigestRenderer(Cipher([new]))  # the old key is gone now
    async with db.uow() as uow:
        rows = list(await uow.session.scalars(select(Delivery).where(Delivery.kind == "digest")))
        channels = sorted({row.channel for row in rows})
        for row in rows:
            message = await renderer.render(uow, row, therapist)
            assert message is not None and "c1" in message.text.lower()
    assert channels == ["email", "telegram"]
    again = await rotate_ciphertexts(db, [new, old])
    assert again.rotated == 0 and again.current == report.rotated


async def test_rotation_reaches_half_filled_mini_app_pages(db: Database) -> None:
    from db.models import WebAppDraft

    old, new = new_key(), new_key()
    partner = await _partner(db)
    async with db.uow() as uow:
        uow.session.add(
            WebAppDraft(
                partner_id=partner.id,
                telegram_user_id=77,
                page="checkin",
                ref_id=1,
                text_ciphertext=Cipher([old]).encrypt('{"note": "draft words"}'),
                updated_at=NOW,
            )
        )
        await uow.commit()

    report = await rotate_ciphertexts(db, [new, old])

    assert (report.rotated, report.unreadable) == (1, [])
    async with db.uow() as uow:
        token = await uow.session.scalar(select(WebAppDraft.text_ciphertext))
    assert token is not None and Cipher([new]).decrypt(token) == '{"note": "draft words"}'
