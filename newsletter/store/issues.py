"""Issues and their frozen item lists: drafts, schedules, sends.

An issue comes out of the store as an `Issue` record: what it is (its columns) and what may be
done with it (`editable`, `sent`), and the one hash of its content that approvals, reviews and
checks compare.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

from newsletter.errors import NotFound
from newsletter.store.content import TABLES
from newsletter.store.db import Database, Row

STATUSES = ("draft", "scheduled", "sending", "sent")
EDITABLE = ("draft", "scheduled")   # not yet on its way: may be approved, held, scheduled, sent
CONTENT = ("subject", "preheader", "number", "issue_date", "html", "text")


@dataclass(frozen=True)
class Issue:
    """One issue as stored (the `issues` row)."""

    id: int
    slug: str
    issue_date: str
    status: str
    number: str | None = None
    subject: str = ""  # always written by compose
    preheader: str | None = None
    intro: str | None = None
    window_from: str = ""  # always written by compose
    window_to: str = ""  # always written by compose
    mjml: str = ""  # always written by compose
    html: str = ""  # always written by compose
    text: str = ""  # always written by compose
    html_size: int | None = None
    created_at: str | None = None
    updated_at: str | None = None
    scheduled_at: str | None = None
    sent_at: str | None = None
    composed_by: str | None = None
    approval: str | None = None
    approval_by: str | None = None
    approval_at: str | None = None
    approval_note: str | None = None
    reviewed_hash: str | None = None

    @classmethod
    def of(cls, row: Row) -> Issue:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})

    @property
    def editable(self) -> bool:
        """Not yet on its way: it may still be re-composed, approved, held, scheduled or sent."""
        return self.status in EDITABLE

    @property
    def sent(self) -> bool:
        return self.status == "sent"

    def content_hash(self) -> str:
        """What a reviewer approves and a check looks at: the rendered parts, subject,
        preheader, number and date. The one hash of an issue's content."""
        parts = [str(getattr(self, k) or "") for k in CONTENT]
        return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()

    def same_content(self, other: Issue | None) -> bool:
        return other is not None and self.content_hash() == other.content_hash()


def _issue(row: Row | None) -> Issue | None:
    return Issue.of(row) if row is not None else None


def get_issue(db: Database, ref: str | int) -> Issue:
    """An issue by id or slug ('latest': the newest issue)."""
    ref = str(ref)
    if ref == "latest":
        row = db.one("select * from issues order by issue_date desc, id desc limit 1")
    else:
        row = db.one("select * from issues where slug = ? or id = ?", [ref, int(ref) if ref.isdigit() else -1])
    if row is None:
        raise NotFound(f"No issue {ref!r} - see 'newsletter issues list' for ids and slugs")
    return Issue.of(row)


def issue_by_id(db: Database, issue_id: int) -> Issue:
    """The issue with this id, read again (after a change)."""
    return get_issue(db, issue_id)


def list_issues(db: Database, status: str | None = None) -> list[Row]:
    """Issues (without their rendered parts), newest first, with their number of items."""
    where, args = ("where i.status = ?", [status]) if status else ("", [])
    return db.query(
        "select i.id, i.slug, i.number, i.subject, i.issue_date, i.status, i.html_size, i.sent_at,"
        " (select count(*) from issue_items where issue_id = i.id) as items"
        f" from issues i {where} order by i.issue_date desc, i.id desc", args)


def latest_draft(db: Database) -> Issue | None:
    row = db.one("select id from issues where status = 'draft' order by issue_date desc, id desc limit 1")
    return get_issue(db, row["id"]) if row else None


def unsent_on(db: Database, issue_date: str) -> list[Issue]:
    """Issues for `issue_date` that have not gone out completely (draft, scheduled, sending)."""
    return [Issue.of(r) for r in db.query(
        "select * from issues where issue_date = ? and status in ('draft', 'scheduled', 'sending') order by id",
        [issue_date])]


def articles_sent_elsewhere(db: Database, issue_id: int) -> dict[int, str]:
    """The issue's articles that went out (or are going out) in another issue: id -> that slug."""
    return {r["item_id"]: r["slug"] for r in db.query(
        "select ii.item_id, min(i.slug) as slug from issue_items ii"
        " join issue_items other on other.kind = 'article' and other.item_id = ii.item_id and other.issue_id != ii.issue_id"
        " join issues i on i.id = other.issue_id and i.status in ('sent', 'sending')"
        " where ii.issue_id = ? and ii.kind = 'article' group by ii.item_id", [issue_id])}


def sent_issues(db: Database) -> list[Issue]:
    """The sent issues, newest first."""
    return [Issue.of(r) for r in db.query("select * from issues where status = 'sent' order by issue_date desc, id desc")]


def next_sent_after(db: Database, issue: Issue) -> Issue | None:
    """The issue sent after `issue` (None: it is the newest)."""
    return _issue(db.one("select * from issues where status = 'sent' and sent_at > ? order by sent_at, id limit 1",
                         [issue.sent_at]))


def last_sent_issue(db: Database) -> Issue | None:
    return _issue(db.one("select * from issues where status = 'sent' order by sent_at desc, id desc limit 1"))


def issue_items(db: Database, issue_id: int) -> list[Row]:
    """The frozen item list of an issue joined with the items, in layout order."""
    out = []
    order = "case section when 'lead' then 0 when 'articles' then 1 when 'jobs' then 2 else 3 end"
    for row in db.query(f"select * from issue_items where issue_id = ? order by {order}, position", [issue_id]):
        item = db.one(f"select * from {TABLES[row['kind']]} where id = ?", [row["item_id"]])
        out.append({**row, "item": item})
    return out


def item_ids_of(db: Database, issue_id: int, kind: str) -> set[int]:
    return {r["item_id"] for r in db.query(
        "select item_id from issue_items where issue_id = ? and kind = ?", [issue_id, kind])}


def taken_slugs(db: Database, base: str) -> set[str]:
    return {r["slug"] for r in db.query("select slug from issues where slug = ? or slug like ?", [base, base + "-%"])}


def save_draft(db: Database, row: Row, items: list[tuple[Any, ...]], replace_id: int | None = None) -> int:
    """Store a draft with its item list (kind, item id, section, position, is_new); replaces
    draft `replace_id` in place. Call inside a transaction."""
    if replace_id is not None:
        db.update("issues", replace_id, row)
        db.execute("delete from issue_items where issue_id = ?", [replace_id])
        issue_id = replace_id
    else:
        issue_id = db.insert("issues", {**row, "created_at": row["updated_at"]})
    db.executemany(
        "insert into issue_items (issue_id, kind, item_id, section, position, is_new) values (?, ?, ?, ?, ?, ?)",
        [(issue_id, *item) for item in items])
    return issue_id


def change_issue(db: Database, issue_id: int, changes: Row) -> None:
    db.update("issues", issue_id, changes)


def due_issues(db: Database, stamp: str) -> list[Issue]:
    """Scheduled issues whose time has come, plus scheduled sends that stopped half-way."""
    return [Issue.of(r) for r in db.query(
        "select * from issues where (status = 'scheduled' and scheduled_at <= ?)"
        " or (status = 'sending' and scheduled_at is not null) order by scheduled_at, id", [stamp])]


def sent_in_year(db: Database, year: int) -> int:
    """Issues sent (or being sent) whose issue date falls in `year`."""
    return db.count("select count(*) from issues where status in ('sent', 'sending') and issue_date like ?",
                    [f"{year:04d}-%"])
