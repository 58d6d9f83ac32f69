"""`dyad demo` plays a fortnight of the real product offline and prints what each person saw."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from bot.demo import run_demo


@pytest.mark.parametrize("seed", [1, 7])
async def test_demo_prints_chats_the_digest_and_equal_scheduled_counts(
    tmp_path: Path, seed: int
) -> None:
    out = io.StringIO()
    kept = tmp_path / "kept.db"
    await run_demo(keep=str(kept), seed=seed, out=out)
    text = out.getvalue()
    assert "=== Partner A: Jordan" in text and "=== Partner B: Marta" in text
    digest = text.split("exactly as Dr Ana Rivera received it ===")[1]
    assert "Pre-session digest" in digest and "Jordan (A)" in digest and "Marta (B)" in digest
    # The note Jordan kept private is in his chat, never in the digest.
    assert "replaying Sunday's argument" in text.split("=== Partner B")[0]
    assert "replaying Sunday's argument" not in digest
    counts = re.findall(r"^(Jordan|Marta): (\d+) \((.*)\)$", text, re.MULTILINE)
    assert len(counts) == 2 and counts[0][1:] == counts[1][1:]
    assert int(counts[0][1]) >= 12
    assert kept.exists()
