"""Scheduled sends: `schedule` stores the time (UTC), `run-due` sends what is due.

Overlapping `run-due` processes are safe: `send.issue_lock` lets only one send an issue.
"""

from __future__ import annotations

from datetime import datetime, timezone

from newsletter import clock, dates, store
from newsletter.config import Settings
from newsletter.errors import CheckError, InputError, StoreError
from newsletter.delivery.send import SendOptions, SendSummary, preflight, send_issue


def schedule(settings: Settings, ref: str, at: str, force: bool = False) -> dict:
    """Mark a draft for sending at local time `at`; it must pass the preflight checks now
    (they run again when it is due) unless `force`."""
    db = store.open_db(settings.db_path, create=False)
    issue = store.get_issue(db, ref)
    if issue["status"] not in ("draft", "scheduled"):
        raise StoreError(f"Issue {issue['slug']} is {issue['status']} - only drafts can be scheduled")
    try:
        local = datetime.fromisoformat(at.strip().replace(" ", "T", 1))
    except ValueError:
        raise InputError(f'--at {at!r} is not a time - write "YYYY-MM-DD HH:MM"') from None
    tz = dates.zone(settings.publication.timezone)
    when = (local if local.tzinfo else local.replace(tzinfo=tz)).astimezone(timezone.utc)
    if not force:
        preflight(settings, db, issue)
    with store.transaction(db):
        db["issues"].update(issue["id"], {"status": "scheduled", "scheduled_at": when.isoformat(timespec="seconds"),
                                          "updated_at": clock.stamp()})
    return store.get_issue(db, issue["id"])


def unschedule(settings: Settings, ref: str) -> dict:
    db = store.open_db(settings.db_path, create=False)
    issue = store.get_issue(db, ref)
    if issue["status"] != "scheduled":
        raise StoreError(f"Issue {issue['slug']} is {issue['status']}, not scheduled - nothing to do")
    with store.transaction(db):
        db["issues"].update(issue["id"], {"status": "draft", "scheduled_at": None, "updated_at": clock.stamp()})
    return store.get_issue(db, issue["id"])


def due(settings: Settings, now: datetime | None = None) -> list[dict]:
    """Scheduled issues whose time has come, plus scheduled sends that stopped half-way."""
    db = store.open_db(settings.db_path, create=False)
    stamp = (now or clock.now()).isoformat(timespec="seconds")
    return list(db["issues"].rows_where(
        "(status = 'scheduled' and scheduled_at <= ?) or (status = 'sending' and scheduled_at is not null)",
        [stamp], order_by="scheduled_at, id",
    ))


def run_due(settings: Settings) -> tuple[list[SendSummary], list[str]]:
    """Send every due issue. An issue another process is sending is left to that process; one
    that fails its preflight checks stays scheduled and is reported, and the others still go."""
    summaries, refused = [], []
    for issue in due(settings):
        try:
            summaries.append(send_issue(settings, str(issue["id"]), SendOptions()))
        except CheckError as e:
            refused.append(str(e))
        except StoreError as e:
            if "being sent by another process" not in str(e):
                raise
    return summaries, refused


def local_label(settings: Settings, stamp: str) -> str:
    when = datetime.fromisoformat(stamp).astimezone(dates.zone(settings.publication.timezone))
    return when.strftime("%Y-%m-%d %H:%M %Z")



