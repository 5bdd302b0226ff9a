"""The weekly routine's records: its steps (claimed once per week), the issues' timeline and
approval, and the state of each feed.

    autopilot_steps  (slot, step): compose / review / send / summary / notice, claimed before it runs
    issue_events     an issue's timeline
    issues.approval  'approved' | 'held' | null, with who and when
    feed_state       ETag, Last-Modified and the last error per feed
"""

from __future__ import annotations

from datetime import datetime, timedelta

from newsletter.store.db import Database, transaction

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


def step_of(db: Database, slot: str, step: str) -> dict | None:
    return db.one("select * from autopilot_steps where slot = ? and step = ?", [slot, step])


def first_step(db: Database) -> str | None:
    """When the routine first ran here (None: never)."""
    return db.value("select min(started_at) from autopilot_steps")


# --- the timeline -------------------------------------------------------------------------------

def add_event(db: Database, issue_id: int, kind: str, stamp: str, actor: str = "", detail: str = "") -> None:
    db.execute("insert into issue_events (issue_id, at, kind, actor, detail) values (?, ?, ?, ?, ?)",
               [issue_id, stamp, kind, actor, detail])


def events(db: Database, issue_id: int) -> list[dict]:
    return db.query("select * from issue_events where issue_id = ? order by at, id", [issue_id])


# --- approval -----------------------------------------------------------------------------------

def set_approval(db: Database, issue_id: int, state: str | None, by: str | None, stamp: str | None,
                 note: str | None = None) -> None:
    db.execute("update issues set approval = ?, approval_by = ?, approval_at = ?, approval_note = ? where id = ?",
               [state, by, stamp, note, issue_id])


def use_link(db: Database, digest: str, issue_id: int, action: str, by: str, stamp: str) -> bool:
    """Use up a link that acts once (inside the caller's transaction); False when it was used."""
    return db.execute("insert or ignore into used_links (digest, issue_id, action, used_by, used_at)"
                      " values (?, ?, ?, ?, ?)", [digest, issue_id, action, by, stamp]).rowcount == 1


def link_used(db: Database, digest: str) -> dict | None:
    return db.one("select * from used_links where digest = ?", [digest])


def set_composer(db: Database, issue_id: int, by: str) -> None:
    db.execute("update issues set composed_by = ? where id = ?", [by, issue_id])


def set_reviewed(db: Database, issue_id: int, content_hash: str) -> None:
    db.execute("update issues set reviewed_hash = ? where id = ?", [content_hash, issue_id])


def sent_in_year(db: Database, year: int) -> int:
    """Issues sent (or being sent) whose issue date falls in `year`."""
    return db.value("select count(*) from issues where status in ('sent', 'sending') and issue_date like ?",
                    [f"{year:04d}-%"])


# --- feeds ----------------------------------------------------------------------------------------

def feed_state(db: Database, url: str) -> dict:
    return db.one("select * from feed_state where url = ?", [url]) or {"url": url}


def save_feed_state(db: Database, url: str, **values) -> None:
    current = feed_state(db, url)
    row = {**current, **values, "url": url}
    db.execute("insert or replace into feed_state (url, etag, last_modified, checked_at, ok_at, error)"
               " values (:url, :etag, :last_modified, :checked_at, :ok_at, :error)",
               {key: row.get(key) for key in ("url", "etag", "last_modified", "checked_at", "ok_at", "error")})
