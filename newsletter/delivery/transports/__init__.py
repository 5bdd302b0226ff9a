"""Transports: where finished messages go. `make(settings)` gives a new one of the kind
`[send] transport` names (the registry is `newsletter.registry`): smtp (a mail server), file
(.eml files or a Maildir) or console (standard output). See `base` for the protocol."""

from __future__ import annotations

from newsletter import registry as known
from newsletter.config import Settings
from newsletter.delivery.transports.base import Outcome, Result, Transport
from newsletter.errors import ConfigError, TransportError

__all__ = ["Outcome", "Result", "Transport", "TransportError", "describe", "make"]


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
    try:
        found = known.load(settings.send.transport)
    except KeyError:
        raise ConfigError(f"Unknown transport {settings.send.transport!r} - set [send] transport to one of "
                          f"{', '.join(known.names())}") from None
    transport: Transport = found(settings)
    return transport
