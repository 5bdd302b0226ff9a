"""Imports: JSON, JSON lines, CSV and RSS/Atom into the store, upserted by URL.

A file is read whole, every row validated, and then written in one transaction: a bad row
stops the import with its row number and field, unless the caller asks to skip invalid rows.
"""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from newsletter import clock, dates, files
from newsletter.content import columns
from newsletter.content.sanitize import clean_html, clean_text
from newsletter.errors import InputError
from newsletter.store import Database, transaction
from newsletter.store.content import add_item, change_item, item_by_url

FETCH_TIMEOUT = 20       # seconds for the whole download
USER_AGENT = "newsletter-import/0.1"
MAX_BYTES = 20 * 1024 * 1024

# Per kind: field -> how to clean it. Required fields first.
TEXT, HTML, URL, IMAGE, DATE, PUBLISHED = "text", "html", "url", "image", "date", "published"
FIELDS = {
    "article": {
        "url": URL, "title": TEXT, "teaser": HTML, "body": HTML, "author": TEXT,
        "published": PUBLISHED, "category": TEXT, "image": IMAGE, "image_alt": TEXT,
        "image_caption": TEXT, "image_credit": TEXT,
    },
    "job": {
        "url": URL, "title": TEXT, "employer": TEXT, "location": TEXT, "employment": TEXT,
        "term": TEXT, "deadline": DATE, "published": PUBLISHED,
    },
    "ad": {
        "url": URL, "title": TEXT, "advertiser": TEXT, "text": TEXT, "image": IMAGE,
        "image_alt": TEXT, "starts": DATE, "ends": DATE,
    },
}
REQUIRED = {"article": ("url", "title"), "job": ("url", "title"), "ad": ("url", "title", "advertiser")}
# The longest value a field may have, in characters, by how it is cleaned (the ad's text and an
# article's teaser have their own): a 20 MB title would cost compose half a gigabyte. Text and
# HTML are measured once cleaned (markup may be long), after a cap on what is cleaned at all.
MAX_LENGTH = {TEXT: 1_000, URL: 2_000, IMAGE: 2_000, DATE: 40, PUBLISHED: 40, HTML: 500_000}
MAX_FIELD = {"teaser": 20_000, "text": 3_000}
MAX_RAW = {TEXT: 100_000, HTML: 5_000_000}
MAX_COLUMNS = 200


@dataclass
class Rejected:
    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, field {self.field}: {self.reason}"


@dataclass
class ContentImport:
    source: str
    kind: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    ignored_fields: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the reader had to repair

    def refusal(self) -> str:
        """One line for a refused import: how many rows, and what would fix them."""
        http = sum(1 for r in self.rejected if HTTP_REASON in r.reason)
        fix = ("fix them, or pass --skip-invalid to import the valid rows" if http < len(self.rejected) else
               "pass --upgrade-http if the site serves the same pages over https, or --skip-invalid "
               "to import the other rows")
        links = f" ({http} with plain http links)" if http else ""
        return f"{self.source}: {len(self.rejected)} invalid row(s){links}, nothing imported - {fix}"


@dataclass
class RawRow:
    number: int  # as the editor sees it: CSV line, JSON array position or JSON-lines line
    data: dict


# --- reading -------------------------------------------------------------------------------

def read_source(source: str) -> tuple[bytes, str]:
    """Bytes of a local file or an http(s) URL, and a name to report."""
    if source.startswith(("http://", "https://")):
        return _fetch(source), source
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{source} does not exist - give the path of a JSON, CSV or feed file, or an https URL")
    try:
        return path.read_bytes(), path.name
    except OSError as e:
        raise InputError(f"Cannot read {source}: {e.strerror} - check its permissions") from None


def _fetch(url: str, deadline: float = FETCH_TIMEOUT, headers: dict | None = None) -> bytes:
    """The body at `url`, read within `deadline` seconds in all (a server that drips its answer
    byte by byte cannot hold an import, or cron, for ever)."""
    return download(url, deadline, headers)[1]


def download(url: str, deadline: float = FETCH_TIMEOUT, headers: dict | None = None) -> tuple[int, bytes, dict]:
    """(status, body, response headers) of `url` within `deadline` seconds in all; a 304 Not
    Modified (after a conditional request) is (304, b"", headers); other errors are one line."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    ends = time.monotonic() + deadline  # real time: this guards against a slow peer, not a date
    chunks, size = [], 0
    try:
        with urllib.request.urlopen(request, timeout=deadline) as response:
            status, answer = response.status, {k.lower(): v for k, v in response.headers.items()}
            while size <= MAX_BYTES:
                left = ends - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no complete answer within {deadline:g} s")
                _set_timeout(response, left)
                chunk = response.read1(64 * 1024)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except urllib.error.HTTPError as e:
        if e.code == 304:
            return 304, b"", {k.lower(): v for k, v in e.headers.items()}
        raise InputError(f"{url} answered HTTP {e.code} {e.reason} - check the address") from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, TimeoutError) or isinstance(e, TimeoutError):
            reason = f"no complete answer within {deadline:g} s"
        raise InputError(
            f"Cannot fetch {url} ({reason}) - check the address and the network connection, "
            "or download the file and import it from disk"
        ) from None
    if size > MAX_BYTES:
        raise InputError(f"{url} is larger than {MAX_BYTES // 2**20} MB - download and split it first")
    return status, b"".join(chunks), answer


def _set_timeout(response, seconds: float) -> None:
    """Shorten the socket timeout of an open response to what is left of the deadline."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.01))


def detect_format(data: bytes, name: str) -> str:
    suffix = Path(urlsplit(name).path).suffix.lower()
    by_suffix = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv",
                 ".rss": "feed", ".atom": "feed", ".xml": "feed"}
    if suffix in by_suffix:
        return by_suffix[suffix]
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return {b"[": "json", b"{": "jsonl", b"<": "feed"}.get(head, "csv")


def parse(data: bytes, fmt: str, name: str, encoding: str | None = None) -> tuple[list[RawRow], list[str]]:
    """Rows of a JSON, JSON-lines or CSV file, or the entries of a feed as articles; and notes
    on what had to be repaired to read them."""
    if fmt == "feed":
        from newsletter.content.feeds import parse_feed

        entries, notes = parse_feed(data, name)
        return [RawRow(i, row) for i, row in enumerate(entries, start=1)], notes
    text = files.decode_text(data, name, encoding)
    if fmt == "csv":
        return _parse_csv(text, name), []
    if fmt == "json" and not text.lstrip().startswith("{"):
        return _parse_json(text, name), []
    return _parse_jsonl(text, name), []


def _parse_json(text: str, name: str) -> list[RawRow]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{name} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno} - fix the file") from None
    except RecursionError:
        raise InputError(f"{name} nests its values too deeply to be a content file - an import is an array "
                         "of objects with named fields") from None
    if not isinstance(value, list):
        raise InputError(f"{name}: expected a JSON array of objects (or one object per line)")
    return [RawRow(i, item) for i, item in enumerate(value, start=1)]


def _parse_jsonl(text: str, name: str) -> list[RawRow]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(RawRow(number, json.loads(line)))
        except json.JSONDecodeError as e:
            raise InputError(f"{name} line {number} is not valid JSON: {e.msg} (column {e.colno}) - fix that line") from None
        except RecursionError:
            raise InputError(f"{name} line {number} nests its values too deeply - each line is one object "
                             "with named fields") from None
    return rows


def _parse_csv(text: str, name: str) -> list[RawRow]:
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = reader.fieldnames
    except csv.Error as e:
        raise InputError(f"{name} has no readable header row ({e}) - the first row names the columns") from None
    if not header:
        raise InputError(f"{name} is empty - a CSV needs a header row with at least url and title")
    if len(header) > MAX_COLUMNS:
        raise InputError(f"{name} has {len(header):,} columns in its header row, more than {MAX_COLUMNS} - "
                         "check that it is the content file and that its separator is a comma, semicolon or tab")
    reader.fieldnames = [h.strip().lower() for h in header]
    rows = []
    try:
        for record in reader:
            if None in record:
                raise InputError(f"{name} row {reader.line_num}: more values than header columns - check the quoting")
            if any((v or "").strip() for v in record.values()):
                rows.append(RawRow(reader.line_num, {k: v for k, v in record.items() if v not in (None, "")}))
    except csv.Error as e:
        raise InputError(f"{name} row {reader.line_num} is not valid CSV ({e}) - check the quoting") from None
    return rows


# --- validating ----------------------------------------------------------------------------

def guess_kind(rows: list[RawRow]) -> str:
    keys = set().union(*(r.data.keys() for r in rows if isinstance(r.data, dict))) if rows else set()
    if "advertiser" in keys:
        return "ad"
    if keys & {"employer", "deadline", "employment"}:
        return "job"
    return "article"


def validate(raw: RawRow, kind: str, upgrade_http: bool = False) -> dict:
    """The row cleaned for the store, or a Rejected raised as InvalidRow."""
    if not isinstance(raw.data, dict):
        raise InvalidRow(Rejected(raw.number, "-", "not an object with named fields"))
    spec = FIELDS[kind]
    row = {}
    for name, how in spec.items():
        value = raw.data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if name in REQUIRED[kind]:
                raise InvalidRow(Rejected(raw.number, name, "missing"))
            continue
        if isinstance(value, (dict, list)):
            raise InvalidRow(Rejected(raw.number, name, "must be text, not a nested value"))
        limit = MAX_FIELD.get(name, MAX_LENGTH[how])
        _check_length(raw.number, name, str(value), MAX_RAW.get(how, limit))
        try:
            row[name] = _clean(str(value), how, upgrade_http)
        except ValueError as e:
            raise InvalidRow(Rejected(raw.number, name, str(e))) from None
        _check_length(raw.number, name, row[name], limit)
        if name in REQUIRED[kind] and not row[name]:
            raise InvalidRow(Rejected(raw.number, name, "empty after removing markup"))
    for a, b in (("starts", "ends"),):
        if a in row and b in row and row[b] < row[a]:
            raise InvalidRow(Rejected(raw.number, b, f"{row[b]} is before {a} {row[a]}"))
    return row


def _check_length(number: int, name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise InvalidRow(Rejected(number, name, f"{len(value):,} characters, more than {limit:,} - shorten it"))


class InvalidRow(Exception):
    def __init__(self, rejected: Rejected):
        super().__init__(str(rejected))
        self.rejected = rejected


def _clean(value: str, how: str, upgrade_http: bool = False) -> str:
    if how == HTML:
        return clean_html(value)
    if how in (URL, IMAGE):
        return _check_url(value.strip(), upgrade_http)
    if how == DATE:
        return _as(dates.parse_date, value).isoformat()
    if how == PUBLISHED:
        return _as(dates.normalise_published, value)
    return clean_text(value)


def _as(parse, value: str):
    try:
        return parse(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (write YYYY-MM-DD, an ISO datetime or DD.MM.YYYY)") from None


HTTP_REASON = "is plain http"


def _check_url(value: str, upgrade_http: bool = False) -> str:
    parts = urlsplit(value)
    if any(c in value for c in "\r\n\t \"'<>") or "%%" in value:
        raise ValueError(f"{value!r} contains spaces, quotes, '%%' or line breaks")
    if parts.scheme.lower() == "http" and parts.netloc:
        if upgrade_http:
            return "https" + value[len(parts.scheme):]
        raise ValueError(f"{value!r} {HTTP_REASON} - mail clients warn about plain http links; use https")
    if parts.scheme != "https" or not parts.netloc:
        raise ValueError(f"{value!r} is not an absolute https URL")
    return value


# --- writing -------------------------------------------------------------------------------

def import_rows(db: Database, rows: list[RawRow], kind: str, source: str,
                skip_invalid: bool = False, upgrade_http: bool = False,
                notes: list[str] | None = None) -> ContentImport:
    """Validate all rows, then upsert the valid ones by URL in one transaction."""
    report = ContentImport(source=source, kind=kind, notes=list(notes or []))
    known = set(FIELDS[kind])
    report.ignored_fields = sorted(
        set().union(*(r.data.keys() for r in rows if isinstance(r.data, dict))) - known
    ) if rows else []
    cleaned: dict[str, dict] = {}
    for raw in rows:
        try:
            row = validate(raw, kind, upgrade_http)
        except InvalidRow as e:
            report.rejected.append(e.rejected)
            continue
        cleaned[row["url"]] = row  # a later duplicate row wins, as in a spreadsheet
    if report.rejected and not skip_invalid:
        return report
    stamp = clock.stamp()
    with transaction(db):
        for row in cleaned.values():
            _upsert(db, kind, row, known, stamp, report)
    return report


def _upsert(db: Database, kind: str, row: dict, known: set[str], stamp: str, report: ContentImport) -> None:
    existing = item_by_url(db, kind, row["url"])
    if existing is None:
        add_item(db, kind, {**row, "created_at": stamp, "updated_at": stamp})
        report.new += 1
        return
    full = {name: row.get(name) for name in known}
    if all(existing.get(k) == v for k, v in full.items()):
        report.unchanged += 1
        return
    change_item(db, kind, existing["id"], {**full, "updated_at": stamp})
    report.updated += 1


def import_source(db: Database, source: str, kind: str | None = None, skip_invalid: bool = False,
                  encoding: str | None = None, *, upgrade_http: bool = False) -> ContentImport:
    """Read, parse, validate and store one file or URL."""
    data, name = read_source(source)
    fmt = detect_format(data, name)
    rows, notes = parse(data, fmt, name, encoding)
    if fmt == "feed" and kind not in (None, "article"):
        raise InputError(f"{name} is a feed; feed entries can only become articles - drop --kind {kind}")
    kind = kind or guess_kind([RawRow(r.number, columns.rename(r.data)) for r in rows])
    rows = [RawRow(r.number, columns.rename(r.data, kind)) for r in rows]
    if rows:
        found = set().union(*(r.data.keys() for r in rows if isinstance(r.data, dict)))
        columns.require(found, FIELDS[kind], REQUIRED[kind], name, kind)
    return import_rows(db, rows, kind, name, skip_invalid, upgrade_http, notes)
