"""`dyad demo` runs the real product offline and prints what each person saw."""

from __future__ import annotations

import io
import re
from pathlib import Path

from bot.demo import run_demo


async def test_demo_prints_every_chat_and_equal_counts(tmp_path: Path) -> None:
    out = io.StringIO()
    kept = tmp_path / "kept.db"
    await run_demo(keep=str(kept), seed=3, out=out)
    text = out.getvalue()
    for heading in ("Therapist: Dr Ana Rivera", "Partner A: Jordan", "Partner B: Marta"):
        assert f"=== {heading}" in text
    counts = re.search(r"Messages received: Jordan (\d+), Marta (\d+)", text)
    assert counts is not None and counts.group(1) == counts.group(2)
    assert kept.exists()
