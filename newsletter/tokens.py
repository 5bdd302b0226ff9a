"""Opaque, unforgeable per-subscriber tokens (unsubscribe links, VERP addresses).

A token is `<subscriber id in base 36>.<HMAC-SHA256 over purpose, list and id>`: it names
no email address, cannot be made without NEWSLETTER_SECRET, and is checked in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from newsletter.errors import ConfigError

SECRET_ENV = "NEWSLETTER_SECRET"
MIN_SECRET = 16


def secret() -> bytes:
    value = os.environ.get(SECRET_ENV, "")
    if len(value) < MIN_SECRET:
        raise ConfigError(
            f"{SECRET_ENV} is not set (or shorter than {MIN_SECRET} characters) - it signs the "
            "unsubscribe links; set it, e.g. export NEWSLETTER_SECRET=$(python -c "
            "'import secrets; print(secrets.token_urlsafe(32))'), and keep it stable"
        )
    return value.encode()


def _mac(key: bytes, purpose: str, list_id: str, subscriber_id: int) -> str:
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


def verify(key: bytes, list_id: str, token: str, purpose: str = "unsubscribe") -> int | None:
    """The subscriber id of a valid token, else None."""
    sid_text, _, mac = token.partition(".")
    try:
        sid = int(sid_text, 36)
    except ValueError:
        return None
    expected = _mac(key, purpose, list_id, sid)
    return sid if hmac.compare_digest(expected.encode(), mac.encode()) else None
