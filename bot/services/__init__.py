"""Use cases over a unit of work and the Messenger port; no Telegram types here."""
