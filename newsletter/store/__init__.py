"""The SQLite store: opening, migrations and the named queries the other stages use.

WAL mode and a busy timeout let a cron run and an editor work on the same file at once.
Every schema change is a new function registered on `migrations`; opening an old database
applies whatever it lacks.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils
from sqlite_utils import Migrations

from newsletter.errors import NotFound, StoreError

BUSY_TIMEOUT_MS = 5000
KINDS = ("article", "job", "ad")
TABLES = {"article": "articles", "job": "jobs", "ad": "ads"}

migrations = Migrations("newsletter")


@migrations()
def m001_content(db: sqlite_utils.Database) -> None:
    common = {"id": int, "url": str, "title": str}
    stamps = {"created_at": str, "updated_at": str}
    db["articles"].create(
        {**common, "teaser": str, "body": str, "author": str, "published": str, "category": str,
         "image": str, "image_alt": str, "image_caption": str, "image_credit": str, **stamps},
        pk="id", not_null={"url", "title"},
    )
    db["jobs"].create(
        {**common, "employer": str, "location": str, "employment": str, "term": str,
         "deadline": str, "published": str, **stamps},
        pk="id", not_null={"url", "title"},
    )
    db["ads"].create(
        {**common, "advertiser": str, "text": str, "image": str, "image_alt": str,
         "starts": str, "ends": str, **stamps},
        pk="id", not_null={"url", "title"},
    )
    for table in ("articles", "jobs", "ads"):
        db[table].create_index(["url"], unique=True)
    db["articles"].create_index(["published"])
    db["jobs"].create_index(["deadline"])


@migrations()
def m002_issues(db: sqlite_utils.Database) -> None:
    db["issues"].create(
        {"id": int, "slug": str, "number": str, "subject": str, "preheader": str, "intro": str,
         "issue_date": str, "status": str, "window_from": str, "window_to": str,
         "mjml": str, "html": str, "text": str, "html_size": int,
         "created_at": str, "updated_at": str, "scheduled_at": str, "sent_at": str},
        pk="id", not_null={"slug", "status", "issue_date"}, defaults={"status": "draft"},
    )
    db["issues"].create_index(["slug"], unique=True)
    db["issue_items"].create(
        {"issue_id": int, "kind": str, "item_id": int, "section": str, "position": int, "is_new": int},
        pk=("issue_id", "kind", "item_id"),
        foreign_keys=[("issue_id", "issues", "id")],
    )
    db["issue_items"].create_index(["kind", "item_id"])


@migrations()
def m003_subscribers_and_deliveries(db: sqlite_utils.Database) -> None:
    db["subscribers"].create(
        {"id": int, "email": str, "name": str, "anrede": str, "titel": str, "vorname": str,
         "nachname": str, "status": str, "source": str, "created_at": str, "confirmed_at": str,
         "updated_at": str, "unsubscribed_at": str},
        pk="id", not_null={"email", "status"}, defaults={"status": "pending"},
    )
    db.execute("create unique index idx_subscribers_email on subscribers (email collate nocase)")
    db["subscribers"].create_index(["status"])
    # One row per (issue, subscriber): the delivery log that makes a send resumable.
    db["deliveries"].create(
        {"id": int, "issue_id": int, "subscriber_id": int, "email": str, "status": str,
         "attempts": int, "last_code": int, "last_reply": str, "message_id": str,
         "queued_at": str, "updated_at": str, "sent_at": str},
        pk="id", not_null={"issue_id", "subscriber_id", "status"},
        defaults={"status": "queued", "attempts": 0},
        foreign_keys=[("issue_id", "issues", "id"), ("subscriber_id", "subscribers", "id")],
    )
    db["deliveries"].create_index(["issue_id", "subscriber_id"], unique=True)
    db["deliveries"].create_index(["issue_id", "status"])


@migrations()
def m004_consent_and_bounces(db: sqlite_utils.Database) -> None:
    # Proof of consent: one row per sign-up or import, confirmed in place.
    db["consents"].create(
        {"id": int, "subscriber_id": int, "signed_up_at": str, "source": str, "consent_text": str,
         "consent_version": str, "consent_hash": str, "ip": str, "user_agent": str,
         "confirm_sent_at": str, "confirmed_at": str, "confirm_ip": str},
        pk="id", not_null={"subscriber_id", "signed_up_at", "source"},
        foreign_keys=[("subscriber_id", "subscribers", "id")],
    )
    db["consents"].create_index(["subscriber_id"])
    # Forgotten addresses: only a hash of the normalised address, so they are never mailed again.
    db["suppressions"].create(
        {"email_hash": str, "reason": str, "created_at": str}, pk="email_hash",
    )
    # Bounces and complaints as read from DSN/ARF mails (soft bounces are counted from here).
    db["bounce_events"].create(
        {"id": int, "subscriber_id": int, "email": str, "kind": str, "status": str,
         "diagnostic": str, "source": str, "message_id": str, "received_at": str, "created_at": str},
        pk="id", not_null={"kind", "created_at"},
    )
    db["bounce_events"].create_index(["subscriber_id", "kind", "received_at"])
    db["bounce_events"].create_index(["message_id", "email"], unique=True)


@migrations(transactional=False)
def m005_subscriber_ids_never_reused(db: sqlite_utils.Database) -> None:
    """Unsubscribe links carry the subscriber id. SQLite hands out the highest id again after a
    delete (`subscribers forget`, `remove`, `purge-pending`), so an old link could unsubscribe a
    newer reader; AUTOINCREMENT never reuses an id. SQLite cannot add it in place: the table is
    rebuilt (foreign keys off, one transaction, then checked)."""
    sql = db.execute("select sql from sqlite_master where name = 'subscribers'").fetchone()[0]
    if "AUTOINCREMENT" in sql.upper():
        return
    new_sql, renamed = re.subn(r'^CREATE TABLE ["\[]?subscribers["\]]?', "CREATE TABLE subscribers_new", sql, count=1)
    new_sql, keyed = re.subn(r'(["\[]?id["\]]? INTEGER PRIMARY KEY)', r"\1 AUTOINCREMENT", new_sql, count=1)
    if not (renamed and keyed):
        raise sqlite3.DatabaseError(f"unexpected schema of subscribers: {sql}")
    indexes = [r[0] for r in db.execute(
        "select sql from sqlite_master where type = 'index' and tbl_name = 'subscribers' and sql is not null")]
    conn = db.conn
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(new_sql)
            conn.execute("insert into subscribers_new select * from subscribers")
            conn.execute("drop table subscribers")
            conn.execute("alter table subscribers_new rename to subscribers")
            for index in indexes:
                conn.execute(index)
            if conn.execute("PRAGMA foreign_key_check").fetchall():
                raise sqlite3.IntegrityError("foreign keys broken by rebuilding subscribers")
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
    finally:
        conn.execute("PRAGMA foreign_keys = ON")


@migrations()
def m006_bounce_original_message(db: sqlite_utils.Database) -> None:
    # Soft bounces count once per message that bounced: an MTA warns about one message daily.
    db["bounce_events"].add_column("original_message_id", str)
    db["bounce_events"].create_index(["subscriber_id", "kind", "original_message_id"])


def open_db(path: Path, *, create: bool = True) -> sqlite_utils.Database:
    """Open (and upgrade) the database at `path`."""
    path = Path(path)
    if not path.exists() and not create:
        raise StoreError(f"No database at {path} - run 'newsletter init' or set NEWSLETTER_DB")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
        db = sqlite_utils.Database(conn)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys = ON")
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode = WAL")
        migrations.apply(db)
    except sqlite3.DatabaseError as e:
        raise translate(e, path) from None
    except OSError as e:
        raise StoreError(f"Cannot open database {path}: {e.strerror} - check the path and its permissions") from None
    return db


def translate(e: sqlite3.Error, path: Path | str = "the database") -> StoreError:
    """Turn an sqlite3 error into a message that says what to do."""
    text = str(e)
    if "locked" in text or "busy" in text:
        return StoreError(
            f"{path} is locked by another process (waited {BUSY_TIMEOUT_MS // 1000} s) - "
            "wait until it has finished and run the command again"
        )
    if "file is not a database" in text or "malformed" in text:
        return StoreError(f"{path} is not a newsletter database ({text}) - check NEWSLETTER_DB / --db")
    if "readonly" in text or "unable to open" in text:
        return StoreError(f"Cannot write {path} ({text}) - check the file's permissions")
    return StoreError(f"Database error on {path}: {text}")


@contextmanager
def transaction(db: sqlite_utils.Database):
    """One write transaction; rolled back whole on any exception."""
    conn = db.conn
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        raise translate(e) from None
    try:
        yield db
    except BaseException:
        conn.rollback()
        raise
    else:
        conn.commit()


# --- named queries -------------------------------------------------------------------------

def find_item(db: sqlite_utils.Database, kind: str, ref: str) -> dict:
    """An article/job/ad by id or URL."""
    table = TABLES[kind]
    column = "id" if ref.isdigit() else "url"
    rows = list(db[table].rows_where(f"{column} = ?", [int(ref) if ref.isdigit() else ref]))
    if not rows:
        raise NotFound(f"No {kind} with {column} {ref} - list them with 'newsletter {table} list'")
    return rows[0]


def list_items(db: sqlite_utils.Database, kind: str, since: str | None = None,
               until: str | None = None, category: str | None = None) -> list[dict]:
    """Items of one kind, newest first, filtered by their publication (ads: start) date."""
    table = TABLES[kind]
    date_col = "starts" if kind == "ad" else "published"
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
    return list(db[table].rows_where(" and ".join(where) or None, args,
                                     order_by=f"{date_col} desc, id desc"))


def get_issue(db: sqlite_utils.Database, ref: str | int) -> dict:
    """An issue by id or slug."""
    ref = str(ref)
    rows = list(db["issues"].rows_where("slug = ? or id = ?", [ref, int(ref) if ref.isdigit() else -1]))
    if not rows:
        raise NotFound(f"No issue {ref!r} - see 'newsletter issues list' for ids and slugs")
    return rows[0]


def list_issues(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query(
        "select i.id, i.slug, i.number, i.subject, i.issue_date, i.status, i.html_size, i.sent_at,"
        " (select count(*) from issue_items where issue_id = i.id) as items"
        " from issues i order by i.issue_date desc, i.id desc"
    ))


def issue_items(db: sqlite_utils.Database, issue_id: int) -> list[dict]:
    """The frozen item list of an issue joined with the items, in layout order."""
    out = []
    for row in db.query(
        "select * from issue_items where issue_id = ? order by section, position", [issue_id]
    ):
        item = db[TABLES[row["kind"]]].get(row["item_id"])
        out.append({**row, "item": item})
    return out


def last_sent_issue(db: sqlite_utils.Database) -> dict | None:
    rows = list(db["issues"].rows_where("status = 'sent'", order_by="sent_at desc, id desc", limit=1))
    return rows[0] if rows else None


def previous_issue(db: sqlite_utils.Database, before_id: int | None = None) -> dict | None:
    """The most recent issue other than `before_id` that was sent (else the latest other issue)."""
    sent = last_sent_issue(db)
    if sent and sent["id"] != before_id:
        return sent
    rows = list(db["issues"].rows_where("id != ?", [before_id or -1], order_by="id desc", limit=1))
    return rows[0] if rows else None


def used_in_sent(db: sqlite_utils.Database, kind: str) -> set[int]:
    """Ids of items of `kind` that already went out in a sent issue."""
    return {r[0] for r in db.execute(
        "select item_id from issue_items join issues on issues.id = issue_items.issue_id"
        " where issues.status = 'sent' and kind = ?", [kind]
    ).fetchall()}


def item_ids_of(db: sqlite_utils.Database, issue_id: int, kind: str) -> set[int]:
    return {r[0] for r in db.execute(
        "select item_id from issue_items where issue_id = ? and kind = ?", [issue_id, kind]
    ).fetchall()}
