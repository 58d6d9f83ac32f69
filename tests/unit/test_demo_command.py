"""`dyad demo` where the fake Bot API is not installed (the Docker image) says so kindly."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from bot.cli import cli


def test_the_demo_without_the_fake_bot_api_says_it_needs_a_source_checkout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As in the Docker image, which installs the product packages only.
    monkeypatch.setitem(sys.modules, "fakebotapi", None)
    monkeypatch.delitem(sys.modules, "bot.demo", raising=False)
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 1
    assert "needs a source checkout" in result.output and "make demo" in result.output
