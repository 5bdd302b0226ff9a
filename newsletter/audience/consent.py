"""Double opt-in and proof of consent: sign-up, confirm, unsubscribe, and the GDPR commands.

No HTTP here: `newsletter.web.app` parses requests and calls these functions; the CLI calls
the rest. A web sign-up flows

    signup (pending subscriber + consent row) → confirmation mail with a timed token that names
    the consent row (`confirmations`) → confirm (subscriber active, consent row confirmed)
    → issues → unsubscribe

The confirmation token names one consent row and was issued after it was signed: a link from
before an unsubscribe, an erasure or a purge never (re)activates anyone, not even when SQLite
reuses the row id. `forget` erases a reader and keeps only a hash of the address on the
suppression list (`mail.addresses.email_hash` says why the hash is not keyed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from newsletter import clock, tokens
from newsletter.audience import subscribers
from newsletter.audience.confirmations import terms
from newsletter.config import Settings
from newsletter.content.sanitize import clean_text
from newsletter.errors import InputError, NotFound
from newsletter.mail.addresses import email_hash, normalise_email
from newsletter.mail.message import list_id
from newsletter.store import Database, transaction
from newsletter.store import consents as consent_rows
from newsletter.store import db as database
from newsletter.store import subscribers as rows
from newsletter.store.subscribers import SUPPRESSED

MAX_NAME = 200
MAX_USER_AGENT = 300


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


# --- sign-up ---------------------------------------------------------------------------------

def signup(db: Database, settings: Settings, form: Signup) -> int | None:
    """Record a sign-up; returns the consent row to mail a confirmation link for, or None.

    Nothing is stored or sent for an active, suppressed or erased address, nor for a pending
    one that signed up or was mailed less than `[serve] rate_window` seconds ago (nobody can
    flood a mailbox through the form). Callers answer the same in every case. The IP address
    and user agent are kept only with `[serve] store_ip`.
    """
    address = normalise_email(form.email)
    name = check_name(form.name)
    proof_terms = terms(settings)
    if settings.serve.store_ip:
        proof_terms.update(ip=form.ip, user_agent=(form.user_agent or "")[:MAX_USER_AGENT] or None)
    stamp = clock.stamp()
    with transaction(db):
        if subscribers.is_erased(db, address):
            return None
        row = rows.find_subscriber(db, address)
        if row is None:
            sid = rows.add_subscriber(db, {"email": address, "name": name or None, "status": "pending",
                                           "created_at": stamp, "updated_at": stamp})
        elif row["status"] != "pending" or _active_within(db, row["id"], settings.serve.rate_window):
            return None
        else:
            sid = row["id"]
            rows.change_subscriber(db, sid, {"updated_at": stamp, **({"name": name} if name else {})})
        return subscribers.record_consent(db, sid, form.source, stamp, confirmed=False, terms=proof_terms)


def _active_within(db: Database, subscriber_id: int, seconds: int) -> bool:
    """Whether the reader signed up or was sent a link in the last `seconds`."""
    return any(s and _epoch(s) > clock.timestamp() - seconds for s in consent_rows.latest_activity(db, subscriber_id))


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


# --- confirm and unsubscribe -----------------------------------------------------------------

def lookup_confirmation(db: Database, settings: Settings, key: bytes, token: str) -> tuple[str, dict | None]:
    """What a confirmation token stands for: ("valid", consent row) or ("unknown" | "expired" |
    "already" | "gone", row or None). "gone": the reader was suppressed since, whatever the
    link once did; "already": the reader is active through this very sign-up."""
    timed = tokens.verify_timed(key, list_id(settings), token, settings.serve.confirm_hours * 3600)
    if timed is None:
        return "unknown", None
    row = consent_rows.consent_with_subscriber(db, timed.ref_id)
    if row is None or timed.issued_at < int(_epoch(row["signed_up_at"])):
        return "unknown", None
    if row["status"] in SUPPRESSED:
        return "gone", row
    if row["confirmed_at"]:
        return "already", row
    if timed.expired:
        return "expired", row
    if row["status"] != "pending":
        return "already", row
    return "valid", row


def confirm(db: Database, settings: Settings, key: bytes, token: str, ip: str | None = None) -> str:
    """Activate the sign-up a token names; returns "confirmed" or what `lookup_confirmation` found."""
    with transaction(db):
        state, row = lookup_confirmation(db, settings, key, token)
        if state != "valid" or row is None:
            return state
        stamp = clock.stamp()
        consent_rows.change_consent(db, row["id"], {"confirmed_at": stamp,
                                                    "confirm_ip": ip if settings.serve.store_ip else None})
        rows.set_status(db, row["subscriber_id"], "active", stamp, source=row["source"])
    return "confirmed"


def unsubscriber(db: Database, settings: Settings, key: bytes, token: str) -> dict | None:
    """The subscriber an unsubscribe token names, or None for a forged or unknown one."""
    return rows.get_subscriber(db, tokens.verify(key, list_id(settings), token))


def unsubscribe(db: Database, settings: Settings, key: bytes, token: str) -> str:
    """"unsubscribed", "already" (unsubscribed, bounced or complained: left as is) or "unknown"."""
    with transaction(db):
        row = unsubscriber(db, settings, key, token)
        if row is None:
            return "unknown"
        changed = rows.set_status(db, row["id"], "unsubscribed", clock.stamp())
    return "unsubscribed" if changed else "already"


# --- GDPR: proof, erasure, purge -------------------------------------------------------------

def proof(db: Database, email: str) -> dict:
    """The subscriber row and all its consent rows (GDPR Art. 7(1): consent must be provable)."""
    address = normalise_email(email)
    row = rows.find_subscriber(db, address)
    if row is None:
        if subscribers.is_erased(db, address):
            raise NotFound(f"{address} was erased - only a hash remains on the suppression list, no proof is kept")
        raise NotFound(f"No subscriber {address} - see 'newsletter subscribers list'")
    return {"subscriber": row, "consents": consent_rows.consents_of(db, row["id"])}


@dataclass
class Erasure:
    email: str
    found: bool
    consents: int = 0
    deliveries: int = 0


def forget(db: Database, email: str) -> Erasure:
    """Erase a reader (GDPR Art. 17) and put the address's hash on the suppression list.

    The subscriber row goes together with its consent rows, delivery rows (they reference the
    row and hold the address; an issue's counts drop by one) and bounce events. An unknown
    address is only added to the suppression list, so it is never added or mailed either.
    Deleted content is overwritten and the WAL is emptied, so the address does not linger in
    the database files.
    """
    address = normalise_email(email)
    database.secure_delete(db)
    with transaction(db):
        row = rows.find_subscriber(db, address)
        erasure = Erasure(address, row is not None)
        if row is not None:
            counts = rows.delete_subscriber(db, row["id"], address)
            erasure.consents, erasure.deliveries = counts["consents"], counts["deliveries"]
        rows.suppress(db, email_hash(address), "erased", clock.stamp())
    database.erase_traces(db)
    return erasure


def parse_age(text: str) -> timedelta:
    """'7d' or '48h'."""
    m = re.fullmatch(r"\s*(\d{1,5})\s*([dh])\s*", text.lower())
    if not m or int(m[1]) == 0:
        raise InputError(f"{text!r} is not a span like 7d or 48h - give days (d) or hours (h), more than 0")
    return timedelta(**{"days" if m[2] == "d" else "hours": int(m[1])})


def purge_pending(db: Database, older_than: timedelta) -> int:
    """Delete unconfirmed sign-ups whose latest sign-up is older than `older_than`; returns how many."""
    cutoff = (clock.now() - older_than).isoformat(timespec="seconds")
    with transaction(db):
        old = rows.pending_since_before(db, cutoff)
        for row in old:
            rows.delete_subscriber(db, row["id"], row["email"])
    return len(old)
