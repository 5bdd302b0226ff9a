"""Applying returned mail: bounces and complaints (as read by newsletter.audience.dsn) and unsubscribe
requests sent to the List-Unsubscribe mailto address change the subscribers' statuses.

    Source (mailboxes) → dsn.read_report (one mail) → match subscribers
                       → record events and apply them (one transaction per mail)

Matching. The VERP address (bounces+TOKEN@domain, in To/Delivered-To/X-Original-To/
Envelope-To, or an ARF's Original-Mail-From) names the subscriber unforgeably; else the
reported address (Final-Recipient, Original-Recipient; for complaints Original-Rcpt-To and the
To of the returned message); else, when the report is about one message only, the unsubscribe
token in its returned List-Unsubscribe header or its Message-ID in the delivery log. A
report about an address that is no subscriber is ignored, and nothing about it is stored.

Soft bounces count per message that bounced, not per bounce mail: an MTA's repeated delay
warnings about one message (Exim: one a day) count once. A reader is marked bounced when soft
bounces of `[bounces] soft_limit` different messages lie within `soft_window_days` (by the
bounce mails' dates, in any order of import). A message is named by its Message-ID, else by
the warning MTA's queue id (Exim's text warnings); a bounce that names neither counts as a
message of its own.

Statuses. Suppressed readers never become active again. A bounce (hard, or soft ones of
soft_limit messages) turns pending or active into `bounced`. A complaint turns pending, active
or bounced into `complained`: it is the stronger signal. An unsubscribed reader stays
`unsubscribed` whatever comes back, so the record of their withdrawal is kept as it is; the
event is still recorded. A mailed unsubscribe request turns pending or active into `unsubscribed`. A hard
bounce also marks the message's row in `deliveries` failed with the reported status.

Once only. Each event is stored in `bounce_events` under the bounce mail's Message-ID (a
SHA-256 of its bytes when it has none) and the subscriber's address; importing a mailbox
again records and changes nothing twice. A mail's events and status changes are committed
together or not at all.
"""

from __future__ import annotations

import email
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message

from newsletter import clock, config, tokens
from newsletter.audience.dsn import read_report
from newsletter.audience.mailboxes import Mail, Source
from newsletter.audience.mailparts import POLICY, TOKEN_RE, decoded, smtp_reply, utc
from newsletter.audience.report import MAX_TEXT, ReturnedMail
from newsletter.config import Bounces, Settings
from newsletter.errors import InputError
from newsletter.mail.addresses import normalise_email
from newsletter.mail.message import list_id
from newsletter.store import Database, deliveries, transaction
from newsletter.store import bounces as events
from newsletter.store import subscribers as rows

# --- bounces and complaints --------------------------------------------------------------------

@dataclass
class BounceSummary:
    """What an import found and changed; `ignored`/`unparseable` hold (source, reason)."""

    mails: int = 0
    hard: int = 0
    soft: int = 0
    complaints: int = 0
    marked_bounced: int = 0
    marked_complained: int = 0
    already_imported: int = 0
    ignored: list[tuple[str, str]] = field(default_factory=list)
    unparseable: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Event:
    """One bounce or complaint of one subscriber, ready to be recorded."""

    subscriber: dict
    kind: str              # hard | soft | complaint
    status: str
    diagnostic: str


class _Matcher:
    """Finds the subscriber a report is about (see the module docstring for the order)."""

    def __init__(self, db: Database, key: bytes, lid: str) -> None:
        self.db, self.key, self.lid = db, key, lid

    def by_tokens(self, candidates: list[str], purpose: str) -> dict | None:
        for token in candidates:
            row = rows.get_subscriber(self.db, tokens.verify(self.key, self.lid, token, purpose))
            if row:
                return row
        return None

    def by_address(self, address: str) -> dict | None:
        if not address:
            return None
        try:
            address = normalise_email(address)
        except InputError:
            pass  # look it up as written; a stored address is always valid, so it will not match
        return rows.find_subscriber(self.db, address)

    def by_message_id(self, message_id: str | None) -> dict | None:
        if not message_id:
            return None
        return rows.get_subscriber(self.db, deliveries.subscriber_of_message(self.db, message_id))


def import_bounces(db: Database, settings: Settings, source: Source) -> BounceSummary:
    """Read every mail of `source`, record its bounces and complaints, apply them (per mail)."""
    cfg = settings.bounces
    matcher = _Matcher(db, config.signing_key(), list_id(settings))
    summary = BounceSummary()
    for mail in source:
        summary.mails += 1
        report = _read(mail)
        if report.kind in ("ignored", "unparseable"):
            getattr(summary, report.kind).append((mail.source, report.reason))
            continue
        with transaction(db):
            found, unknown = (_bounce_events if report.kind == "bounce" else _complaint_events)(matcher, report)
            recorded = [_record(db, cfg, report, mail, e, summary) for e in found]
        if unknown or not found:
            kind = "ignored" if unknown else "unparseable"
            getattr(summary, kind).append((mail.source, _no_match(report, unknown)))
        elif not any(recorded):
            summary.already_imported += 1
    return summary


def _read(mail: Mail) -> ReturnedMail:
    if mail.error:
        return ReturnedMail("unparseable", mail.error)
    try:
        return read_report(mail.raw)
    except Exception as e:  # noqa: BLE001 - one odd mail must not stop every later import (cron)
        return ReturnedMail("unparseable", f"cannot be read ({type(e).__name__}: {e}) - please report this mail as a bug")


def _bounce_events(matcher: _Matcher, report: ReturnedMail) -> tuple[list[Event], list[str]]:
    """One event per subscriber (the most severe of their failures), and the reported
    addresses that are no subscriber."""
    verp = matcher.by_tokens(report.verp, "bounce")
    single = None
    if len(report.failures) == 1:  # the returned message was addressed to this one recipient
        single = matcher.by_tokens(report.unsubscribe, "unsubscribe") or matcher.by_message_id(report.original_id)
    found: dict[int, Event] = {}
    unknown = []
    for f in sorted(report.failures, key=lambda f: f.kind != "hard"):
        row = verp or matcher.by_address(f.address) or matcher.by_address(f.original) or single
        if row is None:
            unknown += [a for a in (f.address or f.original,) if a]
        elif row["id"] not in found:
            found[row["id"]] = Event(row, f.kind, f.status, f.diagnostic)
    return list(found.values()), unknown


def _complaint_events(matcher: _Matcher, report: ReturnedMail) -> tuple[list[Event], list[str]]:
    row = matcher.by_tokens(report.verp, "bounce") or matcher.by_tokens(report.unsubscribe, "unsubscribe")
    readers = [row] if row else [r for r in map(matcher.by_address, report.addresses) if r]
    readers = readers or [r for r in [matcher.by_message_id(report.original_id)] if r]
    found = [Event(r, "complaint", "abuse", report.detail) for r in {r["id"]: r for r in readers}.values()]
    return found, [] if found else report.addresses


def _no_match(report: ReturnedMail, unknown: list[str]) -> str:
    what = "complaint" if report.kind == "complaint" else "bounce"
    verp = " (its VERP token is not valid: another NEWSLETTER_SECRET or list?)" if report.verp else ""
    if unknown:
        return f"{what} for {', '.join(dict.fromkeys(unknown))}, not a subscriber{verp}"
    return f"{what} that names no recipient: no address in the report and no valid VERP address{verp}"


def _record(db: Database, cfg: Bounces, report: ReturnedMail, mail: Mail, event: Event,
            summary: BounceSummary) -> bool:
    """Store one event and apply it; False when it was recorded before."""
    row, stamp = event.subscriber, clock.stamp()
    inserted = events.record_event(db, {
        "subscriber_id": row["id"], "email": row["email"], "kind": event.kind, "status": event.status,
        "code": smtp_reply(event.diagnostic)[0] if event.kind != "complaint" else None,
        "diagnostic": event.diagnostic, "source": mail.source, "message_id": report.mail_id,
        "original_message_id": report.original_id or report.queue_id, "received_at": report.received_at,
        "created_at": stamp})
    if not inserted:
        return False
    if event.kind == "complaint":
        summary.complaints += 1
        summary.marked_complained += rows.set_status(db, row["id"], "complained", stamp)
        return True
    setattr(summary, event.kind, getattr(summary, event.kind) + 1)
    if event.kind == "hard" and report.original_id:
        code, reply = smtp_reply(event.diagnostic)
        deliveries.fail_message(db, report.original_id, row["id"], code,
                                f"bounce {event.status or '-'}: {reply}"[:MAX_TEXT], stamp)
    if event.kind == "hard" or _soft_limit_reached(db, cfg, row["id"]):
        summary.marked_bounced += rows.set_status(db, row["id"], "bounced", stamp)
    return True


def _soft_limit_reached(db: Database, cfg: Bounces, subscriber_id: int) -> bool:
    """True when soft bounces of soft_limit distinct messages lie within soft_window_days of each
    other (in any order of import: a mailbox need not be sorted by date)."""
    soft = events.soft_events(db, subscriber_id)
    window = timedelta(days=cfg.soft_window_days)
    return any(len({message for at, message in soft[i:] if at - start <= window}) >= cfg.soft_limit
               for i, (start, _) in enumerate(soft))


# --- mailed unsubscribe requests ---------------------------------------------------------------

@dataclass
class UnsubscribeSummary:
    mails: int = 0
    unsubscribed: int = 0
    already: int = 0                                   # unsubscribed or otherwise suppressed before
    invalid: list[tuple[str, str]] = field(default_factory=list)


def import_unsubscribes(db: Database, settings: Settings, source: Source) -> UnsubscribeSummary:
    """Unsubscribe the reader named by the token in each mail's Subject (mailto:...?subject=TOKEN).

    Mail clients may prefix "Re:" or encode the subject; the token is found anywhere in it and
    must verify. The request's Date (if sane) becomes unsubscribed_at.
    """
    key, lid = config.signing_key(), list_id(settings)
    summary = UnsubscribeSummary()
    for mail in source:
        summary.mails += 1
        if mail.error:
            summary.invalid.append((mail.source, mail.error))
            continue
        outcome = _unsubscribe(db, key, lid, email.message_from_bytes(mail.raw, policy=POLICY))
        if outcome in ("unsubscribed", "already"):
            setattr(summary, outcome, getattr(summary, outcome) + 1)
        else:
            summary.invalid.append((mail.source, outcome))
    return summary


def _unsubscribe(db: Database, key: bytes, lid: str, msg: Message) -> str:
    """'unsubscribed', 'already' or why the request cannot be used."""
    subject = decoded(msg.get("Subject"))
    seen = f"From: {decoded(msg.get('From')) or '-'}, Subject: {subject[:80] or '-'}"
    candidates = TOKEN_RE.findall(subject)
    ids = [sid for sid in (tokens.verify(key, lid, t) for t in candidates) if sid is not None]
    if not candidates:
        return f"no unsubscribe token in the subject ({seen})"
    if not ids:
        return f"the token in the subject is not valid ({seen})"
    now = clock.stamp()
    asked = utc(msg.get("Date"))
    asked = asked if asked and asked <= now else now
    with transaction(db):
        changed = rows.set_status(db, ids[0], "unsubscribed", now, unsubscribed_at=asked)
        exists = changed or rows.get_subscriber(db, ids[0]) is not None
    if not exists:
        return f"the token names a subscriber who is no longer in the store ({seen})"
    return "unsubscribed" if changed else "already"
