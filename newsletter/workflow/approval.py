"""Approving and holding an issue, from the terminal (`newsletter approve|hold`) or from the
review mail's links (`serve`): who may, and what it records.

An issue needs approval when `[autopilot] approval = "required"`; `run-due` sends it at send
time only if it is approved then. With `four_eyes`, whoever composed the issue cannot approve
it. A re-compose that changes the issue revokes an approval (`workflow.compose`). Every step
lands in the issue's timeline (`issues show`).
"""

from __future__ import annotations

import getpass
import os
from email.utils import parseaddr

from newsletter import clock
from newsletter.config import Settings
from newsletter.errors import InputError, StoreError
from newsletter.store import Database, transaction
from newsletter.store.issues import Issue, issue_by_id
from newsletter.store.timeline import add_event, set_approval, use_link

EDITOR_ENV = "NEWSLETTER_EDITOR"
AUTOPILOT = "autopilot"


def editor() -> str:
    """Who is at the terminal: NEWSLETTER_EDITOR, else the login name."""
    name = os.environ.get(EDITOR_ENV, "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def identities(who: str | None) -> set[str]:
    """What names a person in `who` ("Chefredaktion <chef@example.de>", "chef@example.de",
    "Chefredaktion"): the address and the display name, lower case."""
    name, address = parseaddr(who or "")
    found = {address.strip().lower()} if "@" in address else set()
    shown = (name or ("" if found else who or "")).strip().lower()
    return found | ({shown} if shown else set())


def same_person(a: str | None, b: str | None) -> bool:
    """Whether two of the names people give (`--by`, NEWSLETTER_EDITOR, a reviewer's address)
    stand for the same person: the same address or the same name, in any case."""
    return bool(identities(a) & identities(b))


def open_for_approval(issue: Issue) -> None:
    if not issue.editable:
        raise StoreError(f"Issue {issue.slug} is {issue.status} - only an issue not yet sent can be "
                         "approved or held")


def approve(db: Database, settings: Settings, issue: Issue, by: str, via: str = "terminal",
            link: str | None = None) -> tuple[Issue, bool]:
    """Approve `issue` as `by`; (the issue, whether anything changed). An issue already
    approved stays as it is. `link`: the digest of a review link, used up in the same
    transaction (a link acts once; a replay raises LinkUsed)."""
    open_for_approval(issue)
    pilot = settings.autopilot
    if pilot and pilot.four_eyes and same_person(by, issue.composed_by):
        raise InputError(f"{by} composed issue {issue.slug} and cannot approve it too ([autopilot] four_eyes) "
                         "- ask another reviewer")
    stamp = clock.stamp()
    with transaction(db):
        _use(db, link, issue, "approve", by, stamp)
        current = issue_by_id(db, issue.id)
        if current.approval == "approved":
            return current, False
        set_approval(db, issue.id, "approved", by, stamp)
        add_event(db, issue.id, "approved", stamp, by, via)
    return issue_by_id(db, issue.id), True


def hold(db: Database, settings: Settings, issue: Issue, by: str, reason: str = "", via: str = "terminal",
         link: str | None = None) -> Issue:
    """Hold `issue` back, as `by`, for `reason`; `link` as for `approve`."""
    open_for_approval(issue)
    stamp = clock.stamp()
    with transaction(db):
        _use(db, link, issue, "hold", by, stamp)
        set_approval(db, issue.id, "held", by, stamp, reason or None)
        add_event(db, issue.id, "held", stamp, by, f"{reason} ({via})" if reason and via != "terminal" else reason or via)
    return issue_by_id(db, issue.id)


def _use(db: Database, link: str | None, issue: Issue, action: str, by: str, stamp: str) -> None:
    if link is not None and not use_link(db, link, issue.id, action, by, stamp):
        raise LinkUsed(f"This {action} link of issue {issue.slug} was used before - it acts only once")


class LinkUsed(InputError):
    """A review link that has acted already."""
