"""The weekly routine's steps, each claimed once per week before it runs.

    autopilot_steps  (slot, step): compose / review <hash> / send / summary / send-missed
"""

from __future__ import annotations

from datetime import datetime, timedelta

from newsletter.store.db import Database, Row, transaction

STALE = timedelta(minutes=15)   # a claimed step whose process died may be taken over after this


def claim(db: Database, slot: str, step: str, stamp: str) -> bool:
    """Take step `step` of week `slot` for this process: False when another run has it or it ran.
    A claim left 'started' for longer than STALE by a process that died is taken over."""
    with transaction(db):
        row = db.one("select status, started_at from autopilot_steps where slot = ? and step = ?", [slot, step])
        if row is None:
            db.execute("insert into autopilot_steps (slot, step, status, started_at) values (?, ?, 'started', ?)",
                       [slot, step, stamp])
            return True
        if row["status"] == "started" and datetime.fromisoformat(row["started_at"]) + STALE <= datetime.fromisoformat(stamp):
            db.execute("update autopilot_steps set started_at = ? where slot = ? and step = ?", [stamp, slot, step])
            return True
        return False


def retake_failed(db: Database, slot: str, step: str, stamp: str) -> bool:
    """Take a step that failed (to try again); False when it did not fail or another run took it."""
    with transaction(db):
        return db.execute("update autopilot_steps set status = 'started', started_at = ? where slot = ? and step = ?"
                          " and status = 'failed'", [stamp, slot, step]).rowcount == 1


def finish(db: Database, slot: str, step: str, status: str, stamp: str, issue_id: int | None = None,
           detail: str = "") -> None:
    db.execute("update autopilot_steps set status = ?, finished_at = ?, issue_id = coalesce(?, issue_id),"
               " detail = ? where slot = ? and step = ?", [status, stamp, issue_id, detail, slot, step])


def step_of(db: Database, slot: str, step: str) -> Row | None:
    return db.one("select * from autopilot_steps where slot = ? and step = ?", [slot, step])


def first_step(db: Database) -> str | None:
    """When the routine first ran here (None: never)."""
    return db.text("select min(started_at) from autopilot_steps")
