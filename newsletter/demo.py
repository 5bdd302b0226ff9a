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
name = "Stadtmarketing-Brief"
sender_name = "Redaktion Stadtmarketing-Brief"
sender_address = "newsletter@stadtmarketing-demo.de"
base_url = "https://www.stadtmarketing-demo.de"
privacy_url = "https://www.stadtmarketing-demo.de/datenschutz"
logo_url = "https://www.stadtmarketing-demo.de/bilder/logo.png"
reason = "Sie erhalten den Stadtmarketing-Brief, weil Sie ihn auf stadtmarketing-demo.de abonniert haben."

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

# The weekly routine: `newsletter run-due` from cron pulls the feeds, composes on Thursday at
# 07:00, mails the reviewers a copy to approve, and sends at 09:00 if it was approved.
[autopilot]
compose_at = "Thu 07:00"
send_at = "Thu 09:00"
number = "{week}/{year}"
approval = "required"
reviewers = ["chefredaktion@stadtmarketing-demo.de"]
four_eyes = true
grace = "2h"

[[feeds]]
url = "content/feed.xml"   # the site's RSS feed; a path here, https://... in real life
kind = "article"
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
    files.atomic_write(folder / "content" / "feed.xml", feed_xml(shifted_feed(shift)))
    intro = folder / "editorial.txt"
    files.atomic_write(intro, (demo_data_dir() / "editorial.txt").read_bytes())
    request = ComposeRequest(options=Options(issue_date=issue_date), number=_number(issue_date), intro=intro)
    return compose_issue(db, settings, request)


def shifted_feed(shift: timedelta) -> list[dict]:
    """The articles the demo site's feed brings after the demo issue, dates moved by `shift`."""
    rows = json.loads((demo_data_dir() / "feed_articles.json").read_text(encoding="utf-8"))
    for row in rows:
        row["published"] = _shift(row["published"], shift)
    return rows


def feed_xml(rows: list[dict]) -> bytes:
    """An RSS 2.0 feed of article rows, as a publisher's site would serve it."""
    from email.utils import format_datetime
    from xml.sax.saxutils import escape

    items = []
    for row in rows:
        published = dates.parse_datetime(row["published"])
        image = (f'<media:content url="{escape(row["image"])}" medium="image">'
                 f'<media:description>{escape(row["image_alt"])}</media:description></media:content>'
                 if row.get("image") else "")
        items.append(
            f"<item><title>{escape(row['title'])}</title><link>{escape(row['url'])}</link>"
            f"<guid>{escape(row['url'])}</guid><dc:creator>{escape(row['author'])}</dc:creator>"
            f"<category>{escape(row['category'])}</category><pubDate>{format_datetime(published)}</pubDate>"
            f"<description>{escape(row['teaser'])}</description>{image}</item>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/"><channel>'
            "<title>Stadtmarketing-Brief</title><link>https://www.stadtmarketing-demo.de/</link>"
            "<description>Neues aus Stadt- und Standortmarketing</description><language>de-de</language>"
            + "".join(items) + "</channel></rss>\n").encode("utf-8")


def _number(d: date) -> str:
    """Weekly numbering by calendar week, as [autopilot] number = "{week}/{year}": '48/2026'."""
    return f"{d.isocalendar()[1]}/{d.year}"
