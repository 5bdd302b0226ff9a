"""Subscribers, their statuses and the hashed suppression list of erased addresses.

A status changes in one place only, `set_status`, and only along `TRANSITIONS`: whatever
asks for the change (a confirmation, an unsubscribe link, a bounce, a complaint, a refused
recipient at send time, an import), the same rules apply.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from newsletter.store.db import Database, Row

STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
SUPPRESSED = ("unsubscribed", "bounced", "complained")
NAME_FIELDS = ("name", "anrede", "titel", "vorname", "nachname")

# The statuses a subscriber may come from, per status they may go to. Once suppressed
# (unsubscribed, bounced, complained), never active or pending again: a complaint still
# outranks a bounce, and an unsubscribe keeps its own record whatever comes back later.
TRANSITIONS = {
    "active": ("pending",),
    "unsubscribed": ("pending", "active"),
    "bounced": ("pending", "active"),
    "complained": ("pending", "active", "bounced"),
}
# What a change to a status also records, unless the caller gives it.
_STAMPED = {"active": "confirmed_at", "unsubscribed": "unsubscribed_at"}


def set_status(db: Database, subscriber_id: int, status: str, stamp: str, **extra: Any) -> bool:
    """Move a subscriber to `status` if TRANSITIONS allow it from where they are; False if not
    (unknown subscriber, or a move the rules forbid, e.g. bounced -> active)."""
    allowed = TRANSITIONS[status]
    changes = {"status": status, "updated_at": stamp, **extra}
    if status in _STAMPED:
        changes.setdefault(_STAMPED[status], stamp)
    assignments = ", ".join(f"{key} = ?" for key in changes)
    marks = ", ".join("?" * len(allowed))
    return db.execute(f"update subscribers set {assignments} where id = ? and status in ({marks})",
                      [*changes.values(), subscriber_id, *allowed]).rowcount == 1


def find_subscriber(db: Database, address: str) -> Row | None:
    """The subscriber with this address, in any case."""
    # `collate nocase` in the query is what lets SQLite use idx_subscribers_email.
    return db.one("select * from subscribers where email = ? collate nocase", [address])


def get_subscriber(db: Database, subscriber_id: int | None) -> Row | None:
    if subscriber_id is None:
        return None
    return db.one("select * from subscribers where id = ?", [subscriber_id])


def add_subscriber(db: Database, row: Row) -> int:
    return db.insert("subscribers", row)


def change_subscriber(db: Database, subscriber_id: int, changes: Row) -> None:
    """Names and timestamps; a status goes through `set_status`."""
    if "status" in changes:
        raise ValueError("statuses change through set_status")
    db.update("subscribers", subscriber_id, changes)


def list_subscribers(db: Database, status: str | None = None) -> list[Row]:
    where, args = ("where status = ?", [status]) if status else ("", [])
    return db.query(f"select * from subscribers {where} order by email collate nocase", args)


def iter_subscribers(db: Database, batch: int = 1000) -> Iterator[Row]:
    """Every subscriber by address, read `batch` rows at a time (constant memory)."""
    last = ""
    while True:
        rows = db.query("select * from subscribers where email collate nocase > ? order by email collate nocase"
                        " limit ?", [last, batch])
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1]["email"]


def active_subscribers(db: Database, batch: int = 1000) -> Iterator[Row]:
    """Active subscribers (id, email, name fields) by id, read `batch` rows at a time."""
    columns = ", ".join(("id", "email", *NAME_FIELDS))
    last = 0
    while True:
        rows = db.query(f"select {columns} from subscribers where status = 'active' and id > ? order by id limit ?",
                        [last, batch])
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1]["id"]


def count_by_status(db: Database) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for row in db.query("select status, count(*) as n from subscribers group by status"):
        counts[row["status"]] = row["n"]
    return counts


def was_mailed(db: Database, subscriber_id: int) -> bool:
    """Whether the delivery log has any message for this subscriber."""
    return db.one("select 1 from deliveries where subscriber_id = ? limit 1", [subscriber_id]) is not None


def delete_subscriber(db: Database, subscriber_id: int, address: str) -> dict[str, int]:
    """Delete a subscriber with everything that names them; counts per table."""
    counts = {
        "consents": db.execute("delete from consents where subscriber_id = ?", [subscriber_id]).rowcount,
        "deliveries": db.execute("delete from deliveries where subscriber_id = ?", [subscriber_id]).rowcount,
        "bounce_events": db.execute("delete from bounce_events where subscriber_id = ? or email = ? collate nocase",
                                    [subscriber_id, address]).rowcount,
    }
    db.execute("delete from subscribers where id = ?", [subscriber_id])
    return counts


def pending_since_before(db: Database, cutoff: str) -> list[Row]:
    """Pending subscribers whose latest sign-up is older than `cutoff`."""
    return db.query(
        "select id, email from subscribers s where status = 'pending' and coalesce("
        "(select max(signed_up_at) from consents where subscriber_id = s.id), created_at) < ?", [cutoff])


# --- the suppression list of erased addresses ---------------------------------------------------

def hash_is_erased(db: Database, email_hash: str) -> bool:
    return db.one("select 1 from suppressions where email_hash = ?", [email_hash]) is not None


def suppress(db: Database, email_hash: str, reason: str, stamp: str) -> None:
    db.execute("insert or ignore into suppressions (email_hash, reason, created_at) values (?, ?, ?)",
               [email_hash, reason, stamp])


class FirstSeen:
    """Which row of an import first named an address, kept in a temporary table so that a
    file of a million addresses is checked for repeats in constant memory."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __enter__(self) -> FirstSeen:
        self.db.execute("create temp table if not exists import_seen (email text primary key collate nocase, row integer)")
        self.db.execute("delete from import_seen")
        return self

    def first_row(self, address: str, row: int) -> int | None:
        """None the first time `address` comes up (and remember `row`), else that first row."""
        if self.db.execute("insert or ignore into import_seen (email, row) values (?, ?)", [address, row]).rowcount:
            return None
        return self.db.number("select row from import_seen where email = ?", [address])

    def __exit__(self, *exc: object) -> None:
        self.db.execute("drop table if exists temp.import_seen")


def unsubscribed_between(db: Database, issue_id: int, start: str, end: str | None) -> int:
    """Readers who got issue `issue_id` and unsubscribed from `start` until `end` (None: until
    now): the unsubscribes that followed that issue."""
    return db.count(
        "select count(*) from subscribers s join deliveries d on d.subscriber_id = s.id"
        " where d.issue_id = ? and d.status = 'sent' and s.status = 'unsubscribed'"
        " and s.unsubscribed_at >= ? and (? is null or s.unsubscribed_at < ?)", [issue_id, start, end, end])
