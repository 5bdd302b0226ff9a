"""The schema: every change is a migration registered on `migrations` (sqlite-utils'
`Migrations`: each one runs in its own transaction together with its record in
`_sqlite_migrations`). Opening an older database applies whatever it lacks; `store.db` knows
the newest migration's name, so it can see without importing sqlite-utils that nothing is
pending.
"""

from __future__ import annotations

import base64
import re
import secrets
import sqlite3

import sqlite_utils
from sqlite_utils import Migrations

from newsletter import clock

migrations = Migrations("newsletter")


@migrations()
def m001_content(db: sqlite_utils.Database) -> None:
    common = {"id": int, "url": str, "title": str}
    stamps = {"created_at": str, "updated_at": str}
    db.table("articles").create(
        {**common, "teaser": str, "body": str, "author": str, "published": str, "category": str,
         "image": str, "image_alt": str, "image_caption": str, "image_credit": str, **stamps},
        pk="id", not_null={"url", "title"},
    )
    db.table("jobs").create(
        {**common, "employer": str, "location": str, "employment": str, "term": str,
         "deadline": str, "published": str, **stamps},
        pk="id", not_null={"url", "title"},
    )
    db.table("ads").create(
        {**common, "advertiser": str, "text": str, "image": str, "image_alt": str,
         "starts": str, "ends": str, **stamps},
        pk="id", not_null={"url", "title"},
    )
    for table in ("articles", "jobs", "ads"):
        db.table(table).create_index(["url"], unique=True)
    db.table("articles").create_index(["published"])
    db.table("jobs").create_index(["deadline"])


@migrations()
def m002_issues(db: sqlite_utils.Database) -> None:
    db.table("issues").create(
        {"id": int, "slug": str, "number": str, "subject": str, "preheader": str, "intro": str,
         "issue_date": str, "status": str, "window_from": str, "window_to": str,
         "mjml": str, "html": str, "text": str, "html_size": int,
         "created_at": str, "updated_at": str, "scheduled_at": str, "sent_at": str},
        pk="id", not_null={"slug", "status", "issue_date"}, defaults={"status": "draft"},
    )
    db.table("issues").create_index(["slug"], unique=True)
    db.table("issue_items").create(
        {"issue_id": int, "kind": str, "item_id": int, "section": str, "position": int, "is_new": int},
        pk=("issue_id", "kind", "item_id"),
        foreign_keys=[("issue_id", "issues", "id")],
    )
    db.table("issue_items").create_index(["kind", "item_id"])


@migrations()
def m003_subscribers_and_deliveries(db: sqlite_utils.Database) -> None:
    db.table("subscribers").create(
        {"id": int, "email": str, "name": str, "anrede": str, "titel": str, "vorname": str,
         "nachname": str, "status": str, "source": str, "created_at": str, "confirmed_at": str,
         "updated_at": str, "unsubscribed_at": str},
        pk="id", not_null={"email", "status"}, defaults={"status": "pending"},
    )
    db.execute("create unique index idx_subscribers_email on subscribers (email collate nocase)")
    db.table("subscribers").create_index(["status"])
    # One row per (issue, subscriber): the delivery log that makes a send resumable.
    db.table("deliveries").create(
        {"id": int, "issue_id": int, "subscriber_id": int, "email": str, "status": str,
         "attempts": int, "last_code": int, "last_reply": str, "message_id": str,
         "queued_at": str, "updated_at": str, "sent_at": str},
        pk="id", not_null={"issue_id", "subscriber_id", "status"},
        defaults={"status": "queued", "attempts": 0},
        foreign_keys=[("issue_id", "issues", "id"), ("subscriber_id", "subscribers", "id")],
    )
    db.table("deliveries").create_index(["issue_id", "subscriber_id"], unique=True)
    db.table("deliveries").create_index(["issue_id", "status"])


@migrations()
def m004_consent_and_bounces(db: sqlite_utils.Database) -> None:
    # Proof of consent: one row per sign-up or import, confirmed in place.
    db.table("consents").create(
        {"id": int, "subscriber_id": int, "signed_up_at": str, "source": str, "consent_text": str,
         "consent_version": str, "consent_hash": str, "ip": str, "user_agent": str,
         "confirm_sent_at": str, "confirmed_at": str, "confirm_ip": str},
        pk="id", not_null={"subscriber_id", "signed_up_at", "source"},
        foreign_keys=[("subscriber_id", "subscribers", "id")],
    )
    db.table("consents").create_index(["subscriber_id"])
    # Forgotten addresses: only a hash of the normalised address, so they are never mailed again.
    db.table("suppressions").create(
        {"email_hash": str, "reason": str, "created_at": str}, pk="email_hash",
    )
    # Bounces and complaints as read from DSN/ARF mails (soft bounces are counted from here).
    db.table("bounce_events").create(
        {"id": int, "subscriber_id": int, "email": str, "kind": str, "status": str,
         "diagnostic": str, "source": str, "message_id": str, "received_at": str, "created_at": str},
        pk="id", not_null={"kind", "created_at"},
    )
    db.table("bounce_events").create_index(["subscriber_id", "kind", "received_at"])
    db.table("bounce_events").create_index(["message_id", "email"], unique=True)


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
    db.table("bounce_events").add_column("original_message_id", str)
    db.table("bounce_events").create_index(["subscriber_id", "kind", "original_message_id"])


@migrations()
def m007_check_results(db: sqlite_utils.Database) -> None:
    # The last preflight report per issue, so a send reuses a check that already passed on the
    # same content with the same settings instead of running SpamAssassin and Chromium again.
    db.table("check_results").create(
        {"issue_id": int, "content_hash": str, "settings_hash": str, "passed": int, "report": str,
         "checked_at": str},
        pk="issue_id", foreign_keys=[("issue_id", "issues", "id")],
    )


@migrations()
def m008_links_and_clicks(db: sqlite_utils.Database) -> None:
    # Counted links (`[tracking] clicks`): one row per issue and target, kept when an issue's own
    # rows go, so a link in an old mail still leads where it did. No foreign key on purpose.
    db.table("links").create(
        {"id": int, "code": str, "issue_id": int, "issue_slug": str, "url": str, "kind": str,
         "item_id": int, "section": str, "label": str, "position": int, "created_at": str},
        pk="id", not_null={"code", "issue_id", "url"},
    )
    db.table("links").create_index(["code"], unique=True)
    db.table("links").create_index(["issue_id"])
    # Counts per link and hour (local time); nothing that names or singles out a reader.
    db.table("clicks").create(
        {"link_id": int, "hour": str, "human": int, "automated": int, "unique_human": int},
        pk=("link_id", "hour"), defaults={"human": 0, "automated": 0, "unique_human": 0},
    )
    # Estimated different readers per issue and hour who clicked anything.
    db.table("issue_clicks").create(
        {"issue_id": int, "hour": str, "unique_human": int},
        pk=("issue_id", "hour"), defaults={"unique_human": 0},
    )
    # Keys the product makes for itself (the link signing key); never a reader's data.
    db.table("keys").create({"name": str, "value": str, "created_at": str}, pk="name")
    db.table("keys").insert({"name": "links", "value": base64.b64encode(secrets.token_bytes(32)).decode(),
                       "created_at": clock.stamp()})


@migrations()
def m009_autopilot(db: sqlite_utils.Database) -> None:
    # Who composed an issue and whether it may go out (`approve`, `hold`, the review links).
    for column in ("composed_by", "approval", "approval_by", "approval_at", "approval_note", "reviewed_hash"):
        db.table("issues").add_column(column, str)
    # An issue's timeline: composed, review sent, approved or held, sent (`issues show`).
    db.table("issue_events").create(
        {"id": int, "issue_id": int, "at": str, "kind": str, "actor": str, "detail": str},
        pk="id", not_null={"issue_id", "at", "kind"},
    )
    db.table("issue_events").create_index(["issue_id", "at"])
    # Each step of the weekly routine, once per week: the row is claimed before the step runs,
    # so overlapping `run-due` calls never compose or send twice.
    db.table("autopilot_steps").create(
        {"slot": str, "step": str, "status": str, "issue_id": int, "started_at": str, "finished_at": str,
         "detail": str},
        pk=("slot", "step"), not_null={"status", "started_at"},
    )
    # Conditional requests per feed, and its last error (reported once, not every five minutes).
    db.table("feed_state").create(
        {"url": str, "etag": str, "last_modified": str, "checked_at": str, "ok_at": str, "error": str},
        pk="url",
    )


@migrations()
def m010_claims(db: sqlite_utils.Database) -> None:
    # Mails to people other than the readers (review copies, notices, summaries): claimed before
    # they go out and recorded after, so overlapping runs or a retry never send one twice.
    db.table("mail_claims").create(
        {"key": str, "recipient": str, "status": str, "claimed_at": str, "done_at": str, "reply": str},
        pk="key", not_null={"recipient", "status", "claimed_at"},
    )
    # Links that act once (the review mail's "Freigeben" / "Zurückstellen"): a digest of each
    # used token, so a replay changes nothing.
    db.table("used_links").create(
        {"digest": str, "issue_id": int, "action": str, "used_by": str, "used_at": str},
        pk="digest", not_null={"used_at"},
    )


@migrations()
def m011_click_reasons(db: sqlite_utils.Database) -> None:
    # Why a request did not count as a reader's click: a client's repeats of one link, and the
    # automated ones by reason (HEAD, a scanner's user agent, a burst), so reports can say so.
    for column in ("repeated", "auto_head", "auto_scanner", "auto_burst"):
        db.table("clicks").add_column(column, int, not_null_default=0)


@migrations()
def m012_bounce_code(db: sqlite_utils.Database) -> None:
    # The server's basic reply code of each bounce (550, 452), beside its RFC 3463 status and
    # diagnostic, so `status` and `report` can say why a reader bounced.
    db.table("bounce_events").add_column("code", int)
