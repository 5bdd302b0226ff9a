"""`newsletter demo`: a complete, working setup in one folder, from content written for it.

The demo content is dated for an issue on `REFERENCE_DATE`; every date is moved by the
same number of days so the demo composes a current issue whenever it runs.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from newsletter import config, dates, files
from newsletter.audience import subscribers
from newsletter.compose.issue import ComposeRequest
from newsletter.compose.select import Options
from newsletter.content import ingest
from newsletter.errors import InputError
from newsletter.store import open_db
from newsletter.store.content import KINDS
from newsletter.workflow.compose import ComposeResult, compose_issue

REFERENCE_DATE = date(2026, 11, 24)
PACKAGE_DEMO = Path(__file__).parent / "_demo"
SOURCE_DEMO = Path(__file__).parent.parent / "data" / "demo"
DATE_FIELDS = ("published", "deadline", "starts", "ends")
CONTENT_FILES = {"article": "articles", "job": "jobs", "ad": "ads"}

DEMO_CONFIG = """\
# Demo configuration written by `newsletter demo`; see `newsletter init` for all settings.

[database]
path = "data/newsletter.db"

[publication]
name = "Stadtmarketing Brief"
sender_name = "Redaktion Stadtmarketing Brief"
sender_address = "newsletter@stadtmarketing-demo.de"
base_url = "https://www.stadtmarketing-demo.de"
privacy_url = "https://www.stadtmarketing-demo.de/datenschutz"
logo_url = "https://www.stadtmarketing-demo.de/bilder/logo.png"
reason = "Sie erhalten den Stadtmarketing Brief, weil Sie ihn auf stadtmarketing-demo.de abonniert haben."

[publication.social]
LinkedIn = "https://www.linkedin.com/company/stadtmarketing-demo"
Instagram = "https://www.instagram.com/stadtmarketing_demo"

[impressum]
organisation = "Demo Fachverlag Stadt & Raum GmbH"
legal_form = "GmbH"
address = "Musterallee 12, 12345 Musterstadt"
email = "redaktion@stadtmarketing-demo.de"
phone = "+49 30 1234567-0"
register_court = "Amtsgericht Musterstadt"
register_number = "HRB 98765"
vat_id = "DE999999999"
managing_directors = ["Erika Beispiel", "Jonas Probe"]
responsible_for_content = "Erika Beispiel, Anschrift wie oben"

[tracking]
clicks = "aggregate"     # count clicks per link, for nobody in particular (newsletter report)
"""


def demo_data_dir() -> Path:
    return PACKAGE_DEMO if PACKAGE_DEMO.is_dir() else SOURCE_DEMO


def shifted_rows(kind: str, shift: timedelta) -> list[dict]:
    """Demo rows of one kind with every date moved by `shift`."""
    rows = json.loads((demo_data_dir() / f"{CONTENT_FILES[kind]}.json").read_text(encoding="utf-8"))
    for row in rows:
        for key in DATE_FIELDS:
            if row.get(key):
                row[key] = _shift(row[key], shift)
    return rows


def load_content(kind: str, shift: timedelta) -> list[ingest.RawRow]:
    """Demo rows of one kind, dates moved by `shift`, as an import reads them."""
    return [ingest.RawRow(i, row) for i, row in enumerate(shifted_rows(kind, shift), start=1)]


def _shift(value: str, shift: timedelta) -> str:
    if len(value) <= 10:
        return (dates.parse_date(value) + shift).isoformat()
    return (dates.parse_datetime(value) + shift).isoformat()


def create(folder: Path, issue_date: date | None = None, force: bool = False) -> ComposeResult:
    """Write folder/newsletter.toml and the demo content (content/*.json, dated around the
    issue date), import the content and four demo readers as a user would, compose an issue."""
    folder = Path(folder)
    config_path = folder / "newsletter.toml"
    if config_path.exists() and not force:
        raise InputError(f"{config_path} already exists - remove the folder or pass --force to rebuild the demo")
    try:
        (folder / "content").mkdir(parents=True, exist_ok=True)
        files.atomic_write(config_path, DEMO_CONFIG.encode("utf-8"))
    except OSError as e:
        raise InputError(f"Cannot write {folder}: {e.strerror} - choose another folder") from None
    settings = config.load(config=config_path)
    if force and settings.db_path.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(str(settings.db_path) + suffix).unlink(missing_ok=True)
    issue_date = issue_date or dates.today(settings.publication.timezone)
    shift = issue_date - REFERENCE_DATE
    db = open_db(settings.db_path, create=True)
    for kind in KINDS:
        path = folder / "content" / f"{CONTENT_FILES[kind]}.json"
        files.atomic_write(path, json.dumps(shifted_rows(kind, shift), ensure_ascii=False, indent=2).encode("utf-8"))
        report = ingest.import_source(db, str(path), kind)
        if report.rejected:
            raise InputError(f"Demo content is broken: {report.rejected[0]}")
    readers = subscribers.import_csv(db, demo_data_dir() / "subscribers.csv", consent_source="Demo-Leserliste")
    if readers.invalid:
        raise InputError(f"Demo readers are broken: {readers.invalid[0]}")
    intro = folder / "editorial.txt"
    files.atomic_write(intro, (demo_data_dir() / "editorial.txt").read_bytes())
    request = ComposeRequest(options=Options(issue_date=issue_date), number=_number(issue_date), intro=intro)
    return compose_issue(db, settings, request)


def _number(d: date) -> str:
    """Monthly numbering, as the magazine does: '11/2026'."""
    return f"{d.month}/{d.year}"
