"""The transports `[send] transport` may name, and where each one lives: the one registry of
them, read by the settings check when the config loads (`config.sections`) and by
`delivery.transports.make`. A
transport's module is imported only when it is made, so naming one costs nothing.

A transport for tests (`delivery.transports.memory.MemoryTransport`) is made directly by the
tests and is not offered here.
"""

from __future__ import annotations

import importlib

KNOWN: dict[str, str] = {
    "file": "newsletter.delivery.transports.files:FileTransport",
    "smtp": "newsletter.delivery.transports.smtp:SmtpTransport",
    "console": "newsletter.delivery.transports.memory:ConsoleTransport",
}


def names() -> tuple[str, ...]:
    return tuple(KNOWN)


def load(name: str):
    """The class (or factory) of transport `name`; KeyError for a name not in KNOWN."""
    module, _, attr = KNOWN[name].partition(":")
    return getattr(importlib.import_module(module), attr)
