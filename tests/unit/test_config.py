"""Configuration: a bad setting is one clear line and exit status 2, never a traceback."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, load_settings

DYAD = [sys.executable, "-c", "from bot.cli import main; main()"]
# Loggers `dyad run` configures before it refuses to start (bot.logs.configure_logging).
CONFIGURED_LOGGERS = ("", "httpx", "httpcore", "apscheduler", "alembic", "aiosqlite")


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DYAD_")}
    return subprocess.run(
        [*DYAD, *args], env={**clean, **env}, cwd=cwd, capture_output=True, text=True, timeout=60
    )


@contextmanager
def _logging_restored() -> Iterator[None]:
    """Give back the test process's logging as it was (a start configures it to stderr)."""
    saved = [
        (logger, logger.level, list(logger.handlers))
        for logger in map(logging.getLogger, CONFIGURED_LOGGERS)
    ]
    try:
        yield
    finally:
        for logger, level, handlers in saved:
            logger.setLevel(level)
            logger.handlers[:] = handlers


def _run_here(
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[object, str]:
    """``dyad ARGS`` as its console script runs it, in this process (which starts in a
    fraction of the time): the exit status and everything written to stderr."""
    for key in list(os.environ):
        if key.startswith("DYAD_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["dyad", *args])
    capsys.readouterr()
    with _logging_restored(), pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, capsys.readouterr().err


BAD_SETTINGS = [
    ({"DYAD_DATABASE_URL": "nonsense"}, "DYAD_DATABASE_URL"),
    ({"DYAD_DATABASE_URL": "mysql://db/dyad"}, "DYAD_DATABASE_URL"),
    ({"DYAD_LOG_LEVEL": "loud"}, "DYAD_LOG_LEVEL"),
    ({"DYAD_TELEGRAM_API_URL": "ftp://x"}, "DYAD_TELEGRAM_API_URL"),
    ({"DYAD_BOT_TOKEN": "not-a-token"}, "DYAD_BOT_TOKEN"),
    ({}, "DYAD_BOT_TOKEN"),
    (
        {"DYAD_BOT_TOKEN": "123:" + "a" * 30, "DYAD_WEBHOOK_URL": "https://bot.example/h"},
        "DYAD_WEBHOOK_SECRET",
    ),
]


@pytest.mark.parametrize(("env", "names"), BAD_SETTINGS)
def test_bad_setting_prints_one_line_and_exits_2(
    env: dict[str, str],
    names: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, stderr = _run_here(["run"], env, tmp_path, monkeypatch, capsys)
    assert status == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert names in lines[0]
    assert "Traceback" not in stderr
    assert not (tmp_path / "dyad.db").exists(), "a refused start must not create a database"


def test_a_real_dyad_process_refusing_to_start_prints_one_line_and_exits_2(
    tmp_path: Path,
) -> None:
    # The console script itself, in a process of its own: without a token it gets as far
    # as configuring its logging, then refuses.
    result = _run(["run"], {}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DYAD_BOT_TOKEN" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "dyad.db").exists(), "a refused start must not create a database"


def test_dotenv_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".env").write_text("DYAD_LOG_LEVEL=loud\n")
    status, stderr = _run_here(["run"], {}, tmp_path, monkeypatch, capsys)
    assert status == 2
    assert "DYAD_LOG_LEVEL" in stderr


def test_defaults_are_the_embedded_sqlite_and_telegram(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("DYAD_"):
            monkeypatch.delenv(key)
    settings = load_settings(_env_file=None)
    assert settings.database_url == "sqlite+aiosqlite:///dyad.db"
    assert settings.telegram_api_url == "https://api.telegram.org/bot"
    assert settings.is_sqlite


def test_plain_driver_names_are_normalised() -> None:
    settings = load_settings(database_url="postgresql://u@h/db", _env_file=None)
    assert settings.database_url == "postgresql+asyncpg://u@h/db"


def test_load_settings_raises_config_error_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="DYAD_WEBHOOK_SECRET"):
        load_settings(webhook_secret="has spaces", _env_file=None)
