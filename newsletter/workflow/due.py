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
from newsletter.store import connect
from newsletter.store.issues import get_issue
from newsletter.workflow import autopilot
from newsletter.workflow.autopilot import RoutineReport
from newsletter.workflow.send import gate, send


def schedule_issue(settings: Settings, ref: str, when: datetime, force: bool = False) -> dict:
    """Schedule a draft for `when` (see `delivery.schedule.parse_at`); it must be approved where
    that is required and pass the preflight checks now (both are asked again when it is due)
    unless `force`."""
    with connect(settings) as db:
        issue = get_issue(db, ref)
        if not force:
            gate(settings, db, issue)
        return schedule(settings, db, ref, when)


def run_due(settings: Settings, transport_factory=None) -> tuple[list[SendSummary], list[str], RoutineReport | None]:
    """(sends of scheduled issues, refusals, what the weekly routine did or None without it)."""
    routine = autopilot.run(settings, transport_factory) if settings.autopilot else None
    summaries, refused = [], []
    for issue in due(settings):
        try:
            summaries.append(send(settings, str(issue.id), SendOptions(), transport_factory=transport_factory))
        except (CheckError, NotApproved) as e:
            refused.append(str(e))
        except IssueBeingSent:
            pass  # the process that holds the lock sends it
    return summaries, refused, routine
