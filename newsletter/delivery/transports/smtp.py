"""SMTP: one connection, opened before the first message, reused, re-opened after the server
closes it. STARTTLS is required by default and the certificate always verified.

MAIL, RCPT and DATA are pipelined (RFC 2920) when the server offers it. The message is
dot-stuffed here (RFC 5321 4.5.2), whatever built it; the server takes the stuffing off again, so
a DKIM signature over the bytes stays valid. The server's replies become neutral results: 2xx
sent, 4xx retry, 5xx rejected, and the codes that say the mailbox does not exist (5.1.1 and kin)
dead. A connection lost before the final dot is a retry; after it, the message is unconfirmed
(it may have arrived) and is never sent again on its own. A timeout marks the result stalled.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Callable

from newsletter import config
from newsletter.config import Settings
from newsletter.delivery.transports.base import Outcome, Result
from newsletter.errors import ConfigError, TransportError

# Enhanced status codes (RFC 3463) that say the address itself is dead.
DEAD_STATUS = re.compile(r"\b5\.1\.(1|2|3|6|10)\b")
DEAD_TEXT = re.compile(r"user unknown|no such user|unknown user|mailbox unavailable|does not exist", re.I)

# OpenSSL's verify codes for a certificate made out for another name: X509_V_ERR_HOSTNAME_MISMATCH,
# X509_V_ERR_IP_ADDRESS_MISMATCH.
NAME_MISMATCH = {62, 64}


class SmtpTransport:
    def __init__(self, settings: Settings) -> None:
        self.cfg = settings.smtp
        self.user = config.secret("smtp_user")
        self.password = config.secret("smtp_password")
        self.helo = self.cfg.helo or socket.getfqdn()
        self.session: smtplib.SMTP | None = None

    @property
    def where(self) -> str:
        return f"{self.cfg.host}:{self.cfg.port}"

    @property
    def is_open(self) -> bool:
        return self.session is not None

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.cfg.ca_file:
            try:
                context.load_verify_locations(self.cfg.ca_file)
            except (OSError, ssl.SSLError) as e:
                raise ConfigError(f"[smtp] ca_file {self.cfg.ca_file}: {e} - give a PEM CA bundle") from None
        return context

    def open(self) -> None:
        if self.session is not None:
            return
        try:
            conn: smtplib.SMTP
            if self.cfg.security == "tls":
                conn = smtplib.SMTP_SSL(self.cfg.host, self.cfg.port, local_hostname=self.helo,
                                        timeout=self.cfg.timeout, context=self._context())
            else:
                conn = smtplib.SMTP(self.cfg.host, self.cfg.port, local_hostname=self.helo, timeout=self.cfg.timeout)
            conn.ehlo()
            if self.cfg.security == "starttls":
                if not conn.has_extn("starttls"):
                    conn.close()
                    raise TransportError(f"{self.where} does not offer STARTTLS - fix the server, or set [smtp] "
                                         "security (tls or none)")
                conn.starttls(context=self._context())
                conn.ehlo()
            if self.user:
                conn.login(self.user, self.password)
        except smtplib.SMTPAuthenticationError as e:
            raise TransportError(
                f"SMTP login to {self.where} refused ({e.smtp_code} {_text(e.smtp_error)}) - "
                "check NEWSLETTER_SMTP_USER and NEWSLETTER_SMTP_PASSWORD"
            ) from None
        except ssl.SSLCertVerificationError as e:
            raise TransportError(self._certificate_problem(e)) from None
        except ssl.SSLError as e:
            raise TransportError(f"TLS with {self.where} failed ({e.reason or e}) - check that the port "
                                 "speaks the [smtp] security you set (starttls on 587, tls on 465)") from None
        except (OSError, smtplib.SMTPException) as e:
            raise TransportError(
                f"Cannot connect to SMTP server {self.where} ({e}) - check NEWSLETTER_SMTP_HOST/PORT, "
                "or send to files with NEWSLETTER_TRANSPORT=file"
            ) from None
        self.session = conn

    def _opened(self) -> smtplib.SMTP:
        self.open()
        assert self.session is not None
        return self.session

    def _certificate_problem(self, e: ssl.SSLCertVerificationError) -> str:
        reason = e.verify_message or str(e)
        if e.verify_code in NAME_MISMATCH:
            return (f"The certificate of {self.where} is not made out for {self.cfg.host!r} ({reason}) - "
                    "set [smtp] host to the name the certificate names (e.g. the relay's DNS name, not its IP)")
        return (f"The certificate of {self.where} cannot be verified ({reason}) - if the relay uses a "
                "private CA, set [smtp] ca_file to its PEM bundle")

    def send(self, sender: str, recipient: str, data: bytes, before_data: Callable[[], None] | None = None) -> Result:
        conn = self.session or self._opened()
        try:
            envelope = f"MAIL FROM:<{_addr(sender)}>\r\nRCPT TO:<{_addr(recipient)}>\r\n".encode()
        except ValueError as e:
            return Result(Outcome.REJECTED, 501, str(e))
        transaction = _Transaction(conn, envelope, dot_stuff(data), before_data or _nothing)
        try:
            code, raw = transaction.run()
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            self.close()
            return self._lost(e, transaction.dot_sent)
        text = _text(raw)
        if code >= 400:
            self._reset_or_close(code)
        return Result(decide(code, text), code, text)

    def _lost(self, error: BaseException, dot_sent: bool) -> Result:
        """What a lost connection or a timeout means: before the final dot the server cannot
        have taken the message (retry); after it, nobody knows (unconfirmed, never resent on
        its own). A timeout is a stalled server: the run stops."""
        cause = error.__context__ if isinstance(error, smtplib.SMTPServerDisconnected) else error
        stalled = isinstance(error, TimeoutError) or isinstance(cause, TimeoutError)
        what = f"no answer within {self.cfg.timeout:g} s" if stalled else f"connection lost ({error or type(error).__name__})"
        if dot_sent:
            return Result(Outcome.UNCONFIRMED, None, f"{what} after the whole message was sent: it may have "
                          "arrived", stalled=stalled)
        return Result(Outcome.RETRY, None, f"{what} before the message was complete", stalled=stalled)

    def _reset_or_close(self, code: int) -> None:
        if code == 421:
            self.close()
            return
        try:
            if self.session is not None:
                self.session.rset()
        except (smtplib.SMTPException, OSError):
            self.close()

    def close(self) -> None:
        if self.session is not None:
            try:
                self.session.quit()
            except (smtplib.SMTPException, OSError):
                self.session.close()
            self.session = None


def _nothing() -> None:
    pass


class _Transaction:
    """One recipient's MAIL, RCPT and DATA (in one write when the server pipelines), then the
    message. `before_data` runs while the server answers the commands: the delivery row's commit
    overlaps the round trip, and the message still leaves only after it. `dot_sent` tells, if
    the connection fails, whether the message with its final dot had gone out."""

    def __init__(self, session: smtplib.SMTP, envelope: bytes, stuffed: bytes, before_data: Callable[[], None]) -> None:
        self.session, self.envelope, self.stuffed, self.before_data = session, envelope, stuffed, before_data
        self.dot_sent = False

    def run(self) -> tuple[int, bytes]:
        conn = self.session
        if conn.does_esmtp and conn.has_extn("pipelining"):
            conn.send(self.envelope + b"DATA\r\n")
            self.before_data()
            replies = [conn.getreply() for _ in range(3)]
        else:
            replies = []
            for number, line in enumerate(self.envelope.split(b"\r\n")[:2] + [b"DATA"]):
                conn.send(line + b"\r\n")
                if number == 0:
                    self.before_data()
                replies.append(conn.getreply())
                if replies[-1][0] >= 400:
                    break
        refused = next(((code, text) for code, text in replies[:2] if code >= 400), None)
        if replies[-1][0] != 354:
            return refused or replies[-1]
        if refused is not None:  # a server that opened DATA despite a refused command
            conn.send(b".\r\n")
            conn.getreply()
            return refused
        conn.send(self.stuffed + b".\r\n")
        self.dot_sent = True
        return conn.getreply()


def decide(code: int, text: str) -> Outcome:
    """What an SMTP reply means for this recipient."""
    if code < 400:
        return Outcome.SENT
    if code < 500:
        return Outcome.RETRY
    if DEAD_STATUS.search(text) or (code in (550, 551, 553) and DEAD_TEXT.search(text)):
        return Outcome.DEAD
    return Outcome.REJECTED


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
        raise ValueError(f"invalid envelope address {address!r}")
    return address


def _text(value: bytes | str) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())
