"""Opaque, unforgeable per-subscriber tokens (unsubscribe links, VERP addresses, confirmations).

A token is `<subscriber id in base 36>.<HMAC-SHA256 over purpose, list and id>`: it names
no email address, cannot be made without NEWSLETTER_SECRET, and is checked in constant time.
A timed token (`make_timed`, confirmation links) also carries its issue time inside the MAC:
`<id>.<issued at, unix seconds, base 36>.<MAC>`, so it expires and cannot be re-dated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from newsletter import clock


def _mac(key: bytes, purpose: str, list_id: str, subscriber_id: int | str) -> str:
    digest = hmac.new(key, f"{purpose}\0{list_id}\0{subscriber_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def make(key: bytes, list_id: str, subscriber_id: int, purpose: str = "unsubscribe") -> str:
    return f"{_b36(subscriber_id)}.{_mac(key, purpose, list_id, subscriber_id)}"


def number(text: str) -> int | None:
    """A number written as this module writes it (base 36, lower case, no sign, space or leading
    zero), else None: '01', '+1' and ' 1' name nothing, so each id has exactly one token."""
    try:
        value = int(text, 36)
    except ValueError:
        return None
    return value if value >= 0 and _b36(value) == text else None


def verify(key: bytes, list_id: str, token: str, purpose: str = "unsubscribe") -> int | None:
    """The subscriber id of a valid token, else None."""
    sid_text, _, mac = token.partition(".")
    sid = number(sid_text)
    if sid is None:
        return None
    expected = _mac(key, purpose, list_id, sid)
    return sid if hmac.compare_digest(expected.encode(), mac.encode()) else None


# --- timed tokens (confirmation links) -------------------------------------------------------

@dataclass(frozen=True)
class Timed:
    """A verified timed token: the id it names and whether it is past its lifetime."""

    ref_id: int
    issued_at: int
    expired: bool


def make_timed(key: bytes, list_id: str, ref_id: int, issued_at: int | None = None,
               purpose: str = "confirm") -> str:
    """A token for `ref_id` (e.g. a consent row) issued at `issued_at` (unix seconds, default now)."""
    issued = int(clock.timestamp()) if issued_at is None else int(issued_at)
    return f"{_b36(ref_id)}.{_b36(issued)}.{_mac(key, purpose, list_id, f'{ref_id}@{issued}')}"


def verify_timed(key: bytes, list_id: str, token: str, max_age: float, purpose: str = "confirm",
                 now: float | None = None) -> Timed | None:
    """The verified token (with `expired` set after `max_age` seconds), or None when forged."""
    parts = token.split(".")
    if len(parts) != 3 or len(token) > 100:
        return None
    ref_id, issued = number(parts[0]), number(parts[1])
    if ref_id is None or issued is None:
        return None
    expected = _mac(key, purpose, list_id, f"{ref_id}@{issued}")
    if not hmac.compare_digest(expected.encode(), parts[2].encode()):
        return None
    age = (clock.timestamp() if now is None else now) - issued
    return Timed(ref_id, issued, expired=age > max_age)
