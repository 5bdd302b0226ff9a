"""What a transport is: one small protocol, the neutral result of a send, and a registry.

A transport takes finished message bytes for one recipient and says what happened, in the
product's own terms: sent; retry later (the server or the connection failed for now); rejected
(this message will not be taken); the address is dead (no such mailbox); or unconfirmed (the
whole message went out and no answer came back, so it may have arrived: it is never sent again
on its own). It, not the send
pipeline, reads its server's replies (SMTP codes, an API's JSON) to decide. When a transport
cannot be used at all (a refused login, an unreachable server) it raises TransportError and
the run stops before anything is marked.

New kinds (an ESP's HTTP API) are listed in `newsletter.registry`; `[send] transport` picks one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"         # try again, later in this run or in the next one
    REJECTED = "rejected"   # the server refused this message for good
    DEAD = "dead"           # the address does not exist: never mail it again
    UNCONFIRMED = "unconfirmed"  # the whole message left, no answer came: it may have arrived


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    code: int | None
    text: str
    # The server stalled (no answer within the timeout): the run stops after this message
    # rather than spend the timeout again on every reader that follows.
    stalled: bool = False

    @property
    def reply(self) -> str:
        return f"{self.code} {self.text}" if self.code else self.text


class Transport(Protocol):
    """One connection (or session) to where messages go; used by one thread at a time."""

    @property
    def is_open(self) -> bool: ...

    def open(self) -> None:
        """Connect and log in; raises TransportError when that fails."""

    def send(self, sender: str, recipient: str, data: bytes, before_data: Callable[[], None] | None = None) -> Result:
        """Hand over one message (exactly these bytes) for one recipient. `before_data`, if
        given, is called once the recipient's transaction has started and before any byte of
        the message leaves (the send marks the delivery row then); if it raises, the message
        is not sent."""

    def close(self) -> None: ...
