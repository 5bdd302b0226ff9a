"""Per-recipient messages from an issue rendered once.

`MessageTemplate` encodes the issue's text and HTML once, split at the personal
placeholders; `build` splices one recipient's values in and writes the headers. No
`EmailMessage` is built per recipient, and no part is re-encoded.
"""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass
from email.utils import format_datetime

from newsletter import clock, dates
from newsletter.mail import mime
from newsletter.config import Settings
from newsletter.errors import ConfigError
from newsletter.compose.render import PLACEHOLDERS, unsubscribe_url

_SPLIT = re.compile("(" + "|".join(re.escape(p) for p in PLACEHOLDERS.values()) + ")")
_NAME_OF = {marker: name for name, marker in PLACEHOLDERS.items()}


@dataclass(frozen=True)
class Recipient:
    email: str
    salutation: str = "Guten Tag"
    token: str = ""


SAMPLE = Recipient(email="erika.muster@example.org", salutation="Sehr geehrte Frau Dr. Muster",
                   token="BEISPIEL-TOKEN")


class _Part:
    """One body part, encoded as alternating fixed pieces and placeholder slots."""

    def __init__(self, content: str, escape) -> None:
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


class MessageTemplate:
    """An issue's message, encoded once; `build` makes the bytes for one recipient."""

    def __init__(self, settings: Settings, subject: str, html_body: str, text_body: str,
                 *, test: bool = False) -> None:
        pub = settings.publication
        self.sender = pub.sender_address
        if not self.sender or "@" not in self.sender:
            raise ConfigError("[publication] sender_address is not set - add the From address to newsletter.toml")
        self.domain = self.sender.rsplit("@", 1)[1].lower()
        self.base_url = pub.base_url
        self.timezone = pub.timezone
        if not pub.base_url.startswith("https://"):
            raise ConfigError("[publication] base_url must be an https URL - it carries the unsubscribe link")
        subject = f"[TEST] {subject}" if test else subject
        self.boundary = "=_" + secrets.token_hex(12)  # '=_' never occurs in QP-encoded text
        self.fixed_head = b"".join([
            mime.address(pub.sender_name, self.sender),
            mime.raw_header("Reply-To", pub.reply_to) if pub.reply_to else b"",
            mime.header("Subject", subject),
            mime.raw_header("List-Id", list_id(settings)),
            mime.raw_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            mime.raw_header("Feedback-ID", settings.send.feedback_id) if settings.send.feedback_id else b"",
            b"MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative; boundary="{self.boundary}"\r\n'.encode(),
        ])
        self.text = _Part(text_body, lambda v: v)
        self.html = _Part(html_body, html.escape)
        b = self.boundary.encode()
        part_head = b"Content-Type: text/%s; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        self.text_open = b"\r\n--" + b + b"\r\n" + part_head % b"plain"
        self.html_open = b"\r\n--" + b + b"\r\n" + part_head % b"html"
        self.close = b"\r\n--" + b + b"--\r\n"

    def build(self, recipient: Recipient, *, message_id: str | None = None,
              date: str | None = None) -> tuple[bytes, str]:
        """The complete message for one recipient (CRLF, ready for DATA) and its Message-ID."""
        mime.check_header_value("To", recipient.email)
        message_id = message_id or make_msgid(self.domain)
        values = {"salutation": recipient.salutation, "email": recipient.email, "token": recipient.token}
        head = b"".join([
            f"Date: {date or self.date()}\r\n".encode(),
            mime.raw_header("Message-ID", message_id),
            mime.raw_header("To", recipient.email),
            self.fixed_head,
            self.list_unsubscribe(recipient.token),
        ])
        body = b"".join([
            b"This is a multipart message in MIME format.\r\n",
            self.text_open, self.text.encode(values),
            self.html_open, self.html.encode(values),
            self.close,
        ])
        return head + b"\r\n" + body, message_id

    def date(self) -> str:
        """The Date header's value: now, in the publication's timezone."""
        return format_datetime(clock.now().astimezone(dates.zone(self.timezone)))

    def list_unsubscribe(self, token: str) -> bytes:
        """RFC 8058 pair: one https URI and a mailto; plain ASCII, folded only at the comma."""
        mailto = f"mailto:unsubscribe@{self.domain}?subject={token}"
        return (f"List-Unsubscribe: <{unsubscribe_url(self.base_url, token)}>,\r\n <{mailto}>\r\n").encode("ascii")

    def html_size(self, recipient: Recipient = SAMPLE) -> int:
        """Bytes of the encoded text/html part (Gmail clips above ~102 KB)."""
        values = {"salutation": recipient.salutation, "email": recipient.email, "token": recipient.token}
        return len(self.html.encode(values))


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


def message_date(settings: Settings) -> str:
    """A Date header value for now, in the publication's timezone."""
    return format_datetime(clock.now().astimezone(dates.zone(settings.publication.timezone)))


def make_msgid(domain: str) -> str:
    """<time.random@domain>: unique, with the sender's domain (never the machine's FQDN)."""
    return f"<{int(clock.timestamp())}.{secrets.token_hex(10)}@{domain}>"
