"""Compose an issue: select → render once → check the size → save the draft → write the outputs.

The draft and its files are written together: if the outputs cannot be written, the draft is
not saved either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from newsletter import clock, files
from newsletter.compose.issue import ComposeRequest, prepare, save
from newsletter.compose.select import Selection
from newsletter.config import Settings
from newsletter.errors import InputError, RenderError
from newsletter.mail.export import FORMATS, export, message
from newsletter.mail.message import IssueMessage
from newsletter.store import Database, transaction
from newsletter.store.issues import Issue, get_issue
from newsletter.store.timeline import add_event, set_approval, set_composer
from newsletter.workflow.approval import editor

WARN_AT = 0.9


@dataclass
class ComposeResult:
    issue: Issue
    selection: Selection
    html_size: int
    budget: int
    paths: dict[str, Path]
    replaced: bool
    notes: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        ratio = self.html_size / self.budget
        if ratio > 1:
            return [f"HTML part is {self.html_size:,} bytes, over the {self.budget:,}-byte budget: Gmail will clip it"]
        if ratio >= WARN_AT:
            return [f"HTML part uses {ratio:.0%} of the {self.budget:,}-byte clipping budget"]
        return []


def compose_issue(db: Database, settings: Settings, req: ComposeRequest) -> ComposeResult:
    """Select, render once, check the size, save the draft and write out/<slug>/."""
    draft = prepare(db, settings, req)
    built = message(settings, draft.issue)  # encoded once: measured here, written below
    size = built.html_size()
    budget = settings.compose.size_budget
    if size > budget and not req.allow_clipping:
        raise RenderError(
            f"The HTML part is {size:,} bytes, over the {budget:,}-byte budget (Gmail clips the footer "
            "with the unsubscribe link) - lower [compose] max_articles, drop items with --exclude, "
            "or pass --allow-clipping"
        )
    with transaction(db):
        issue = save(db, draft, size)
        _record(db, draft.previous, issue, req.by or editor(), len(draft.items))
        issue = get_issue(db, issue.id)
        paths = write_outputs(settings, issue, req.out_dir or settings.out_dir, built)
    return ComposeResult(issue, draft.selection, size, budget, paths, draft.previous is not None, draft.notes)


def _record(db: Database, previous: Issue | None, issue: Issue, by: str, items: int) -> None:
    """The timeline entry and the composer; a re-compose that changed the issue revokes its
    approval (a re-compose that changed nothing, as the preview's live reload often does, is no event)."""
    if previous is not None and previous.same_content(issue):
        return
    stamp = clock.stamp()
    set_composer(db, issue.id, by)
    add_event(db, issue.id, "recomposed" if previous else "composed", stamp, by, f"{items} items")
    if previous is not None and previous.approval == "approved":
        set_approval(db, issue.id, None, None, None)
        add_event(db, issue.id, "approval revoked", stamp, by, "re-composed after approval")


def write_outputs(settings: Settings, issue: Issue, out_dir: Path, built: IssueMessage | None = None) -> dict[str, Path]:
    """Write issue.mjml/.html/.txt/.eml into out_dir/<slug>/, each file whole or not at all."""
    folder = Path(out_dir) / issue.slug
    built = built or message(settings, issue)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return {fmt: files.atomic_write(folder / f"issue.{fmt}", export(settings, issue, fmt, built=built))
                for fmt in FORMATS}
    except OSError as e:
        raise InputError(f"Cannot write to {folder}: {e.strerror} - choose another folder with --out") from None
