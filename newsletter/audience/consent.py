"""Double opt-in and proof of consent: sign-up, confirmation mail, confirm, unsubscribe, GDPR.

No HTTP here: `newsletter.web` parses requests and calls these functions; the CLI calls the
rest. A web sign-up flows

    signup (pending subscriber + consent row) → confirmation mail with a timed token that names
    the consent row → confirm (subscriber active, consent row confirmed) → issues → unsubscribe

The confirmation token names one consent row and was issued after it was signed: a link from
before an unsubscribe, an erasure or a purge never (re)activates anyone, not even when SQLite
reuses the row id. `forget` erases a reader and keeps only a hash of the address on the
suppression list (`subscribers.email_hash` says why the hash is not keyed).
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import sqlite_utils

from newsletter import clock, store, tokens
from newsletter.mail import mime
from newsletter.audience import subscribers
from newsletter.delivery import transports
from newsletter.config import Settings
from newsletter.errors import ConfigError, InputError, NotFound
from newsletter.mail.message import list_id, make_msgid, message_date
from newsletter.compose.render import wrap_text
from newsletter.content.sanitize import clean_text
from newsletter.delivery.transports import DeliveryError

MAX_NAME = 200
MAX_USER_AGENT = 300
LEGACY_SOURCE = "Bestand (vor den Einwilligungsnachweisen angelegt)"


@dataclass(frozen=True)
class Signup:
    """What a sign-up form sent, plus where it came from."""

    email: str
    source: str
    name: str = ""
    ip: str | None = None
    user_agent: str | None = None


def check_name(name: str) -> str:
    """The display name as stored; refuses line breaks (header injection) and overlong names."""
    if len(name) > MAX_NAME:
        raise InputError(f"The name is longer than {MAX_NAME} characters - shorten it")
    if re.search(r"[\x00-\x1f\x7f]", name):
        raise InputError("The name contains a line break or control character - remove it")
    return clean_text(name)


def terms(settings: Settings) -> dict:
    """Consent text, version and the text's sha256, as stored with each sign-up."""
    text = settings.serve.consent_text
    return {"consent_text": text, "consent_version": settings.serve.consent_version,
            "consent_hash": hashlib.sha256(text.encode("utf-8")).hexdigest()}


# --- sign-up ---------------------------------------------------------------------------------

def signup(db: sqlite_utils.Database, settings: Settings, form: Signup) -> int | None:
    """Record a sign-up; returns the consent row to mail a confirmation link for, or None.

    Nothing is stored or sent for an active, suppressed or erased address, nor for a pending
    one that signed up or was mailed less than `[serve] rate_window` seconds ago (nobody can
    flood a mailbox through the form). Callers answer the same in every case. The IP address and user agent
    are kept only with `[serve] store_ip`.
    """
    address = subscribers.normalise_email(form.email)
    name = check_name(form.name)
    proof = terms(settings)
    if settings.serve.store_ip:
        proof.update(ip=form.ip, user_agent=(form.user_agent or "")[:MAX_USER_AGENT] or None)
    stamp = clock.stamp()
    with store.transaction(db):
        if subscribers.is_erased(db, address):
            return None
        row = subscribers.find(db, address)
        if row is None:
            sid = db["subscribers"].insert({"email": address, "name": name or None, "status": "pending",
                                            "created_at": stamp, "updated_at": stamp}).last_pk
        elif row["status"] != "pending" or _active_within(db, row["id"], settings.serve.rate_window):
            return None
        else:
            sid = row["id"]
            db["subscribers"].update(sid, {"updated_at": stamp, **({"name": name} if name else {})})
        return subscribers.record_consent(db, sid, form.source, stamp, confirmed=False, terms=proof)


def _active_within(db: sqlite_utils.Database, subscriber_id: int, seconds: int) -> bool:
    """Whether the reader signed up or was sent a link in the last `seconds`."""
    stamps = db.execute("select max(signed_up_at), max(confirm_sent_at) from consents where subscriber_id = ?",
                        [subscriber_id]).fetchone()
    return any(s and _epoch(s) > clock.timestamp() - seconds for s in stamps)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


# --- confirmation mails ----------------------------------------------------------------------

def confirm_url(settings: Settings, key: bytes, consent_id: int, issued_at: int | None = None) -> str:
    token = tokens.make_timed(key, list_id(settings), consent_id, issued_at)
    return f"{settings.publication.base_url.rstrip('/')}/confirm/{token}"


def confirmation_message(settings: Settings, email: str, link: str) -> tuple[bytes, str]:
    """The confirmation mail (German, no advertising, text and HTML) and its Message-ID."""
    pub = settings.publication
    if "@" not in pub.sender_address:
        raise ConfigError("[publication] sender_address is not set - add the From address to newsletter.toml")
    mime.check_header_value("To", email)
    message_id = make_msgid(pub.sender_address.rsplit("@", 1)[1].lower())
    boundary = "=_" + secrets.token_hex(12)
    part = ("\r\n--" + boundary + "\r\nContent-Type: text/{}; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n")
    head = b"".join([
        f"Date: {message_date(settings)}\r\n".encode(),
        mime.raw_header("Message-ID", message_id),
        mime.address(pub.sender_name, pub.sender_address),
        mime.raw_header("Reply-To", pub.reply_to) if pub.reply_to else b"",
        mime.raw_header("To", email),
        mime.header("Subject", f"Bitte bestätigen Sie Ihre Anmeldung: {pub.name}"),
        b"Auto-Submitted: auto-generated\r\n",
        b"MIME-Version: 1.0\r\n",
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'.encode(),
    ])
    text, markup = _mail_bodies(settings, link)
    body = b"".join([
        b"This is a multipart message in MIME format.\r\n",
        part.format("plain").encode(), mime.qp_encode(text),
        part.format("html").encode(), mime.qp_encode(markup),
        f"\r\n--{boundary}--\r\n".encode(),
    ])
    return head + b"\r\n" + body, message_id


def _mail_bodies(settings: Settings, link: str) -> tuple[str, str]:
    pub, imp = settings.publication, settings.impressum
    hours = settings.serve.confirm_hours
    paragraphs = [
        "Guten Tag,",
        f"jemand, wahrscheinlich Sie, hat diese E-Mail-Adresse für den Newsletter „{pub.name}“ angemeldet. "
        "Bitte bestätigen Sie die Anmeldung über diesen Link:",
        link,
        f"Der Link ist {hours} Stunden gültig. Mit der Bestätigung erteilen Sie diese Einwilligung:",
        f"„{settings.serve.consent_text}“",
        "Wenn Sie sich nicht angemeldet haben, ignorieren Sie diese E-Mail einfach: ohne Bestätigung "
        "erhalten Sie keinen Newsletter, und die Anmeldung wird gelöscht.",
    ]
    sender = ", ".join(p for p in (imp.organisation, imp.address.replace("\n", ", "), imp.email) if p)
    footer = [f"Absender: {sender}" if sender else "", f"Datenschutz: {pub.privacy_url}" if pub.privacy_url else ""]
    text = wrap_text("\n\n".join(paragraphs + ["\n".join(f for f in footer if f)]))
    e = html.escape
    markup = "".join([
        '<!doctype html><html lang="de"><head><meta charset="utf-8">',
        f"<title>{e(pub.name)}</title></head>",
        '<body style="font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#1a1a1a">',
        f"<p>{e(paragraphs[0])}</p><p>{e(paragraphs[1])}</p>",
        f'<p><a href="{e(link)}" style="display:inline-block;padding:10px 18px;background:#1d4f91;'
        f'color:#ffffff;text-decoration:none;border-radius:4px">Anmeldung bestätigen</a></p>',
        f'<p style="font-size:14px">Falls der Knopf nicht funktioniert: {e(link)}</p>',
        *(f"<p>{e(p)}</p>" for p in paragraphs[3:]),
        *(f'<p style="font-size:13px;color:#555555">{e(f)}</p>' for f in footer if f),
        "</body></html>",
    ])
    return text, markup


def send_confirmation(db: sqlite_utils.Database, settings: Settings, key: bytes, consent_id: int,
                      transport) -> bool:
    """Mail a fresh confirmation link for one consent row of a pending subscriber; False if
    there is none (confirmed, erased or purged since). Raises DeliveryError/TransportError."""
    row = db.execute(
        "select s.email, c.consent_text from consents c join subscribers s on s.id = c.subscriber_id"
        " where c.id = ? and s.status = 'pending' and c.confirmed_at is null", [consent_id]).fetchone()
    if row is None:
        return False
    issued = int(clock.timestamp())
    raw, _ = confirmation_message(settings, row[0], confirm_url(settings, key, consent_id, issued))
    transport.send(settings.publication.sender_address, row[0], raw)
    sent_at = datetime.fromtimestamp(issued, timezone.utc).isoformat(timespec="seconds")
    # An imported or hand-added reader consents by confirming: to the text this mail quoted.
    changes = {"confirm_sent_at": sent_at, **({} if row[1] else terms(settings))}
    with store.transaction(db):
        db["consents"].update(consent_id, changes)
    return True


@dataclass
class ConfirmationReport:
    sent: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (email, server reply)


def send_confirmations(settings: Settings, *, resend: bool = False, transport=None) -> ConfirmationReport:
    """One confirmation mail to each pending subscriber that has not had one (`resend`: also
    to those whose last link has expired). Needs NEWSLETTER_SECRET."""
    key = tokens.secret()
    db = store.open_db(settings.db_path, create=False)
    report = ConfirmationReport()
    transport = transport or transports.make(settings)
    try:
        for consent_id, email in _awaiting_mail(db, settings, resend):
            try:
                report.sent += send_confirmation(db, settings, key, consent_id, transport)
            except DeliveryError as e:
                report.failed.append((email, f"{e.code} {e.text}"))
    finally:
        transport.close()
        db.close()
    return report


def _awaiting_mail(db: sqlite_utils.Database, settings: Settings, resend: bool) -> list[tuple[int, str]]:
    """(latest consent row, email) of the pending subscribers due a confirmation mail."""
    with store.transaction(db):  # readers added before consent rows existed get one now
        db.execute(
            "insert into consents (subscriber_id, signed_up_at, source) select id, coalesce(created_at, ?), ?"
            " from subscribers s where status = 'pending'"
            " and not exists (select 1 from consents where subscriber_id = s.id)", [clock.stamp(), LEGACY_SOURCE])
    expired = (clock.now() - timedelta(hours=settings.serve.confirm_hours)).isoformat(timespec="seconds")
    due = "c.confirm_sent_at is null" + (" or c.confirm_sent_at < ?" if resend else "")
    return [tuple(r) for r in db.execute(
        "select c.id, s.email from subscribers s join consents c on c.id ="
        " (select max(id) from consents where subscriber_id = s.id)"
        f" where s.status = 'pending' and c.confirmed_at is null and ({due}) order by s.id",
        [expired] if resend else [],
    )]


# --- confirm and unsubscribe -----------------------------------------------------------------

def lookup_confirmation(db: sqlite_utils.Database, settings: Settings, key: bytes, token: str) -> tuple[str, dict | None]:
    """What a confirmation token stands for: ("valid", consent row) or ("unknown" | "expired" |
    "already" | "gone", row or None). "gone": the reader was suppressed since."""
    timed = tokens.verify_timed(key, list_id(settings), token, settings.serve.confirm_hours * 3600)
    if timed is None:
        return "unknown", None
    row = next(db.query("select c.*, s.status from consents c join subscribers s on s.id = c.subscriber_id"
                        " where c.id = ?", [timed.ref_id]), None)
    if row is None or timed.issued_at < int(_epoch(row["signed_up_at"])):
        return "unknown", None
    if row["confirmed_at"]:
        return "already", row
    if timed.expired:
        return "expired", row
    if row["status"] != "pending":
        return ("already" if row["status"] == "active" else "gone"), row
    return "valid", row


def confirm(db: sqlite_utils.Database, settings: Settings, key: bytes, token: str, ip: str | None = None) -> str:
    """Activate the sign-up a token names; returns "confirmed" or what `lookup_confirmation` found."""
    with store.transaction(db):
        state, row = lookup_confirmation(db, settings, key, token)
        if state != "valid":
            return state
        stamp = clock.stamp()
        confirm_ip = ip if settings.serve.store_ip else None
        db["consents"].update(row["id"], {"confirmed_at": stamp, "confirm_ip": confirm_ip})
        db["subscribers"].update(row["subscriber_id"], {"status": "active", "confirmed_at": stamp,
                                                        "source": row["source"], "updated_at": stamp})
    return "confirmed"


def unsubscriber(db: sqlite_utils.Database, settings: Settings, key: bytes, token: str) -> dict | None:
    """The subscriber an unsubscribe token names, or None for a forged or unknown one."""
    sid = tokens.verify(key, list_id(settings), token)
    rows = list(db["subscribers"].rows_where("id = ?", [sid])) if sid is not None else []
    return rows[0] if rows else None


def unsubscribe(db: sqlite_utils.Database, settings: Settings, key: bytes, token: str) -> str:
    """"unsubscribed", "already" (unsubscribed, bounced or complained: left as is) or "unknown"."""
    with store.transaction(db):
        row = unsubscriber(db, settings, key, token)
        if row is None:
            return "unknown"
        if row["status"] in subscribers.SUPPRESSED:
            return "already"
        stamp = clock.stamp()
        db["subscribers"].update(row["id"], {"status": "unsubscribed", "unsubscribed_at": stamp, "updated_at": stamp})
    return "unsubscribed"


# --- GDPR: proof, erasure, purge -------------------------------------------------------------

def proof(db: sqlite_utils.Database, email: str) -> dict:
    """The subscriber row and all its consent rows (GDPR Art. 7(1): consent must be provable)."""
    address = subscribers.normalise_email(email)
    row = subscribers.find(db, address)
    if row is None:
        if subscribers.is_erased(db, address):
            raise NotFound(f"{address} was erased - only a hash remains on the suppression list, no proof is kept")
        raise NotFound(f"No subscriber {address} - see 'newsletter subscribers list'")
    consents = list(db["consents"].rows_where("subscriber_id = ?", [row["id"]], order_by="id"))
    return {"subscriber": row, "consents": consents}


@dataclass
class Erasure:
    email: str
    found: bool
    consents: int = 0
    deliveries: int = 0


def forget(db: sqlite_utils.Database, email: str) -> Erasure:
    """Erase a reader (GDPR Art. 17) and put the address's hash on the suppression list.

    The subscriber row goes together with its consent rows, delivery rows (they reference the
    row and hold the address; an issue's counts drop by one) and bounce events. An unknown
    address is only added to the suppression list, so it is never added or mailed either.
    Deleted content is overwritten (secure_delete) and the WAL is checkpointed, so the address
    does not linger in the database files.
    """
    address = subscribers.normalise_email(email)
    db.execute("PRAGMA secure_delete = ON")
    with store.transaction(db):
        row = subscribers.find(db, address)
        erasure = Erasure(address, row is not None)
        if row is not None:
            sid = row["id"]
            erasure.consents = db.execute("delete from consents where subscriber_id = ?", [sid]).rowcount
            erasure.deliveries = db.execute("delete from deliveries where subscriber_id = ?", [sid]).rowcount
            db.execute("delete from bounce_events where subscriber_id = ? or email = ? collate nocase", [sid, address])
            db.execute("delete from subscribers where id = ?", [sid])
        db.execute("insert or ignore into suppressions (email_hash, reason, created_at) values (?, 'erased', ?)",
                   [subscribers.email_hash(address), clock.stamp()])
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return erasure


def parse_age(text: str) -> timedelta:
    """'7d' or '48h'."""
    m = re.fullmatch(r"\s*(\d{1,5})\s*([dh])\s*", text.lower())
    if not m or int(m[1]) == 0:
        raise InputError(f"{text!r} is not a span like 7d or 48h - give days (d) or hours (h), more than 0")
    return timedelta(**{"days" if m[2] == "d" else "hours": int(m[1])})


def purge_pending(db: sqlite_utils.Database, older_than: timedelta) -> int:
    """Delete unconfirmed sign-ups whose latest sign-up is older than `older_than`; returns how many."""
    cutoff = (clock.now() - older_than).isoformat(timespec="seconds")
    with store.transaction(db):
        ids = [r[0] for r in db.execute(
            "select id from subscribers s where status = 'pending' and coalesce("
            "(select max(signed_up_at) from consents where subscriber_id = s.id), created_at) < ?", [cutoff])]
        for sid in ids:
            db.execute("delete from consents where subscriber_id = ?", [sid])
            db.execute("delete from deliveries where subscriber_id = ?", [sid])
            db.execute("delete from subscribers where id = ?", [sid])
    return len(ids)
