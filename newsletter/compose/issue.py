"""An issue composed: select → render once → rewrite links → a `Draft`; `save` freezes it.

`prepare` reads and renders but writes nothing, so a caller can still refuse the draft (the
size budget, a failed output) before `save` stores it as a draft in the caller's transaction.
Re-composing a draft (`replace`) keeps what the editor set: its date and window unless new
ones are given, its number and editorial, and a subject or preheader the editor wrote; a
subject or preheader that came from the old lead follows the new one.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from newsletter import clock, dates
from newsletter.compose import personal, render, tracking
from newsletter.compose.links import Rewrite, rewrite_links
from newsletter.compose.select import Options, Selection, select
from newsletter.config import Settings
from newsletter.content.sanitize import clean_html, clean_text, html_to_text
from newsletter.errors import ConfigError, DraftExists, InputError, StoreError
from newsletter.store import Database
from newsletter.store.clicks import link_key, save_links
from newsletter.store.db import Row
from newsletter.store.issues import Issue, issue_by_id, issue_items, save_draft, taken_slugs, unsent_on

SUBJECT_MAX = 78  # what `newsletter check` asks of a subject
# A first paragraph of an editorial that greets the readers: the issue greets each one already.
GREETING = re.compile(r"^(liebe|lieber|sehr geehrte|hallo|guten tag|moin|servus)\b[^.!?]{0,80},$", re.I)


@dataclass
class ComposeRequest:
    options: Options = field(default_factory=Options)
    number: str | None = None
    subject: str | None = None
    preheader: str | None = None
    intro: Path | None = None
    replace: Issue | None = None   # the draft to re-compose
    allow_clipping: bool = False
    out_dir: Path | None = None
    by: str | None = None          # who composes (the timeline, four eyes); default: the editor at the terminal
    another: bool = False          # a second issue for a day that already has an unsent one


@dataclass
class Draft:
    """A composed issue before it is stored: its row, its items, its rendered parts."""

    row: Row
    selection: Selection
    previous: Issue | None         # the draft this one replaces
    notes: list[str] = field(default_factory=list)
    links: list[Row] = field(default_factory=list)  # counted links ([tracking] clicks)

    @property
    def issue(self) -> Issue:
        """The draft as the issue it will be once saved (its id: the replaced draft's, else 0)."""
        return Issue.of({**self.row, "id": self.previous.id if self.previous else 0})

    @property
    def items(self) -> list[tuple[str, int, str, int, int]]:
        """(kind, item id, section, position, is_new) in layout order."""
        sel = self.selection
        items = [("article", sel.lead["id"], "lead", 0, 0)]
        items += [("article", a["id"], "articles", i, 0) for i, a in enumerate(sel.articles, 1)]
        items += [("job", j["id"], "jobs", i, int(j["is_new"])) for i, j in enumerate(sel.jobs, 1)]
        items += [("ad", a["id"], "ads", i, 0) for i, a in enumerate(sel.ads, 1)]
        return items


def prepare(db: Database, settings: Settings, req: ComposeRequest, rewrite: Rewrite | None = None) -> Draft:
    """Select and render an issue (nothing is written)."""
    settings.require_config()
    missing = settings.impressum.missing()
    if missing:
        raise ConfigError(f"The Impressum is incomplete: {', '.join(missing)} missing - fill [impressum] in "
                          f"{settings.config_path}")
    settings.require_base_url("the unsubscribe link in every issue")
    previous = _replaceable(db, req.replace) if req.replace else None
    options = _options(req.options, previous)
    if previous is None and not req.another:
        _refuse_a_second(db, options.issue_date or dates.today(settings.publication.timezone))
    selection = select(db, settings, options)
    notes: list[str] = []
    meta = _meta(db, settings, req, selection, previous, notes)
    meta["slug"] = previous.slug if previous else free_slug(db, meta["issue_date"])  # the web link names it
    rendered = render.render(settings, context(settings, meta, selection))
    counted = tracking.rewriter(settings, link_key(db), meta["slug"], selection) \
        if settings.tracking.clicks == "aggregate" else None
    html_part, text_part = rendered.html, rendered.text
    for step in (rewrite, counted):
        if step is not None:
            html_part, text_part = rewrite_links(html_part, text_part, step)
            text_part = render.wrap_text(text_part)  # a short link may be longer than the link it stands for
    row = {**meta, "mjml": rendered.mjml, "html": html_part, "text": text_part, "status": "draft",
           "updated_at": clock.stamp()}
    return Draft(row, selection, previous, notes, list(counted.links.values()) if counted else [])


def save(db: Database, draft: Draft, html_size: int) -> Issue:
    """Store the draft with its items (inside the caller's transaction); the stored row."""
    issue_id = save_draft(db, {**draft.row, "html_size": html_size}, draft.items,
                          draft.previous.id if draft.previous else None)
    if draft.links:
        save_links(db, issue_id, draft.row["slug"], draft.links)
    return issue_by_id(db, issue_id)


def show(db: Database, issue: Issue) -> list[Row]:
    """An issue's frozen item list, each entry with its item as stored."""
    return issue_items(db, issue.id)


def _refuse_a_second(db: Database, day: date) -> None:
    """A day's second issue would mail readers the same articles twice: name the first."""
    existing = unsent_on(db, day.isoformat())
    if not existing:
        return
    issue = existing[-1]
    if issue.status == "sending":
        raise DraftExists(f"Issue {issue.slug} for {day} is being sent - finish it with 'newsletter send "
                          f"{issue.slug}' (or pass --another to compose a second issue for that day)", issue)
    raise DraftExists(f"Issue {issue.slug} (id {issue.id}) is already a {issue.status} issue for {day} - "
                      f"re-compose it with 'newsletter compose --replace {issue.slug}', or pass --another to "
                      "compose a second issue for the same day", issue)


def _replaceable(db: Database, draft: Issue) -> Issue:
    issue = issue_by_id(db, draft.id)  # as it is now
    if issue.status != "draft":
        raise StoreError(f"Issue {issue.slug} is {issue.status} and can no longer be changed - compose a new issue instead")
    return issue


def _options(opts: Options, previous: Issue | None) -> Options:
    """A re-compose keeps the draft's date, and its window unless a date or window is given."""
    if previous is None or opts.only or opts.since or opts.date_from or opts.date_to:
        return opts if previous is None or opts.issue_date else replace(opts, issue_date=dates.parse_date(previous.issue_date))
    if opts.issue_date:
        return opts
    return replace(opts, issue_date=dates.parse_date(previous.issue_date),
                   date_from=dates.parse_date(previous.window_from), date_to=dates.parse_date(previous.window_to))


def _meta(db: Database, settings: Settings, req: ComposeRequest, sel: Selection, previous: Issue | None,
          notes: list[str]) -> Row:
    number = req.number if req.number is not None else (previous.number if previous else None)
    number = clean_text(number) if number else None
    subject = (clean_text(req.subject) if req.subject
               else _kept(db, settings, previous, "subject") or default_subject(settings, number, sel))
    preheader = (clean_text(req.preheader) if req.preheader
                 else _kept(db, settings, previous, "preheader") or default_preheader(sel))
    if not subject:
        raise InputError("The subject is empty - pass --subject")
    intro = read_intro(req.intro, notes) if req.intro else (previous.intro if previous else None)
    return {
        "number": number, "subject": subject, "preheader": preheader, "intro": intro,
        "issue_date": sel.issue_date.isoformat(),
        "window_from": sel.window_from.isoformat(), "window_to": sel.window_to.isoformat(),
    }


def _kept(db: Database, settings: Settings, previous: Issue | None, key: str) -> str | None:
    """The replaced draft's subject or preheader if the editor wrote it; None if it was the
    default made from its lead (then the new lead makes a new one)."""
    value: str | None = getattr(previous, key) if previous else None
    if not value or previous is None:
        return None
    lead = next((e["item"] for e in issue_items(db, previous.id) if e["section"] == "lead"), None)
    if lead is None:
        return value
    day = dates.parse_date(previous.issue_date)
    old = Selection(day, day, day, lead, [], [], [])
    made = default_subject(settings, previous.number, old) if key == "subject" else default_preheader(old)
    return None if value == made else value


def default_subject(settings: Settings, number: str | None, sel: Selection) -> str:
    """Name, number and the lead's title, within the 78 characters a subject should keep to:
    the whole title if it fits, else its part before a colon, else cut at a word."""
    name = settings.publication.name
    prefix = f"{name} {number} – " if number else f"{name} – "  # a dash: titles often hold a colon
    room = SUBJECT_MAX - len(prefix)
    title = sel.lead["title"]
    if len(title) <= room:
        return prefix + title
    head = title.split(": ", 1)[0]
    if head != title and len(head) <= room:
        return prefix + head
    return prefix + title[: room - 2].rsplit(" ", 1)[0].rstrip(" ,;:–-") + " …"


def default_preheader(sel: Selection, limit: int = 120) -> str:
    text = " ".join(html_to_text(sel.lead.get("teaser") or "").split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def read_intro(path: Path, notes: list[str] | None = None) -> str:
    """An editorial from a file: .html is sanitised, anything else is paragraphs of plain text.

    A first paragraph that only greets the readers ("Liebe Leserinnen und Leser,") is left
    out: every issue opens with the reader's own salutation."""
    try:
        raw = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"--intro {path} does not exist - give the path of a text or HTML file") from None
    except UnicodeDecodeError:
        raise InputError(f"--intro {path} is not UTF-8 - save it as UTF-8") from None
    except OSError as e:
        raise InputError(f"Cannot read --intro {path}: {e.strerror}") from None
    if Path(path).suffix.lower() in (".html", ".htm"):
        paragraphs = [clean_html(raw)]
        first = re.match(r"\s*<p>(.*?)</p>", paragraphs[0], re.S)
        if first and GREETING.match(" ".join(html_to_text(first.group(1)).split())):
            paragraphs = [paragraphs[0][first.end():].strip()]
            _greeting_note(notes, html_to_text(first.group(1)))
        return paragraphs[0]
    paragraphs = [" ".join(p.split()) for p in raw.replace("\r\n", "\n").split("\n\n")]
    paragraphs = [p for p in paragraphs if p]
    if paragraphs and GREETING.match(paragraphs[0]):
        _greeting_note(notes, paragraphs.pop(0))
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)


def _greeting_note(notes: list[str] | None, greeting: str) -> None:
    if notes is not None:
        notes.append(f"Left out the editorial's greeting {greeting.strip()!r}: each reader is greeted by name")


def web_url(settings: Settings, slug: str) -> str:
    """The issue's page in the web archive (`newsletter archive`)."""
    return f"{settings.require_base_url('the web archive')}/archive/{slug}.html"


def context(settings: Settings, meta: dict, sel: Selection) -> dict:
    """Everything the templates see. Stored HTML (teasers, editorial) is marked safe here."""
    def item(row: dict | None) -> dict | None:
        if row is None:
            return None
        return {**row, "teaser": render.safe_html(row.get("teaser")), "body": None}

    issue = {**meta, "date": sel.issue_date, "intro": render.safe_html(meta.get("intro")),
             "web_url": web_url(settings, meta["slug"]) if settings.archive.enabled else None}
    return {
        "publication": settings.publication,
        "impressum": settings.impressum,
        "issue": issue,
        "lead": item(sel.lead),
        "articles": [item(a) for a in sel.articles],
        "jobs": sel.jobs,
        "ads": sel.ads,
        "reader": personal.template_context(settings.publication.base_url),
    }


def free_slug(db: Database, base: str) -> str:
    taken = taken_slugs(db, base)
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"
