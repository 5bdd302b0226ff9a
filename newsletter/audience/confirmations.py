"""The confirmation mail of the double opt-in: its link, its text, and sending it.

The mail's words are templates a publisher may override like the issue's
(`templates/mail/confirmation.{subject,txt,html}.j2`); it is built with the same multipart
code as every issue. It carries no advertising.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from newsletter import clock, config, tokens
from newsletter.compose import render
from newsletter.compose.personal import Recipient
from newsletter.config import Settings
from newsletter.delivery import transports
from newsletter.delivery.transports import Outcome, Transport
from newsletter.mail import mime
from newsletter.mail.message import Multipart, list_id
from newsletter.store import Database, transaction
from newsletter.store import consents as consent_rows

# The consent row of a reader who was pending before consent rows existed (migration m004).
LEGACY_SOURCE = "Bestand (vor den Einwilligungsnachweisen angelegt)"


def terms(settings: Settings) -> dict:
    """Consent text, version and the text's sha256, as stored with each sign-up."""
    text = settings.serve.consent_text
    return {"consent_text": text, "consent_version": settings.serve.consent_version,
            "consent_hash": hashlib.sha256(text.encode("utf-8")).hexdigest()}


def confirm_url(settings: Settings, key: bytes, consent_id: int, issued_at: int | None = None) -> str:
    token = tokens.make_timed(key, list_id(settings), consent_id, issued_at)
    return f"{settings.require_base_url('the confirmation link')}/confirm/{token}"


def confirmation_message(settings: Settings, email: str, link: str) -> tuple[bytes, str]:
    """The confirmation mail (German, no advertising, text and HTML) and its Message-ID."""
    env = render.environment(settings.templates_dir)
    values = {"publication": settings.publication, "impressum": settings.impressum, "link": link,
              "hours": settings.serve.confirm_hours, "consent_text": settings.serve.consent_text}
    subject = " ".join(render.template(env, "mail/confirmation.subject.j2", values).split())
    text = render.wrap_text(render.template(env, "mail/confirmation.txt.j2", values))
    markup = render.template(env, "mail/confirmation.html.j2", values)
    message = Multipart(settings, subject, text, markup, b"Auto-Submitted: auto-generated\r\n")
    return message.build(Recipient(mime.check_header_value("To", email)))


def send_confirmation(db: Database, settings: Settings, key: bytes, consent_id: int, transport: Transport,
                      mailed_before: str | None = None) -> bool:
    """Mail a fresh confirmation link for one consent row of a pending subscriber; False if
    there is none (confirmed, erased or purged since, or mailed already: with `mailed_before`,
    only a link mailed before then is mailed again).

    The row is marked first, then the mail goes out: two processes, or a retry after an error
    once the mail has left, can never mail the same person twice. A refusal gives the mark
    back (raises Refused); a mail whose outcome is unknown keeps it."""
    issued = int(clock.timestamp())
    sent_at = datetime.fromtimestamp(issued, UTC).isoformat(timespec="seconds")
    with transaction(db):
        # An imported or hand-added reader consents by confirming: to the text this mail quotes.
        row = consent_rows.claim_confirmation(db, consent_id, sent_at, terms(settings), mailed_before)
    if row is None:
        return False
    raw, _ = confirmation_message(settings, row["email"], confirm_url(settings, key, consent_id, issued))
    result = transport.send(settings.publication.sender_address, row["email"], raw)
    if result.outcome is Outcome.SENT:
        return True
    if result.outcome is not Outcome.UNCONFIRMED:
        with transaction(db):
            consent_rows.release_confirmation(db, consent_id, sent_at, row)
    raise Refused(row["email"], result.reply)


class Refused(Exception):
    """The server did not take a confirmation mail."""

    def __init__(self, email: str, reply: str) -> None:
        super().__init__(f"{email}: {reply}")
        self.email, self.reply = email, reply


@dataclass
class ConfirmationReport:
    sent: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (email, server reply)


def send_confirmations(db: Database, settings: Settings, *, resend: bool = False,
                       transport: Transport | None = None) -> ConfirmationReport:
    """One confirmation mail to each pending subscriber that has not had one (`resend`: also
    to those whose last link has expired). Needs NEWSLETTER_SECRET."""
    key = config.signing_key()
    report = ConfirmationReport()
    transport = transport or transports.make(settings)
    try:
        cutoff = _expired_before(settings) if resend else None
        for consent_id, _email in _awaiting_mail(db, cutoff):
            try:
                report.sent += send_confirmation(db, settings, key, consent_id, transport, cutoff)
            except Refused as e:
                report.failed.append((e.email, e.reply))
    finally:
        transport.close()
    return report


def _expired_before(settings: Settings) -> str:
    """Links mailed before this moment have expired."""
    return (clock.now() - timedelta(hours=settings.serve.confirm_hours)).isoformat(timespec="seconds")


def _awaiting_mail(db: Database, mailed_before: str | None) -> list[tuple[int, str]]:
    """(latest consent row, email) of the pending subscribers due a confirmation mail."""
    with transaction(db):  # readers added before consent rows existed get one now
        consent_rows.add_missing_consents(db, LEGACY_SOURCE, clock.stamp())
    return consent_rows.awaiting_confirmation(db, mailed_before)
