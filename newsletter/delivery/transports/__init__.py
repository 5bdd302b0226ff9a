"""Transports: where finished messages go. `make(settings)` gives a new one of the kind
`[send] transport` names: smtp (a mail server), file (.eml files or a Maildir), console
(standard output) or memory (a list, for tests and dry runs). See `base` for the protocol."""

from __future__ import annotations

from newsletter.config import Settings
from newsletter.delivery.transports import files, memory, smtp  # noqa: F401  (they register themselves)
from newsletter.delivery.transports.base import Outcome, Result, Transport, factory, registered
from newsletter.errors import ConfigError, TransportError

__all__ = ["Outcome", "Result", "Transport", "TransportError", "make", "registered"]


def describe(settings: Settings) -> str:
    """Where the configured transport puts messages, in a few words ("smtp to relay:587")."""
    kind = settings.send.transport
    if kind == "smtp":
        return f"smtp to {settings.smtp.host}:{settings.smtp.port}"
    if kind == "file":
        return f"files in {settings.outbox}"
    return kind


def make(settings: Settings) -> Transport:
    """A new, not yet opened transport of the configured kind (one per connection)."""
    found = factory(settings.send.transport)
    if found is None:
        raise ConfigError(f"Unknown transport {settings.send.transport!r} - set [send] transport to one of "
                          f"{', '.join(sorted(registered()))}")
    return found(settings)
