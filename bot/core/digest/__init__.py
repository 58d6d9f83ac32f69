"""The pre-session digest's pure core: its values, its composition, its renderings.

Layered one way (import-linter checks it): :mod:`~bot.core.digest.model` (the values in
and out) <- :mod:`~bot.core.digest.document` (the words, as one document of parts) <-
:mod:`~bot.core.digest.compose` (the rules and the balance figure) <-
:mod:`~bot.core.digest.render` (plain text, Telegram HTML, the printable page, JSON).
What the rest of Dyad uses is re-exported here.
"""

from bot.core.digest.compose import compose_digest, cut_at_word
from bot.core.digest.model import (
    SCORE_ROLES,
    AlertData,
    CheckinData,
    CoupleAnswerData,
    CoupleSpaceData,
    Digest,
    DigestInput,
    DigestSettings,
    PartnerData,
    ReplyData,
    ScoreRole,
    SkillPracticeData,
    Slot,
)
from bot.core.digest.render import (
    render_html_page,
    render_html_sections,
    render_json,
    render_telegram_parts,
    render_text,
)

__all__ = [
    "SCORE_ROLES",
    "AlertData",
    "CheckinData",
    "CoupleAnswerData",
    "CoupleSpaceData",
    "Digest",
    "DigestInput",
    "DigestSettings",
    "PartnerData",
    "ReplyData",
    "ScoreRole",
    "SkillPracticeData",
    "Slot",
    "compose_digest",
    "cut_at_word",
    "render_html_page",
    "render_html_sections",
    "render_json",
    "render_telegram_parts",
    "render_text",
]
