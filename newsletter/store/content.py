"""Articles, job ads and ads: the content an issue is made of."""

from __future__ import annotations

from newsletter.errors import NotFound
from newsletter.store.db import Database, Row

KINDS = ("article", "job", "ad")
TABLES = {"article": "articles", "job": "jobs", "ad": "ads"}
_DATE_COLUMN = {"article": "published", "job": "published", "ad": "starts"}


def find_item(db: Database, kind: str, ref: str) -> Row:
    """An article/job/ad by id or URL."""
    table = TABLES[kind]
    column = "id" if ref.isdigit() else "url"
    row = db.one(f"select * from {table} where {column} = ?", [int(ref) if ref.isdigit() else ref])
    if row is None:
        raise NotFound(f"No {kind} with {column} {ref} - list them with 'newsletter {table} list'")
    return row


def get_item(db: Database, kind: str, item_id: int) -> Row | None:
    return db.one(f"select * from {TABLES[kind]} where id = ?", [item_id])


def item_by_url(db: Database, kind: str, url: str) -> Row | None:
    return db.one(f"select * from {TABLES[kind]} where url = ?", [url])


def add_item(db: Database, kind: str, row: Row) -> int:
    return db.insert(TABLES[kind], row)


def change_item(db: Database, kind: str, item_id: int, changes: Row) -> None:
    db.update(TABLES[kind], item_id, changes)


def list_items(db: Database, kind: str, since: str | None = None, until: str | None = None,
               category: str | None = None) -> list[Row]:
    """Items of one kind, newest first, filtered by their publication (ads: start) date."""
    date_col = _DATE_COLUMN[kind]
    where, args = [], []
    if since:
        where.append(f"substr({date_col}, 1, 10) >= ?")
        args.append(since)
    if until:
        where.append(f"substr({date_col}, 1, 10) <= ?")
        args.append(until)
    if category:
        where.append("category = ?")
        args.append(category)
    clause = f" where {' and '.join(where)}" if where else ""
    return db.query(f"select * from {TABLES[kind]}{clause} order by {date_col} desc, id desc", args)


def used_in_sent(db: Database, kind: str) -> set[int]:
    """Ids of items of `kind` that already went out in an issue (sent, or being sent: some
    readers have it)."""
    return {r["item_id"] for r in db.query(
        "select item_id from issue_items join issues on issues.id = issue_items.issue_id"
        " where issues.status in ('sent', 'sending') and kind = ?", [kind])}


def open_jobs(db: Database, day: str, oldest: str, limit: int) -> list[Row]:
    """Job ads open on `day`: deadline on or after it; without deadline, published since `oldest`."""
    return db.query(
        "select * from jobs where (published is null or substr(published, 1, 10) <= :day) and"
        " ((deadline is not null and deadline >= :day) or"
        "  (deadline is null and substr(published, 1, 10) >= :oldest))"
        " order by published desc, id desc limit :limit",
        {"day": day, "oldest": oldest, "limit": limit},
    )


def running_ads(db: Database, day: str, limit: int) -> list[Row]:
    """Ads whose booking covers `day`."""
    return db.query(
        "select * from ads where (starts is null or starts <= :day) and (ends is null or ends >= :day)"
        " order by starts, id limit :limit",
        {"day": day, "limit": limit},
    )


def content_version(db: Database) -> tuple[tuple[str, int, str | None], ...]:
    """A fingerprint of what composing and previewing an issue read: the content tables, the
    issues and the subscribers (their counts and last changes). Click counts, the delivery log
    and the other bookkeeping tables do not change it."""
    parts = []
    for table in ("articles", "jobs", "ads", "issues", "subscribers"):
        row = db.one(f"select count(*) as n, max(updated_at) as last from {table}") or {}
        parts.append((table, row.get("n", 0), row.get("last")))
    return tuple(parts)
