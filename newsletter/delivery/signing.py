"""What a message carries besides its bytes: the envelope sender (VERP) and the DKIM signature.

DKIM signs the final bytes exactly as they go out, and over-signs the headers a reader or a
provider relies on (From, Subject, Date, To, the one-click pair): each is named twice in h=,
so a second copy of one added in transit breaks the signature instead of riding along.
"""

from __future__ import annotations

from collections.abc import Callable

from newsletter import tokens
from newsletter.config import Settings
from newsletter.errors import ConfigError

SIGNED = [b"from", b"to", b"subject", b"date", b"message-id", b"list-id", b"list-unsubscribe",
          b"list-unsubscribe-post", b"feedback-id", b"mime-version", b"content-type"]
OVERSIGNED = [b"from", b"subject", b"date", b"to", b"list-unsubscribe", b"list-unsubscribe-post"]


def envelope_sender(settings: Settings, key: bytes, lid: str, subscriber_id: int) -> str:
    """The return path: VERP (bounces+TOKEN@domain) when enabled, else the From address."""
    cfg, sender = settings.send, settings.publication.sender_address
    if not cfg.verp:
        return sender
    domain = cfg.bounce_domain or sender.rpartition("@")[2]
    return f"bounces+{tokens.make(key, lid, subscriber_id, 'bounce')}@{domain}"


def dkim_signer(settings: Settings) -> Callable[[bytes], bytes] | None:
    """A function that prepends a DKIM-Signature to final message bytes, or None when not configured."""
    cfg = settings.send
    if not cfg.dkim_key:
        return None
    import dkim

    path = settings.path(cfg.dkim_key)
    try:
        key = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"[send] dkim_key {path}: {e.strerror} - give the PEM private key file") from None
    if not cfg.dkim_selector:
        raise ConfigError("[send] dkim_selector is empty - set the selector of your DKIM DNS record")
    domain = (cfg.dkim_domain or settings.publication.sender_address.rpartition("@")[2]).encode()
    selector = cfg.dkim_selector.encode()
    present = SIGNED if cfg.feedback_id else [h for h in SIGNED if h != b"feedback-id"]
    headers = present + OVERSIGNED

    def sign(raw: bytes) -> bytes:
        signature: bytes = dkim.sign(raw, selector, domain, key, include_headers=headers,
                                     canonicalize=(b"relaxed", b"relaxed"))
        return signature + raw

    return sign
