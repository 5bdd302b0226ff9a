"""One issue as the preview and its screenshots show it: personalised for the sample reader
(or `--as` a subscriber), with the message's headers (encoded words decoded, as a mail client
shows them), its size and its items."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.header import decode_header, make_header

from newsletter.compose.personal import SAMPLE, Recipient, salutation
from newsletter.config import Settings
from newsletter.errors import NotFound
from newsletter.mail.addresses import normalise_email
from newsletter.mail.export import export, message
from newsletter.reports.clickmap import click_map
from newsletter.reports.issue import issue_report
from newsletter.store import Database
from newsletter.store.issues import Issue, get_issue, issue_items, latest_draft
from newsletter.store.subscribers import find_subscriber

_STYLE = re.compile(r"(<style\b[^>]*>)(.*?)(</style>)", re.S | re.I)
_DARK = re.compile(r"\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.I)


def has_dark_css(html: str) -> bool:
    """Whether a <style> block has `prefers-color-scheme: dark` rules."""
    return any(_DARK.search(m.group(2)) for m in _STYLE.finditer(html))


@dataclass(frozen=True)
class View:
    issue: Issue
    recipient: Recipient
    html: str
    text: str
    headers: str      # the header block, unfolded and decoded
    items: list[dict]
    budget: int

    @property
    def has_dark_css(self) -> bool:
        return has_dark_css(self.html)


def find_issue(db: Database, ref: str | None) -> Issue:
    """The issue `ref` (id or slug), or the latest draft."""
    if ref:
        return get_issue(db, ref)
    draft = latest_draft(db)
    if draft is None:
        raise NotFound("There is no draft to preview - compose one with 'newsletter compose', "
                       "or name an issue: newsletter preview ISSUE")
    return draft


def reader(db: Database, email: str | None) -> Recipient:
    """The sample reader, or the subscriber `email` with the sample token."""
    if not email:
        return SAMPLE
    row = find_subscriber(db, normalise_email(email))
    if row is None:
        raise NotFound(f"No subscriber {email} - see 'newsletter subscribers list', or leave out --as")
    return Recipient(email=row["email"], salutation=salutation(row), token=SAMPLE.token)


def make_view(db: Database, settings: Settings, issue: Issue, recipient: Recipient, clicks: bool = False) -> View:
    """The view of `issue`; `clicks`: as a click map (each counted link's clicks beside it)."""
    built = message(settings, issue)
    eml = export(settings, issue, "eml", recipient, built=built)
    page = export(settings, issue, "html", recipient).decode("utf-8")
    if clicks:
        page = click_map(page, issue_report(db, settings, issue), settings.publication.base_url)
    return View(issue, recipient, page, export(settings, issue, "txt", recipient).decode("utf-8"),
                readable_headers(eml), issue_items(db, issue.id), settings.compose.size_budget)


def readable_headers(eml: bytes) -> str:
    """The message's header block as a reader's mail client shows it: one line per header,
    encoded words (a German subject) decoded."""
    head = eml.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    lines = []
    for line in re.split(r"\r\n(?![ \t])", head):
        name, _, value = line.partition(":")
        value = " ".join(value.split())
        try:
            value = str(make_header(decode_header(value)))
        except (LookupError, UnicodeError, ValueError):
            pass
        lines.append(f"{name}: {value}")
    return "\n".join(lines)
