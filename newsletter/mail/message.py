"""Messages built from parts encoded once: the issue for each reader, and any other mail.

`Multipart` is a multipart/alternative message (text, then HTML) whose fixed headers and body
parts are encoded once, split at the personal placeholders; `build` splices one recipient's
values into the encoded bytes and adds the headers that differ per message. No `EmailMessage`
is built per recipient, and no part is re-encoded. `IssueMessage` is an issue's Multipart
with the list headers (List-Id, the RFC 8058 one-click pair, Feedback-ID); the confirmation
mail of `newsletter serve` is a plain Multipart.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Callable
from email.utils import format_datetime

from newsletter import clock, dates
from newsletter.compose.personal import PLACEHOLDERS, SAMPLE, Recipient, unsubscribe_url
from newsletter.config import Settings
from newsletter.errors import ConfigError
from newsletter.mail import mime

_SPLIT = re.compile("(" + "|".join(re.escape(p) for p in PLACEHOLDERS.values()) + ")")
_NAME_OF = {marker: name for name, marker in PLACEHOLDERS.items()}


class Part:
    """One body part, encoded as alternating fixed pieces and placeholder slots."""

    def __init__(self, content: str, escape: Callable[[str], str]) -> None:
        self.escape = escape
        self.pieces: list[bytes | str] = []  # bytes: encoded fixed text; str: placeholder name
        for chunk in _SPLIT.split(content):
            if chunk in _NAME_OF:
                self.pieces.append(_NAME_OF[chunk])
            elif chunk:
                self.pieces.append(mime.qp_encode(chunk))

    def encode(self, values: dict[str, str]) -> bytes:
        out = [p if isinstance(p, bytes) else mime.qp_encode(self.escape(values[p])) for p in self.pieces]
        return mime.join_qp(out)


def sender_domain(settings: Settings) -> str:
    address = settings.publication.sender_address
    if not address or "@" not in address:
        raise ConfigError("[publication] sender_address is not set - add the From address to newsletter.toml")
    return address.rsplit("@", 1)[1].lower()


class Multipart:
    """A text-and-HTML message from `settings`' sender, encoded once, built per recipient."""

    def __init__(self, settings: Settings, subject: str, text_body: str, html_body: str,
                 extra_head: bytes = b"") -> None:
        pub = settings.publication
        self.domain = sender_domain(settings)
        self.timezone = pub.timezone
        self.boundary = "=_" + secrets.token_hex(12)  # '=_' never occurs in QP-encoded text
        self.fixed_head = b"".join([
            mime.address(pub.sender_name, pub.sender_address),
            mime.raw_header("Reply-To", pub.reply_to) if pub.reply_to else b"",
            mime.header("Subject", subject),
            extra_head,
            b"MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative; boundary="{self.boundary}"\r\n'.encode(),
        ])
        self.text = Part(text_body, lambda v: v)
        self.html = Part(html_body, html.escape)
        b = self.boundary.encode()
        part_head = b"Content-Type: text/%s; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        self.text_open = b"\r\n--" + b + b"\r\n" + part_head % b"plain"
        self.html_open = b"\r\n--" + b + b"\r\n" + part_head % b"html"
        self.close = b"\r\n--" + b + b"--\r\n"

    def build(self, recipient: Recipient, *, head: bytes = b"", message_id: str | None = None,
              date: str | None = None) -> tuple[bytes, str]:
        """The complete message for one recipient (CRLF, ready for DATA) and its Message-ID;
        `head`: more header lines for this message."""
        mime.check_header_value("To", recipient.email)
        message_id = message_id or make_msgid(self.domain)
        values = recipient.values()
        top = b"".join([
            f"Date: {date or self.date()}\r\n".encode(),
            mime.raw_header("Message-ID", message_id),
            mime.raw_header("To", recipient.email),
            self.fixed_head,
            head,
        ])
        body = b"".join([
            b"This is a multipart message in MIME format.\r\n",
            self.text_open, self.text.encode(values),
            self.html_open, self.html.encode(values),
            self.close,
        ])
        return top + b"\r\n" + body, message_id

    def date(self) -> str:
        """The Date header's value: now, in the publication's timezone."""
        return format_datetime(clock.now().astimezone(dates.zone(self.timezone)))

    def html_size(self, recipient: Recipient = SAMPLE) -> int:
        """Bytes of the encoded text/html part (Gmail clips above ~102 KB)."""
        return len(self.html.encode(recipient.values()))


class IssueMessage(Multipart):
    """An issue's message for each reader, with the list headers."""

    def __init__(self, settings: Settings, subject: str, html_body: str, text_body: str,
                 *, test: bool = False) -> None:
        self.base_url = settings.require_base_url("the unsubscribe link in every issue")
        list_head = b"".join([
            mime.raw_header("List-Id", list_id(settings)),
            mime.raw_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            mime.raw_header("Feedback-ID", settings.send.feedback_id) if settings.send.feedback_id else b"",
        ])
        super().__init__(settings, f"[TEST] {subject}" if test else subject, text_body, html_body, list_head)

    def build(self, recipient: Recipient, *, head: bytes = b"", message_id: str | None = None,
              date: str | None = None) -> tuple[bytes, str]:
        return super().build(recipient, head=self.list_unsubscribe(recipient.token) + head,
                             message_id=message_id, date=date)

    def list_unsubscribe(self, token: str) -> bytes:
        """RFC 8058 pair: one https URI and a mailto; plain ASCII, folded only between the URIs
        (and after the colon when the https URI would not fit the 78-character line)."""
        https = f"<{unsubscribe_url(self.base_url, token)}>,"
        mailto = f"<mailto:unsubscribe@{self.domain}?subject={token}>"
        first = f"List-Unsubscribe: {https}" if len(https) + 18 <= mime.HEADER_WIDTH else f"List-Unsubscribe:\r\n {https}"
        return f"{first}\r\n {mailto}\r\n".encode("ascii")


def list_id(settings: Settings) -> str:
    """RFC 2919 List-Id: 'Name <label.domain>' with an ASCII phrase."""
    pub = settings.publication
    if pub.list_id:
        return pub.list_id
    domain = pub.sender_address.rsplit("@", 1)[-1].lower()
    label = re.sub(r"[^a-z0-9]+", "-", _ascii(pub.name).lower()).strip("-") or "newsletter"
    name = re.sub(r"[^A-Za-z0-9 .\-]", "", _ascii(pub.name)).strip() or "Newsletter"
    return f"{name} <{label}.{domain}>"


def _ascii(text: str) -> str:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})
    return text.translate(table).encode("ascii", "ignore").decode()


def make_msgid(domain: str) -> str:
    """<time.random@domain>: unique, with the sender's domain (never the machine's FQDN)."""
    return f"<{int(clock.timestamp())}.{secrets.token_hex(10)}@{domain}>"
