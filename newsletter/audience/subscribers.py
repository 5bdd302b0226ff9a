"""Subscribers: validated addresses, consent, the suppression list, CSV import and export.

An address is stored once (case-insensitively), with its domain in punycode. A subscriber
whose status is unsubscribed, bounced or complained is suppressed: neither `add` nor
`import_csv` ever makes them active again, so the store doubles as the suppression list.
Erased addresses (`subscribers forget`) leave only a hash in `suppressions`, which `add` and
`import_csv` honour the same way. Every new subscriber and every consent given later gets a
row in `consents` (the proof of consent; see `newsletter.consent`).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils
from email_validator import EmailNotValidError, validate_email

from newsletter import clock, store
from newsletter.errors import InputError, NotFound
from newsletter.content.ingest import _decode
from newsletter.content.sanitize import clean_text

STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
SUPPRESSED = ("unsubscribed", "bounced", "complained")
NAME_FIELDS = ("name", "anrede", "titel", "vorname", "nachname")
EXPORT_COLUMNS = ("email", *NAME_FIELDS, "status", "source", "created_at", "confirmed_at")
HEADER_ALIASES = {"e-mail": "email", "salutation": "anrede", "title": "titel",
                  "first_name": "vorname", "last_name": "nachname"}
BATCH = 1000

_ANREDE = {"frau": "Frau", "fr.": "Frau", "fr": "Frau",
           "herr": "Herr", "herrn": "Herr", "hr.": "Herr", "hr": "Herr"}


# --- addresses and salutations -------------------------------------------------------------

def normalise_email(text: str) -> str:
    """The address as stored: trimmed, syntax-checked (no DNS), domain lower-case punycode.

    The local part is kept as typed; uniqueness is case-insensitive in the store.
    """
    address = text.strip()
    if not address:
        raise InputError("The e-mail address is empty - give one like name@example.de")
    if any(ord(c) < 32 or ord(c) == 127 for c in address):
        raise InputError(f"{address!r} contains a line break or control character - remove it")
    try:
        # check_deliverability=False: no DNS lookups, so imports work offline and stay fast.
        valid = validate_email(address, check_deliverability=False)
    except EmailNotValidError as e:
        reason = str(e).rstrip(".")
        raise InputError(f"{address!r} is not a valid e-mail address ({reason}) - correct it") from None
    if valid.smtputf8:
        raise InputError(
            f"{address!r} has non-ASCII characters before the @, which needs SMTPUTF8 and many "
            "mail relays lack it - ask the subscriber for an address without them"
        )
    return f"{valid.local_part}@{valid.ascii_domain.lower()}"


def salutation(row: dict) -> str:
    """The German greeting for a subscriber row, without the trailing comma.

    "Sehr geehrte Frau Dr. Müller", "Sehr geehrter Herr Schmidt", "Guten Tag Alex Beispiel"
    (no or another Anrede) or plain "Guten Tag" (no Nachname).
    """
    def get(key: str) -> str:
        return " ".join(str(row.get(key) or "").split())

    anrede = _ANREDE.get(get("anrede").lower())
    nachname, vorname = get("nachname"), get("vorname")
    if nachname and anrede:
        opening = "Sehr geehrte Frau" if anrede == "Frau" else "Sehr geehrter Herr"
        return " ".join(part for part in (opening, get("titel"), nachname) if part)
    if nachname and vorname:
        return f"Guten Tag {vorname} {nachname}"
    return "Guten Tag"


def email_hash(address: str) -> str:
    """The suppression-list key of an address: sha256 of its normalised, lower-cased form.

    Deliberately not keyed with NEWSLETTER_SECRET: `add` and `import` must recognise an erased
    address without the secret, and a changed secret must not revive the list. The price is
    that someone holding the database can test whether a known address was erased.
    """
    return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()


def find(db: sqlite_utils.Database, address: str) -> dict | None:
    """The subscriber with this (normalised) address, in any case, or None."""
    return _find(db, address)


def is_erased(db: sqlite_utils.Database, address: str) -> bool:
    """Whether `address` (normalised) is on the hashed suppression list."""
    return db.conn.execute("select 1 from suppressions where email_hash = ?", [email_hash(address)]).fetchone() is not None


def record_consent(db: sqlite_utils.Database, subscriber_id: int, source: str, stamp: str, *,
                   confirmed: bool, terms: dict | None = None) -> int:
    """One row of proof in `consents`; `terms` adds consent_text, consent_version, consent_hash,
    ip, user_agent (whatever is given)."""
    row = {"subscriber_id": subscriber_id, "signed_up_at": stamp, "source": source,
           "confirmed_at": stamp if confirmed else None, **(terms or {})}
    marks = ", ".join("?" * len(row))
    return db.conn.execute(f"insert into consents ({', '.join(row)}) values ({marks})", list(row.values())).lastrowid


# --- adding and importing ------------------------------------------------------------------

def add(db: sqlite_utils.Database, email: str, *, name: str | None = None, anrede: str | None = None,
        titel: str | None = None, vorname: str | None = None, nachname: str | None = None,
        consent_source: str | None = None) -> tuple[dict, str]:
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
    with store.transaction(db):
        row_id, outcome = _upsert(db, address, names, consent, clock.stamp(), origin="newsletter subscribers add")
    if row_id is None:
        return {"id": None, "email": address, "status": "erased"}, outcome
    return db["subscribers"].get(row_id), outcome


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: int = 0
    invalid: list[tuple[int, str, str]] = field(default_factory=list)  # (row, field, reason)


def import_csv(db: sqlite_utils.Database, path: Path | str, consent_source: str | None = None) -> ImportReport:
    """Import subscribers from a CSV file with a header row naming at least `email`.

    Rows are numbered as in a spreadsheet (header = row 1); invalid rows are reported and
    skipped, the valid ones written in one transaction. A later row for the same address wins.
    A `status` column (as written by `export`) of unsubscribed, bounced or complained is kept,
    so re-importing an export never revives a suppressed address; "active" and "pending" there
    are ignored, as only a consent source makes a subscriber active. Erased addresses count as
    suppressed. Each added subscriber gets a consent row whose source is the consent source,
    else "Import <file name>".
    """
    path = Path(path)
    report = ImportReport()
    rows: dict[str, tuple[str, dict, str | None]] = {}
    for number, record in _read_csv(path):
        try:
            address, names, suppress = _parse_row(record)
        except _InvalidRow as e:
            report.invalid.append((number, e.field, e.reason))
            continue
        rows[address.lower()] = (address, names, suppress)  # a later row wins, as in a spreadsheet
    consent = clean_text(consent_source) if consent_source else None
    stamp = clock.stamp()
    with store.transaction(db):
        for address, names, suppress in rows.values():
            _, outcome = _upsert(db, address, names, consent, stamp, suppress, origin=f"Import {path.name}")
            setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _read_csv(path: Path) -> Iterator[tuple[int, dict | None]]:
    """(spreadsheet row number, {column: value}) for each non-empty data row; None for a row
    with more values than the header has columns."""
    try:
        text = _decode(path.read_bytes(), path.name)
    except OSError as e:
        raise InputError(f"Cannot read {path}: {e.strerror} - check the path and its permissions") from None
    delimiter = max(",;\t", key=text.split("\n", 1)[0].count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
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
                yield number, dict(zip(header, values)) if len(values) <= len(header) else None
    except csv.Error as e:
        raise InputError(f"{path.name} is not valid CSV near line {reader.line_num} ({e}) - check the quoting") from None


class _InvalidRow(Exception):
    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field, self.reason = field, reason


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
        cleaned["anrede"] = _ANREDE.get(cleaned["anrede"].lower(), cleaned["anrede"])
    return {key: value for key, value in cleaned.items() if value}


# The import loop runs these once per row, so they talk to sqlite3 directly: sqlite-utils'
# insert/get re-read the schema on every call, which doubled the time of a 100,000-row import.

def _find(db: sqlite_utils.Database, address: str) -> dict | None:
    # `collate nocase` in the query is what lets SQLite use idx_subscribers_email.
    cursor = db.conn.execute("select * from subscribers where email = ? collate nocase", [address])
    values = cursor.fetchone()
    return dict(zip((c[0] for c in cursor.description), values)) if values else None


def _insert(db: sqlite_utils.Database, row: dict) -> int:
    marks = ", ".join("?" * len(row))
    return db.conn.execute(f"insert into subscribers ({', '.join(row)}) values ({marks})", list(row.values())).lastrowid


def _update(db: sqlite_utils.Database, row_id: int, changes: dict) -> None:
    assignments = ", ".join(f"{key} = ?" for key in changes)
    db.conn.execute(f"update subscribers set {assignments} where id = ?", [*changes.values(), row_id])


def _upsert(db: sqlite_utils.Database, address: str, names: dict, consent: str | None, stamp: str,
            suppress: str | None = None, *, origin: str) -> tuple[int | None, str]:
    """Store one subscriber (column names in `names` are NAME_FIELDS); returns id (None for an
    erased address, which is never stored) and outcome. `origin` is the consent row's source
    when no consent source is given."""
    if is_erased(db, address):
        return None, "suppressed"
    existing = _find(db, address)
    if existing is None:
        status = suppress or ("active" if consent else "pending")
        row = {"email": address, **names, "status": status, "source": consent,
               "created_at": stamp, "updated_at": stamp,
               "confirmed_at": stamp if status == "active" else None,
               "unsubscribed_at": stamp if status == "unsubscribed" else None}
        row_id = _insert(db, row)
        if suppress:
            return row_id, "suppressed"
        record_consent(db, row_id, consent or origin, stamp, confirmed=status == "active")
        return row_id, "added"
    if existing["status"] in SUPPRESSED:
        return existing["id"], "suppressed"
    if suppress:
        changes = {"status": suppress, "unsubscribed_at": stamp if suppress == "unsubscribed" else None}
        _update(db, existing["id"], {**changes, "updated_at": stamp})
        return existing["id"], "suppressed"
    changes = {key: value for key, value in names.items() if existing.get(key) != value}
    if consent and existing["status"] == "pending":
        changes.update(status="active", source=consent, confirmed_at=stamp)
        record_consent(db, existing["id"], consent, stamp, confirmed=True)
    if not changes:
        return existing["id"], "unchanged"
    _update(db, existing["id"], {**changes, "updated_at": stamp})
    return existing["id"], "updated"


# --- reading, removing, exporting ----------------------------------------------------------

def list_subscribers(db: sqlite_utils.Database, status: str | None = None) -> list[dict]:
    """All subscribers, or those with one status, ordered by address."""
    if status is not None and status not in STATUSES:
        raise InputError(f"Unknown status {status!r} - use one of {', '.join(STATUSES)}")
    where, args = ("status = ?", [status]) if status else (None, [])
    return list(db["subscribers"].rows_where(where, args, order_by="email collate nocase"))


def remove(db: sqlite_utils.Database, email: str) -> tuple[dict, str]:
    """Delete a subscriber, unless mail was ever sent to them; returns the row and what happened.

    A subscriber with rows in `deliveries`, or one already suppressed, stays in the store as
    the suppression list needs them: an active or pending one becomes "unsubscribed"
    (outcome "unsubscribed"), a suppressed one is left as it is ("suppressed"). Everyone else
    is deleted with their consent rows ("deleted").
    """
    address = normalise_email(email)
    with store.transaction(db):
        row = _find(db, address)
        if row is None:
            raise NotFound(f"No subscriber {address} - see 'newsletter subscribers list'")
        if row["status"] in SUPPRESSED:
            return row, "suppressed"
        if db.execute("select 1 from deliveries where subscriber_id = ? limit 1", [row["id"]]).fetchone():
            stamp = clock.stamp()
            _update(db, row["id"], {"status": "unsubscribed", "unsubscribed_at": stamp, "updated_at": stamp})
            return db["subscribers"].get(row["id"]), "unsubscribed"
        db.execute("delete from consents where subscriber_id = ?", [row["id"]])
        db["subscribers"].delete(row["id"])
        return row, "deleted"


def export(db: sqlite_utils.Database) -> str:
    """All subscribers as CSV (header row first), ordered by address; `import_csv` reads it back."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in list_subscribers(db):
        writer.writerow([row[c] if row[c] is not None else "" for c in EXPORT_COLUMNS])
    return out.getvalue()


def active(db: sqlite_utils.Database) -> Iterator[dict]:
    """Active subscribers (id, email, name fields) by id, read BATCH rows at a time."""
    columns = ", ".join(("id", "email", *NAME_FIELDS))
    last = 0
    while True:
        batch = list(db.query(
            f"select {columns} from subscribers where status = 'active' and id > ? order by id limit ?",
            [last, BATCH],
        ))
        yield from batch
        if len(batch) < BATCH:
            return
        last = batch[-1]["id"]
