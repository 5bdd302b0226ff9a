"""Transports: hand finished message bytes to a mail server or a folder.

Each transport sends exactly the bytes it is given (a DKIM signature stays valid) to one
recipient per transaction. Replies are sorted into three outcomes the sender acts on:
`Reply` (accepted), `DeliveryError` (temporary: retry later; permanent: give up on this
recipient) and `TransportError` (the run cannot go on: login refused, server unreachable,
STARTTLS refused).
"""

from __future__ import annotations

import itertools
import os
import smtplib
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.config import Settings
from newsletter.errors import ConfigError, NewsletterError


@dataclass
class Reply:
    code: int
    text: str


class DeliveryError(Exception):
    """The server did not take this message: `permanent` for 5xx, else retry later."""

    def __init__(self, code: int, text: str):
        super().__init__(f"{code} {text}")
        self.code, self.text = code, text

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600

    @property
    def user_unknown(self) -> bool:
        return self.code == 550 and ("5.1.1" in self.text or "user unknown" in self.text.lower())


class TransportError(NewsletterError):
    """The transport cannot be used at all; the run stops and nothing is marked sent."""


class SmtpTransport:
    """One SMTP connection, opened on first use, reused, and re-opened after the server closes it."""

    def __init__(self, settings: Settings) -> None:
        self.cfg = settings.smtp
        if self.cfg.security not in ("starttls", "tls", "none"):
            raise ConfigError(f"[smtp] security = {self.cfg.security!r} - use starttls, tls or none")
        self.user = os.environ.get("NEWSLETTER_SMTP_USER", "")
        self.password = os.environ.get("NEWSLETTER_SMTP_PASSWORD", "")
        self.helo = settings.publication.sender_address.rpartition("@")[2] or None
        self.conn: smtplib.SMTP | None = None

    @property
    def where(self) -> str:
        return f"{self.cfg.host}:{self.cfg.port}"

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.cfg.ca_file:
            try:
                context.load_verify_locations(self.cfg.ca_file)
            except (OSError, ssl.SSLError) as e:
                raise ConfigError(f"[smtp] ca_file {self.cfg.ca_file}: {e} - give a PEM CA bundle") from None
        return context

    def open(self) -> None:
        try:
            if self.cfg.security == "tls":
                conn = smtplib.SMTP_SSL(self.cfg.host, self.cfg.port, local_hostname=self.helo,
                                        timeout=self.cfg.timeout, context=self._context())
            else:
                conn = smtplib.SMTP(self.cfg.host, self.cfg.port, local_hostname=self.helo, timeout=self.cfg.timeout)
            conn.ehlo()
            if self.cfg.security == "starttls":
                if not conn.has_extn("starttls"):
                    conn.close()
                    raise TransportError(f"{self.where} does not offer STARTTLS - fix the server, or set [smtp] security (tls or none)")
                conn.starttls(context=self._context())
                conn.ehlo()
            if self.user:
                conn.login(self.user, self.password)
        except smtplib.SMTPAuthenticationError as e:
            raise TransportError(
                f"SMTP login to {self.where} refused ({e.smtp_code} {_text(e.smtp_error)}) - "
                "check NEWSLETTER_SMTP_USER and NEWSLETTER_SMTP_PASSWORD"
            ) from None
        except ssl.SSLError as e:
            raise TransportError(
                f"TLS with {self.where} failed ({e.reason or e}) - if the relay uses a private CA, set [smtp] ca_file"
            ) from None
        except (OSError, smtplib.SMTPException) as e:
            raise TransportError(
                f"Cannot connect to SMTP server {self.where} ({e}) - check NEWSLETTER_SMTP_HOST/PORT, "
                "or send to files with NEWSLETTER_TRANSPORT=file"
            ) from None
        self.conn = conn

    def send(self, sender: str, recipient: str, data: bytes) -> Reply:
        """One SMTP transaction. With PIPELINING (RFC 2920) MAIL, RCPT and DATA go out in one
        write. `data` goes on the wire as given: CRLF line ends, no line starting with '.'.
        `MessageTemplate.build` guarantees that by construction (tests check it); bytes from
        anywhere else go through `dot_stuff` first."""
        if self.conn is None:
            self.open()
        conn = self.conn
        envelope = f"MAIL FROM:<{_addr(sender)}>\r\nRCPT TO:<{_addr(recipient)}>\r\n".encode()
        try:
            if conn.does_esmtp and conn.has_extn("pipelining"):
                conn.send(envelope + b"DATA\r\n")
                replies = [conn.getreply() for _ in range(3)]
            else:
                replies = []
                for line in envelope.split(b"\r\n")[:2] + [b"DATA"]:
                    conn.send(line + b"\r\n")
                    replies.append(conn.getreply())
                    if replies[-1][0] >= 400:
                        break
            refused = next(((code, text) for code, text in replies[:2] if code >= 400), None)
            if replies[-1][0] == 354 and refused is None:
                conn.send(data + b".\r\n")
                code, text = conn.getreply()
            elif replies[-1][0] == 354:  # a server that opened DATA despite a refused command
                conn.send(b".\r\n")
                conn.getreply()
                code, text = refused
            else:
                code, text = refused or replies[-1]
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            self.close()
            raise DeliveryError(0, f"connection lost: {e or type(e).__name__}") from None
        if code >= 400:
            self._reset_or_close(code)
            raise DeliveryError(code, _text(text))
        return Reply(code, _text(text))

    def _reset_or_close(self, code: int) -> None:
        if code == 421:
            self.close()
            return
        try:
            self.conn.rset()
        except (smtplib.SMTPException, OSError):
            self.close()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (smtplib.SMTPException, OSError):
                self.conn.close()
            self.conn = None


class FileTransport:
    """Writes each message as an .eml file: into a Maildir's new/ when the folder is one, else plainly."""

    _counter = itertools.count(1)
    _lock = threading.Lock()

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.ready = False

    def open(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TransportError(f"Cannot create outbox {self.folder}: {e.strerror} - set [send] outbox") from None
        self.ready = True

    def send(self, sender: str, recipient: str, data: bytes) -> Reply:
        if not self.ready:
            self.open()
        with self._lock:
            n = next(self._counter)
        maildir = all((self.folder / d).is_dir() for d in ("cur", "new", "tmp"))
        name = f"{os.getpid()}-{n:07d}-{_safe(recipient)}.eml"
        target = self.folder / "new" / name if maildir else self.folder / name
        tmp = (self.folder / "tmp" / name) if maildir else target.with_suffix(".tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        except OSError as e:
            raise TransportError(f"Cannot write {target}: {e.strerror} - check the outbox folder") from None
        return Reply(250, f"written to {target}")

    def close(self) -> None:
        pass


@dataclass
class MemoryTransport:
    """Keeps messages in a list: a fake for tests and dry runs of the pipeline."""

    sent: list[tuple[str, str, bytes]] = field(default_factory=list)

    def open(self) -> None:
        pass

    def send(self, sender: str, recipient: str, data: bytes) -> Reply:
        self.sent.append((sender, recipient, data))
        return Reply(250, "kept in memory")

    def close(self) -> None:
        pass


def make(settings: Settings):
    """A new transport of the configured kind (one per connection)."""
    kind = settings.send.transport
    if kind == "smtp":
        return SmtpTransport(settings)
    if kind == "file":
        return FileTransport(settings.base_dir / settings.send.outbox)
    raise ConfigError(f"Unknown transport {kind!r} - set [send] transport or NEWSLETTER_TRANSPORT to smtp or file")


def dot_stuff(data: bytes) -> bytes:
    """Any message made wire-ready for `SmtpTransport.send`: CRLF line ends, a leading '.'
    doubled (RFC 5321 4.5.2), ending in CRLF."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if data.startswith(b"."):
        data = b"." + data
    if b"\r\n." in data:
        data = data.replace(b"\r\n.", b"\r\n..")
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def _addr(address: str) -> str:
    """An envelope address; refuses anything that could smuggle an SMTP command."""
    if any(c in address for c in "\r\n<>") or not address.isprintable():
        raise DeliveryError(501, f"invalid envelope address {address!r}")
    return address


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())


def _safe(address: str) -> str:
    return "".join(c if c.isalnum() or c in "@.-_" else "_" for c in address)[:80]

