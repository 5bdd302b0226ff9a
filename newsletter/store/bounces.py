"""Bounces and complaints as read from returned mail; soft bounces are counted from here."""

from __future__ import annotations

from datetime import datetime

from newsletter.store.db import Database, Row


def record_event(db: Database, row: Row) -> bool:
    """Store one bounce event; False when the same mail reported it for this address before."""
    marks = ", ".join("?" * len(row))
    return db.execute(f"insert or ignore into bounce_events ({', '.join(row)}) values ({marks})",
                      list(row.values())).rowcount == 1


def soft_events(db: Database, subscriber_id: int) -> list[tuple[datetime, str]]:
    """(when, which message) of each soft bounce of a subscriber; a bounce that names no message
    (and events from before m006) counts under its own mail's id."""
    return sorted((datetime.fromisoformat(r["at"]), r["message"]) for r in db.query(
        "select coalesce(received_at, created_at) as at, coalesce(original_message_id, message_id) as message"
        " from bounce_events where subscriber_id = ? and kind = 'soft'", [subscriber_id]))


def events_by_issue(db: Database, issue_id: int) -> dict[str, int]:
    """Hard and soft bounces and complaints about messages of one issue."""
    out = {"hard": 0, "soft": 0, "complaint": 0}
    for row in db.query(
            "select b.kind, count(distinct b.subscriber_id) as n from bounce_events b join deliveries d"
            " on d.message_id = b.original_message_id and d.subscriber_id = b.subscriber_id"
            " where d.issue_id = ? group by b.kind", [issue_id]):
        out[row["kind"]] = row["n"]
    return out


def events_of_issue(db: Database, issue_id: int) -> list[Row]:
    """The bounces and complaints about messages of one issue, with the reader's address and
    what the server said, newest first."""
    return db.query(
        "select b.email, b.kind, b.status, b.code, b.diagnostic, b.received_at, b.created_at from bounce_events b"
        " join deliveries d on d.message_id = b.original_message_id and d.subscriber_id = b.subscriber_id"
        " where d.issue_id = ? order by coalesce(b.received_at, b.created_at) desc, b.id desc", [issue_id])


def reasons_by_issue(db: Database, issue_id: int) -> list[Row]:
    """Bounces of one issue grouped by kind, code and status (no addresses): kind, code,
    status, one diagnostic as an example, and how many readers."""
    return db.query(
        "select b.kind, b.code, b.status, min(b.diagnostic) as diagnostic, count(distinct b.subscriber_id) as readers"
        " from bounce_events b join deliveries d on d.message_id = b.original_message_id"
        " and d.subscriber_id = b.subscriber_id where d.issue_id = ? and b.kind != 'complaint'"
        " group by b.kind, b.code, b.status order by readers desc, b.kind", [issue_id])
