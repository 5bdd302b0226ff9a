"""An issue's timeline and approval: what happened to it, by whom, and whether it may go out.

    issue_events     composed, checked, review sent, approved, held, sent ... (`issues show`)
    issues.approval  'approved' | 'held' | null, with who and when, and who composed it
    used_links       the review links that have acted (each acts once)
"""

from __future__ import annotations

from newsletter.store.db import Database, Row


def add_event(db: Database, issue_id: int, kind: str, stamp: str, actor: str = "", detail: str = "") -> None:
    db.execute("insert into issue_events (issue_id, at, kind, actor, detail) values (?, ?, ?, ?, ?)",
               [issue_id, stamp, kind, actor, detail])


def events(db: Database, issue_id: int) -> list[Row]:
    return db.query("select * from issue_events where issue_id = ? order by at, id", [issue_id])


def set_approval(db: Database, issue_id: int, state: str | None, by: str | None, stamp: str | None,
                 note: str | None = None) -> None:
    db.execute("update issues set approval = ?, approval_by = ?, approval_at = ?, approval_note = ? where id = ?",
               [state, by, stamp, note, issue_id])


def use_link(db: Database, digest: str, issue_id: int, action: str, by: str, stamp: str) -> bool:
    """Use up a link that acts once (inside the caller's transaction); False when it was used."""
    return db.execute("insert or ignore into used_links (digest, issue_id, action, used_by, used_at)"
                      " values (?, ?, ?, ?, ?)", [digest, issue_id, action, by, stamp]).rowcount == 1


def link_used(db: Database, digest: str) -> Row | None:
    return db.one("select * from used_links where digest = ?", [digest])


def set_composer(db: Database, issue_id: int, by: str) -> None:
    db.execute("update issues set composed_by = ? where id = ?", [by, issue_id])


def set_reviewed(db: Database, issue_id: int, content_hash: str) -> None:
    db.execute("update issues set reviewed_hash = ? where id = ?", [content_hash, issue_id])
