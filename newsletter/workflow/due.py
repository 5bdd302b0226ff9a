"""What cron's `newsletter run-due` does: the weekly routine when `[autopilot]` is configured
(`workflow.autopilot`), then every scheduled issue that is due.

Overlapping runs are safe: the routine claims each step before it runs it, and the issue lock
lets only one process send an issue while the other leaves it alone. An issue that fails its
preflight checks stays scheduled and is reported, and the others still go.
"""

from __future__ import annotations

from datetime import datetime

from newsletter.config import Settings
from newsletter.delivery.schedule import due, schedule
from newsletter.delivery.send import SendOptions, SendSummary
from newsletter.errors import CheckError, IssueBeingSent, NotApproved
from newsletter.store import Database
from newsletter.store.issues import Issue
from newsletter.workflow import autopilot
from newsletter.workflow.autopilot import RoutineReport
from newsletter.workflow.send import gate, send_issue


def schedule_issue(db: Database, settings: Settings, issue: Issue, when: datetime, force: bool = False) -> Issue:
    """Schedule a draft for `when` (see `delivery.schedule.parse_at`); it must be approved where
    that is required and pass the preflight checks now (both are asked again when it is due)
    unless `force`."""
    if not force:
        gate(db, settings, issue)
    return schedule(db, issue, when)


def run_due(db: Database, settings: Settings,
            transport_factory=None) -> tuple[list[SendSummary], list[str], RoutineReport | None]:
    """(sends of scheduled issues, refusals, what the weekly routine did or None without it)."""
    routine = autopilot.run(db, settings, transport_factory) if settings.autopilot else None
    summaries, refused = [], []
    for issue in due(db):
        try:
            summaries.append(send_issue(db, settings, issue, SendOptions(), transport_factory=transport_factory))
        except (CheckError, NotApproved) as e:
            refused.append(str(e))
        except IssueBeingSent:
            pass  # the process that holds the lock sends it
    return summaries, refused, routine
