"""Issues: compose (select → render once → freeze as draft → write the outputs) and export."""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from newsletter import clock, dates, store
from newsletter.compose import render
from newsletter.config import Settings
from newsletter.errors import ConfigError, InputError, RenderError, StoreError
from newsletter.mail.message import SAMPLE, MessageTemplate, Recipient
from newsletter.content.sanitize import clean_html, clean_text, html_to_text
from newsletter.compose.select import Options, Selection, select

FORMATS = ("html", "mjml", "txt", "eml")
WARN_AT = 0.9


@dataclass
class ComposeRequest:
    options: Options = field(default_factory=Options)
    number: str | None = None
    subject: str | None = None
    preheader: str | None = None
    intro: Path | None = None
    replace: str | None = None
    allow_clipping: bool = False
    out_dir: Path | None = None


@dataclass
class ComposeResult:
    issue: dict
    selection: Selection
    html_size: int
    budget: int
    paths: dict[str, Path]
    replaced: bool

    @property
    def warnings(self) -> list[str]:
        ratio = self.html_size / self.budget
        if ratio > 1:
            return [f"HTML part is {self.html_size:,} bytes, over the {self.budget:,}-byte budget: Gmail will clip it"]
        if ratio >= WARN_AT:
            return [f"HTML part uses {ratio:.0%} of the {self.budget:,}-byte clipping budget"]
        return []


def compose(db: sqlite_utils.Database, settings: Settings, req: ComposeRequest) -> ComposeResult:
    """Select, render once, check the size, save the draft and write out/<slug>/."""
    settings.require_config()
    missing = settings.impressum.missing()
    if missing:
        raise ConfigError(f"The Impressum is incomplete: {', '.join(missing)} missing - fill [impressum] in {settings.config_path}")
    previous = _replaceable(db, req.replace) if req.replace else None
    selection = select(db, settings, req.options)
    meta = _meta(settings, req, selection, previous)
    meta["slug"] = previous["slug"] if previous else _free_slug(db, meta["issue_date"])  # the web link names it
    rendered = render.render(settings, context(settings, meta, selection))
    template = MessageTemplate(settings, meta["subject"], rendered.html, rendered.text)
    size, budget = template.html_size(), settings.compose.size_budget
    if size > budget and not req.allow_clipping:
        raise RenderError(
            f"The HTML part is {size:,} bytes, over the {budget:,}-byte budget (Gmail clips the footer "
            "with the unsubscribe link) - lower [compose] max_articles, drop items with --exclude, "
            "or pass --allow-clipping"
        )
    row = {**meta, "mjml": rendered.mjml, "html": rendered.html, "text": rendered.text,
           "html_size": size, "status": "draft", "updated_at": clock.stamp()}
    out_dir = req.out_dir or settings.out_dir
    with store.transaction(db):
        issue_id = _save(db, row, previous, selection)
        issue = store.get_issue(db, issue_id)
        paths = write_outputs(settings, issue, out_dir, template)
    return ComposeResult(issue, selection, size, budget, paths, previous is not None)


def _replaceable(db, ref: str) -> dict:
    issue = store.get_issue(db, ref)
    if issue["status"] != "draft":
        raise StoreError(f"Issue {issue['slug']} is {issue['status']} and can no longer be changed - compose a new issue instead")
    return issue


def _meta(settings: Settings, req: ComposeRequest, sel: Selection, previous: dict | None) -> dict:
    prev = previous or {}
    number = req.number if req.number is not None else prev.get("number")
    number = clean_text(number) if number else None
    subject = clean_text(req.subject) if req.subject else prev.get("subject") or default_subject(settings, number, sel)
    preheader = clean_text(req.preheader) if req.preheader else prev.get("preheader") or default_preheader(sel)
    if not subject:
        raise InputError("The subject is empty - pass --subject")
    intro = read_intro(req.intro) if req.intro else prev.get("intro")
    return {
        "number": number, "subject": subject, "preheader": preheader, "intro": intro,
        "issue_date": sel.issue_date.isoformat(),
        "window_from": sel.window_from.isoformat(), "window_to": sel.window_to.isoformat(),
    }


def default_subject(settings: Settings, number: str | None, sel: Selection) -> str:
    name = settings.publication.name
    prefix = f"{name} {number}" if number else name
    return f"{prefix}: {sel.lead['title']}"


def default_preheader(sel: Selection, limit: int = 120) -> str:
    text = " ".join(html_to_text(sel.lead.get("teaser") or "").split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def read_intro(path: Path) -> str:
    """An editorial from a file: .html is sanitised, anything else is paragraphs of plain text."""
    try:
        raw = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"--intro {path} does not exist - give the path of a text or HTML file") from None
    except UnicodeDecodeError:
        raise InputError(f"--intro {path} is not UTF-8 - save it as UTF-8") from None
    except OSError as e:
        raise InputError(f"Cannot read --intro {path}: {e.strerror}") from None
    if Path(path).suffix.lower() in (".html", ".htm"):
        return clean_html(raw)
    paragraphs = [" ".join(p.split()) for p in raw.replace("\r\n", "\n").split("\n\n")]
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs if p)


def context(settings: Settings, meta: dict, sel: Selection) -> dict:
    """Everything the templates see. Stored HTML (teasers, editorial) is marked safe here."""
    def item(row: dict | None) -> dict | None:
        if row is None:
            return None
        return {**row, "teaser": render.safe_html(row.get("teaser")), "body": None}

    # The issue's page in the web archive (`newsletter archive`).
    web_url = f"{settings.publication.base_url.rstrip('/')}/archive/{meta['slug']}.html" if settings.archive.enabled else None
    issue = {**meta, "date": sel.issue_date, "intro": render.safe_html(meta.get("intro")), "web_url": web_url}
    return {
        "publication": settings.publication,
        "impressum": settings.impressum,
        "issue": issue,
        "lead": item(sel.lead),
        "articles": [item(a) for a in sel.articles],
        "jobs": sel.jobs,
        "ads": sel.ads,
        "reader": render.reader_context(settings.publication.base_url),
    }


def _save(db, row: dict, previous: dict | None, sel: Selection) -> int:
    if previous:
        issue_id = previous["id"]
        db["issues"].update(issue_id, row)
        db["issue_items"].delete_where("issue_id = ?", [issue_id])
    else:
        issue_id = db["issues"].insert({**row, "created_at": row["updated_at"]}).last_pk
    items = [("article", sel.lead, "lead", 0, 0)]
    items += [("article", a, "articles", i, 0) for i, a in enumerate(sel.articles, 1)]
    items += [("job", j, "jobs", i, int(j["is_new"])) for i, j in enumerate(sel.jobs, 1)]
    items += [("ad", a, "ads", i, 0) for i, a in enumerate(sel.ads, 1)]
    db["issue_items"].insert_all(
        {"issue_id": issue_id, "kind": kind, "item_id": it["id"], "section": section,
         "position": pos, "is_new": new}
        for kind, it, section, pos, new in items
    )
    return issue_id


def _free_slug(db, base: str) -> str:
    taken = {r["slug"] for r in db.query("select slug from issues where slug like ?", [base + "%"])}
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


# --- outputs -------------------------------------------------------------------------------

def personalise(text: str, recipient: Recipient, escape=None) -> str:
    """Fill the placeholders of a rendered part for one reader (previews and exports)."""
    escape = escape or (lambda v: v)
    values = {"salutation": recipient.salutation, "email": recipient.email, "token": recipient.token}
    for name, marker in render.PLACEHOLDERS.items():
        text = text.replace(marker, escape(values[name]))
    return text


def export(settings: Settings, issue: dict, fmt: str, recipient: Recipient = SAMPLE) -> bytes:
    """One output of a stored issue, personalised for `recipient` (the sample reader by default)."""
    if fmt == "mjml":
        return issue["mjml"].encode("utf-8")
    if fmt == "html":
        return personalise(issue["html"], recipient, html.escape).encode("utf-8")
    if fmt == "txt":
        return personalise(issue["text"], recipient).encode("utf-8")
    if fmt == "eml":
        template = MessageTemplate(settings, issue["subject"], issue["html"], issue["text"])
        return template.build(recipient)[0]
    raise InputError(f"Unknown format {fmt!r} - use one of {', '.join(FORMATS)}")


def write_outputs(settings: Settings, issue: dict, out_dir: Path, template: MessageTemplate | None = None) -> dict[str, Path]:
    """Write issue.mjml/.html/.txt/.eml into out_dir/<slug>/ (each via .tmp + rename)."""
    folder = Path(out_dir) / issue["slug"]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for fmt in FORMATS:
            data = template.build(SAMPLE)[0] if (fmt == "eml" and template) else export(settings, issue, fmt)
            paths[fmt] = _atomic_write(folder / f"issue.{fmt}", data)
    except OSError as e:
        raise InputError(f"Cannot write to {folder}: {e.strerror} - choose another folder with --out") from None
    return paths


def _atomic_write(path: Path, data: bytes) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def show(db: sqlite_utils.Database, ref: str) -> tuple[dict, list[dict]]:
    issue = store.get_issue(db, ref)
    return issue, store.issue_items(db, issue["id"])


def date_label(issue: dict) -> str:
    return dates.german_long(issue["issue_date"])
