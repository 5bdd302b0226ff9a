"""Subscribers: validated addresses, consent, the suppression list, CSV import and export.

An address is stored once (case-insensitively), with its domain in punycode. A subscriber
whose status is unsubscribed, bounced or complained is suppressed: neither `add` nor
`import_csv` ever makes them active again, so the store doubles as the suppression list.
Erased addresses (`subscribers forget`) leave only a hash in `suppressions`, which `add` and
`import_csv` honour the same way. Every new subscriber and every consent given later gets a
row in `consents` (the proof of consent; see `newsletter.audience.consent`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from newsletter import clock, files
from newsletter.compose.personal import anrede as normal_anrede
from newsletter.content.sanitize import clean_text
from newsletter.errors import InputError, NotFound, StoreError
from newsletter.mail.addresses import email_hash, normalise_email
from newsletter.store import Database, transaction
from newsletter.store import consents as consent_rows
from newsletter.store import subscribers as rows
from newsletter.store.db import Row
from newsletter.store.subscribers import NAME_FIELDS, STATUSES, SUPPRESSED

EXPORT_COLUMNS = ("email", *NAME_FIELDS, "status", "source", "created_at", "confirmed_at")
HEADER_ALIASES = {"e-mail": "email", "salutation": "anrede", "title": "titel",
                  "first_name": "vorname", "last_name": "nachname"}
MAX_REPORTED = 1000  # invalid rows listed one by one; beyond that only counted


def find(db: Database, address: str) -> dict | None:
    """The subscriber with this (normalised) address, in any case, or None."""
    return rows.find_subscriber(db, address)


def is_erased(db: Database, address: str) -> bool:
    """Whether `address` (normalised) is on the hashed suppression list."""
    return rows.hash_is_erased(db, email_hash(address))


def record_consent(db: Database, subscriber_id: int, source: str, stamp: str, *,
                   confirmed: bool, terms: dict | None = None) -> int:
    """One row of proof in `consents`; `terms` adds consent_text, consent_version, consent_hash,
    ip, user_agent (whatever is given)."""
    return consent_rows.add_consent(db, {"subscriber_id": subscriber_id, "signed_up_at": stamp, "source": source,
                                         "confirmed_at": stamp if confirmed else None, **(terms or {})})


# --- adding and importing ------------------------------------------------------------------

def add(db: Database, email: str, *, name: str | None = None, anrede: str | None = None,
        titel: str | None = None, vorname: str | None = None, nachname: str | None = None,
        consent_source: str | None = None) -> tuple[Row, str]:
    """Add or update one subscriber; returns the row and "added", "updated", "unchanged" or
    "suppressed".

    With a consent source (e.g. "Messe 2026, Formular") the subscriber is active and the
    consent is recorded; without one a new subscriber is pending. Given name fields replace
    the stored ones. A suppressed subscriber is left exactly as it is; an erased address
    (hashed suppression list) is not stored at all and comes back as a row without id with
    status "erased".
    """
    address = normalise_email(email)
    names = _clean_names({"name": name, "anrede": anrede, "titel": titel,
                          "vorname": vorname, "nachname": nachname})
    consent = clean_text(consent_source) if consent_source else None
    with transaction(db):
        row_id, outcome = _upsert(db, address, names, consent, clock.stamp(), origin="newsletter subscribers add")
    if row_id is None:
        return {"id": None, "email": address, "status": "erased"}, outcome
    return _stored(db, row_id), outcome


@dataclass
class SubscriberImport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: int = 0
    invalid_count: int = 0
    invalid: list[tuple[int, str, str]] = field(default_factory=list)  # (row, field, reason), the first MAX_REPORTED

    def reject(self, number: int, field_name: str, reason: str) -> None:
        self.invalid_count += 1
        if len(self.invalid) < MAX_REPORTED:
            self.invalid.append((number, field_name, reason))


def import_csv(db: Database, path: Path | str, consent_source: str | None = None,
               encoding: str | None = None) -> SubscriberImport:
    """Import subscribers from a CSV file with a header row naming at least `email`.

    The file is read row by row (a million rows take constant memory) and written in one
    transaction. Rows are numbered as in a spreadsheet (header = row 1); invalid rows are
    reported and skipped, and so is a second row for an address already in the file (with both
    row numbers). A `status` column (as written by `export`) of unsubscribed, bounced or
    complained is kept, so re-importing an export never revives a suppressed address; "active"
    and "pending" there are ignored, as only a consent source makes a subscriber active. Erased
    addresses count as suppressed. Each added subscriber gets a consent row whose source is the
    consent source, else "Import <file name>".
    """
    path = Path(path)
    report = SubscriberImport()
    consent = clean_text(consent_source) if consent_source else None
    stamp = clock.stamp()
    with transaction(db), rows.FirstSeen(db) as seen:
        for number, record in _read_csv(path, encoding):
            try:
                address, names, suppress = _parse_row(record)
            except _InvalidRow as e:
                report.reject(number, e.field, e.reason)
                continue
            first = seen.first_row(address, number)
            if first is not None:
                report.reject(number, "email", f"{address} is already in row {first} - remove one of the two rows")
                continue
            _, outcome = _upsert(db, address, names, consent, stamp, suppress, origin=f"Import {path.name}")
            setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _read_csv(path: Path, encoding: str | None) -> Iterator[tuple[int, dict | None]]:
    """(spreadsheet row number, {column: value}) for each non-empty data row; None for a row
    with more values than the header has columns."""
    with files.open_text(path, encoding) as text:
        first = text.readline()
        delimiter = max(",;\t", key=first.count)
        reader = csv.reader(_chain(first, text), delimiter=delimiter)
        try:
            header = [HEADER_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in next(reader, [])]
            if "email" not in header:
                raise InputError(
                    f"{path.name} has no 'email' column in its first row - add a header row such as "
                    "email;anrede;titel;vorname;nachname"
                )
            # csv.reader yields [] for a blank line, so counting records keeps spreadsheet row
            # numbers, also when a quoted cell spans several lines.
            for number, values in enumerate(reader, start=2):
                if any(v.strip() for v in values):
                    yield number, dict(zip(header, values, strict=False)) if len(values) <= len(header) else None
        except csv.Error as e:
            raise InputError(f"{path.name} is not valid CSV near line {reader.line_num} ({e}) - check the quoting") from None


def _chain(first: str, rest: io.TextIOBase) -> Iterator[str]:
    yield first
    yield from rest


class _InvalidRow(Exception):
    def __init__(self, field_name: str, reason: str):
        super().__init__(reason)
        self.field, self.reason = field_name, reason


def _parse_row(record: dict | None) -> tuple[str, dict, str | None]:
    """(address, name fields, suppressed status given in the file) of one CSV row."""
    if record is None:
        raise _InvalidRow("-", "more values than header columns - check the quoting and the delimiter")
    if not record.get("email", "").strip():
        raise _InvalidRow("email", "missing")
    try:
        address = normalise_email(record["email"])
    except InputError as e:
        raise _InvalidRow("email", str(e)) from None
    status = record.get("status", "").strip().lower()
    if status and status not in STATUSES:
        raise _InvalidRow("status", f"{status!r} is not one of {', '.join(STATUSES)} - correct or clear it")
    return address, _clean_names(record), status if status in SUPPRESSED else None


def _clean_names(values: dict) -> dict:
    """The given (non-empty) name fields as one-line plain text; "Fr."/"hr" become Frau/Herr."""
    cleaned = {key: clean_text(values[key]) for key in NAME_FIELDS if values.get(key)}
    if "anrede" in cleaned:
        cleaned["anrede"] = normal_anrede(cleaned["anrede"])
    return {key: value for key, value in cleaned.items() if value}


def _upsert(db: Database, address: str, names: dict, consent: str | None, stamp: str,
            suppress: str | None = None, *, origin: str) -> tuple[int | None, str]:
    """Store one subscriber (column names in `names` are NAME_FIELDS); returns id (None for an
    erased address, which is never stored) and outcome. `origin` is the consent row's source
    when no consent source is given."""
    if is_erased(db, address):
        return None, "suppressed"
    existing = rows.find_subscriber(db, address)
    if existing is None:
        status = suppress or ("active" if consent else "pending")
        row_id = rows.add_subscriber(db, {
            "email": address, **names, "status": status, "source": consent,
            "created_at": stamp, "updated_at": stamp,
            "confirmed_at": stamp if status == "active" else None,
            "unsubscribed_at": stamp if status == "unsubscribed" else None})
        if suppress:
            return row_id, "suppressed"
        record_consent(db, row_id, consent or origin, stamp, confirmed=status == "active")
        return row_id, "added"
    if existing["status"] in SUPPRESSED:
        return existing["id"], "suppressed"
    if suppress:
        rows.set_status(db, existing["id"], suppress, stamp)
        return existing["id"], "suppressed"
    changes = {key: value for key, value in names.items() if existing.get(key) != value}
    activated = consent and existing["status"] == "pending" and rows.set_status(
        db, existing["id"], "active", stamp, source=consent)
    if activated and consent:
        record_consent(db, existing["id"], consent, stamp, confirmed=True)
    if not changes and not activated:
        return existing["id"], "unchanged"
    if changes:
        rows.change_subscriber(db, existing["id"], {**changes, "updated_at": stamp})
    return existing["id"], "updated"


# --- reading, removing, exporting ----------------------------------------------------------

def list_subscribers(db: Database, status: str | None = None) -> list[dict]:
    """All subscribers, or those with one status, ordered by address."""
    if status is not None and status not in STATUSES:
        raise InputError(f"Unknown status {status!r} - use one of {', '.join(STATUSES)}")
    return rows.list_subscribers(db, status)


def remove(db: Database, email: str) -> tuple[Row, str]:
    """Delete a subscriber, unless mail was ever sent to them; returns the row and what happened.

    A subscriber with rows in `deliveries`, or one already suppressed, stays in the store as
    the suppression list needs them: an active or pending one becomes "unsubscribed"
    (outcome "unsubscribed"), a suppressed one is left as it is ("suppressed"). Everyone else
    is deleted with their consent rows ("deleted").
    """
    address = normalise_email(email)
    with transaction(db):
        row = rows.find_subscriber(db, address)
        if row is None:
            raise NotFound(f"No subscriber {address} - see 'newsletter subscribers list'")
        if row["status"] in SUPPRESSED:
            return row, "suppressed"
        if rows.was_mailed(db, row["id"]):
            rows.set_status(db, row["id"], "unsubscribed", clock.stamp())
            return _stored(db, row["id"]), "unsubscribed"
        rows.delete_subscriber(db, row["id"], row["email"])
        return row, "deleted"


def export(db: Database, out: IO[str]) -> int:
    """All subscribers as CSV (header row first), ordered by address; `import_csv` reads it
    back. Streams the rows; returns how many."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for row in rows.iter_subscribers(db):
        writer.writerow([row[c] if row[c] is not None else "" for c in EXPORT_COLUMNS])
        count += 1
    return count


def _stored(db: Database, subscriber_id: int) -> Row:
    row = rows.get_subscriber(db, subscriber_id)
    if row is None:
        raise StoreError(f"Subscriber {subscriber_id} vanished while it was being changed - try again")
    return row
