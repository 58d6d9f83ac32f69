"""The channels a process sends on: each a name, a Messenger and its own limits.

The dispatcher looks a delivery's ``channel`` up here and paces each channel on its own,
so the outbox, retries and leases serve every channel alike. ``telegram`` (private chats)
is the default channel; its pace is the dispatcher's own (the process's share of the bot's
budget), so it carries no limits here. Other channels bring theirs; a channel on the same
upstream as another (Telegram groups on the Bot API) names it in ``pace_with``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from bot.channels.base import ChannelLimits, Messenger
from bot.config import Settings
from bot.core.clock import Clock

TELEGRAM = "telegram"
EMAIL = "email"
WEBHOOK = "webhook"
GROUP_CHANNEL = "telegram_group"
"""The ``channel`` of deliveries posted in a couple's linked group."""

EMAIL_LIMITS = ChannelLimits(rate_per_second=5.0, per_address_interval=0.5)
"""Modest, so a relay never sees a burst; a therapist's inbox gets one digest at a time."""
WEBHOOK_LIMITS = ChannelLimits(rate_per_second=20.0, per_address_interval=0.05)


@dataclass(frozen=True)
class Channel:
    """One registered channel."""

    name: str
    messenger: Messenger
    limits: ChannelLimits | None = None


class ChannelRegistry(Mapping[str, Messenger]):
    """Name -> Messenger (what the dispatcher reads), with each channel's limits."""

    def __init__(self, channels: tuple[Channel, ...] = ()) -> None:
        self._channels: dict[str, Channel] = {}
        self._limits: dict[str, ChannelLimits] = {}
        for channel in channels:
            self.register(channel.name, channel.messenger, channel.limits)

    def register(
        self, name: str, messenger: Messenger, limits: ChannelLimits | None = None
    ) -> None:
        """Add (or replace) a channel; ``limits`` None paces it as the default channel."""
        if limits is not None and limits.pace_with == name:
            raise ValueError(f"channel {name!r} cannot share its own budget")
        self._channels[name] = Channel(name, messenger, limits)
        if limits is None:
            self._limits.pop(name, None)
        else:
            self._limits[name] = limits

    @property
    def limits(self) -> Mapping[str, ChannelLimits]:
        """Each channel's own limits (a live view; the default channel has none)."""
        return self._limits

    def __getitem__(self, name: str) -> Messenger:
        return self._channels[name].messenger

    def __iter__(self) -> Iterator[str]:
        return iter(self._channels)

    def __len__(self) -> int:
        return len(self._channels)

    async def aclose(self) -> None:
        """Release what the channels hold open (the webhook HTTP client)."""
        for channel in self._channels.values():
            close = getattr(channel.messenger, "aclose", None)
            if close is not None:
                await close()


def build_channels(settings: Settings, telegram: Messenger, *, clock: Clock) -> ChannelRegistry:
    """Telegram always; email when an SMTP relay is configured; signed webhooks always.

    Webhooks cost nothing unless a practice lists endpoints in its practice.toml.
    """
    from bot.channels.email import EmailMessenger, SmtpConfig
    from bot.channels.webhook import WebhookMessenger

    registry = ChannelRegistry()
    registry.register(TELEGRAM, telegram)
    smtp = SmtpConfig.from_settings(settings)
    if smtp is not None:
        registry.register(EMAIL, EmailMessenger(smtp, clock), EMAIL_LIMITS)
    registry.register(WEBHOOK, WebhookMessenger(clock), WEBHOOK_LIMITS)
    return registry
