"""The practice admin's command line: schedules check and preview, practice configure."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.services.couples import new_couple
from bot.services.practices import create_practice
from db.engine import Database
from db.models import Therapist

EXAMPLE = Path(__file__).parents[2] / "docs" / "practice.example.toml"


def test_the_annotated_example_and_the_shipped_default_pass_the_check() -> None:
    runner = CliRunner()
    for path in (EXAMPLE, Path(__file__).parents[2] / "schedules" / "default_practice.toml"):
        result = runner.invoke(cli, ["schedules", "check", str(path)])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("ok: ")


def test_a_broken_file_lists_each_problem_with_its_line_and_exits_1(tmp_path: Path) -> None:
    broken = tmp_path / "practice.toml"
    broken.write_text(
        "[delivery]\nmax_per_day = 2\n\n[schedules.s]\n\n[[schedules.s.rules]]\n"
        'kind = "hopes"\ndays = ["thurs"]\n'
    )
    result = CliRunner().invoke(cli, ["schedules", "check", str(broken)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert any(line.startswith(f"{broken}:7:") and "hopes" in line for line in lines)
    assert any(line.startswith(f"{broken}:8:") and "thurs" in line for line in lines)


async def test_configure_stores_a_checked_file_and_preview_shows_both_partners(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dyad.db'}"
    db = Database(url)
    await db.migrate()
    now = datetime.now(UTC)
    async with db.uow() as uow:
        practice = await create_practice(
            uow, "North", timezone="Europe/Madrid", language="en", now=now
        )
        therapist = await uow.therapists.add(
            Therapist(practice_id=practice.id, display_name="T", created_at=now)
        )
        await uow.commit()
        created = await new_couple(uow, therapist, "A & B", now=now, ttl=timedelta(days=7))
        for partner, (zone, window) in zip(
            await uow.partners.of_couple(created.couple.id),
            (("America/New_York", "evening"), ("Europe/Madrid", "morning")),
            strict=True,
        ):
            partner.timezone, partner.window, partner.onboarding_step = zone, window, "done"
        await uow.commit()
    await db.dispose()
    env = {"DYAD_DATABASE_URL": url}
    runner = CliRunner()
    configured = await asyncio.to_thread(
        runner.invoke, cli, ["practice", "configure", "north", str(EXAMPLE)], env=env
    )
    assert configured.exit_code == 0, configured.output
    preview = await asyncio.to_thread(
        runner.invoke, cli, ["schedules", "preview", "--couple", "c1", "--days", "14"], env=env
    )
    assert preview.exit_code == 0, preview.output
    assert "America/New_York" in preview.output and "Europe/Madrid" in preview.output
    assert "hope.garden" in preview.output or "hope." in preview.output
    counts = preview.output.strip().splitlines()[-1]
    assert (
        counts.startswith("14 days: A ")
        and counts.split("A ")[1].split(",")[0] == counts.split("B ")[1].split(" ")[0]
    )
    missing = await asyncio.to_thread(
        runner.invoke, cli, ["schedules", "preview", "--couple", "c9"], env=env
    )
    assert missing.exit_code != 0 and "no active couple" in missing.output


@pytest.mark.parametrize("bad", [["--timezone", "Mars/Base"], ["--language", "fr"]])
def test_practice_create_refuses_bad_arguments_and_changes_nothing(
    bad: list[str], tmp_path: Path
) -> None:
    env = {"DYAD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'dyad.db'}"}
    runner = CliRunner()
    result = runner.invoke(cli, ["practice", "create", "--name", "X", *bad], env=env)
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1
    listed = runner.invoke(cli, ["practice", "list"], env=env)
    assert listed.output.strip() == ""
