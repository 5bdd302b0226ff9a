"""Scheduled sends: `schedule` stores the time (UTC), `due` finds what `run-due` should send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from newsletter import clock, dates
from newsletter.config import Settings
from newsletter.errors import InputError, StoreError
from newsletter.store import Database, transaction
from newsletter.store.issues import Issue, change_issue, due_issues, issue_by_id

FAR = timedelta(days=60)   # a schedule further ahead than this looks like a typo in the year


def parse_at(settings: Settings, at: str) -> datetime:
    """A local time in the configured timezone ("2026-12-10 08:00", "10.12.2026 08:00") as
    UTC; refused when it is not after now (a typo in the year would send at once)."""
    try:
        local = dates.parse_local_time(at, settings.publication.timezone)
    except ValueError:
        raise InputError(f'--at {at!r} is not a time - write "YYYY-MM-DD HH:MM" or "DD.MM.YYYY HH:MM"') from None
    if not dates.EARLIEST.year <= local.year <= dates.LATEST.year:
        raise InputError(f"--at {at!r} is outside {dates.EARLIEST.year}..{dates.LATEST.year} - check the year")
    when = local.astimezone(UTC)
    now = clock.now()
    if when <= now:
        raise InputError(f"--at {at!r} is in the past (it is now {local_label(settings, now.isoformat())}) - give a "
                         "later time, or send now with 'newsletter send'")
    return when


def looks_far(when: datetime) -> bool:
    """A time so far ahead that it is probably a typo (the year), so the editor is asked."""
    return when - clock.now() > FAR


def schedule(db: Database, issue: Issue, when: datetime) -> Issue:
    """Mark a draft for sending at `when`."""
    if not issue.editable:
        raise StoreError(f"Issue {issue.slug} is {issue.status} - only drafts can be scheduled")
    with transaction(db):
        change_issue(db, issue.id, {"status": "scheduled", "scheduled_at": when.isoformat(timespec="seconds"),
                                    "updated_at": clock.stamp()})
    return issue_by_id(db, issue.id)


def unschedule(db: Database, issue: Issue) -> Issue:
    if issue.status != "scheduled":
        raise StoreError(f"Issue {issue.slug} is {issue.status}, not scheduled - nothing to do")
    with transaction(db):
        change_issue(db, issue.id, {"status": "draft", "scheduled_at": None, "updated_at": clock.stamp()})
    return issue_by_id(db, issue.id)


def due(db: Database, now: datetime | None = None) -> list[Issue]:
    """Scheduled issues whose time has come, plus scheduled sends that stopped half-way."""
    return due_issues(db, (now or clock.now()).isoformat(timespec="seconds"))


def local_label(settings: Settings, stamp: str) -> str:
    return dates.terminal_time(stamp, settings.publication.timezone)
