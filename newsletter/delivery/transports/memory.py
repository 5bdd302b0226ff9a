"""Transports that keep messages: in memory (for tests, made directly, never offered in the
settings) or on standard output (`[send] transport = "console"`: to look at a message, or pipe
it into another program)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from newsletter.config import Settings
from newsletter.delivery.transports.base import Outcome, Result

# Every message any MemoryTransport of this process took: (sender, recipient, bytes).
OUTBOX: list[tuple[str, str, bytes]] = []
_LOCK = threading.Lock()


class _AlwaysOpen:
    """Nothing to connect to: always open, opening and closing do nothing."""

    is_open = True

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class MemoryTransport(_AlwaysOpen):
    settings: Settings | None = None
    sent: list[tuple[str, str, bytes]] = field(default_factory=list)

    def send(self, sender: str, recipient: str, data: bytes, before_data: Callable[[], None] | None = None) -> Result:
        if before_data is not None:
            before_data()
        with _LOCK:
            self.sent.append((sender, recipient, data))
            OUTBOX.append((sender, recipient, data))
        return Result(Outcome.SENT, 250, "kept in memory")


class ConsoleTransport(_AlwaysOpen):
    """Writes each message to standard output, with a line naming its envelope before it."""

    def __init__(self, settings: Settings | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, sender: str, recipient: str, data: bytes, before_data: Callable[[], None] | None = None) -> Result:
        if before_data is not None:
            before_data()
        out = self.stream or sys.stdout
        with _LOCK:
            out.write(f"--- message from <{sender}> to <{recipient}>, {len(data):,} bytes\n")
            out.write(data.decode("ascii", "replace").replace("\r\n", "\n"))
            out.flush()
        return Result(Outcome.SENT, 250, "written to standard output")
