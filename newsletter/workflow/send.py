"""Send an issue as a person at the terminal or cron does: lock → preflight checks → deliver →
publish the web archive.

Before its first message, under the issue's lock: an issue held back, or not approved when
`[autopilot] approval = "required"`, is refused; then the checks run, unless the last `newsletter
check` passed on this very content with the same settings (the repeat check runs always). A send
already under way ('sending') continues without them. `--force` goes past all of it and the
timeline says so. After the
last message, the web archive is rebuilt so the issue's "Im Browser ansehen" link works; a
failure there is reported and never undoes or repeats the send.
"""

from __future__ import annotations

from collections.abc import Callable

from newsletter import clock
from newsletter.checks.run import passed_before, repeats, run_checks
from newsletter.config import Settings
from newsletter.delivery import transports
from newsletter.delivery.send import SendOptions, SendSummary, deliver
from newsletter.errors import CheckError, NewsletterError, NotApproved, SendStopped
from newsletter.publish import archive
from newsletter.store import Database, transaction
from newsletter.store.deliveries import readers_waiting
from newsletter.store.issues import Issue
from newsletter.store.timeline import add_event
from newsletter.workflow.approval import editor


def preflight(db: Database, settings: Settings, issue: Issue) -> None:
    """Refuse an issue whose checks fail (see the module docstring for when they run)."""
    if not issue.editable:
        return
    repeated = repeats(db, settings, issue)
    failed = [repeated] if repeated.status == "fail" else []
    if not passed_before(db, settings, issue):
        failed = run_checks(db, settings, issue).failed
    if failed:
        names = ", ".join(r.name for r in failed)
        raise CheckError(
            f"Issue {issue.slug} fails {len(failed)} preflight check{'s' if len(failed) > 1 else ''} ({names}) - "
            f"see 'newsletter check {issue.slug}', fix the issue, or send anyway with --force",
            failed=[r.name for r in failed])


def unapproved(settings: Settings, issue: Issue) -> str | None:
    """Why the issue may not go out for want of an approval ("held by ...", "not approved"), or None."""
    if issue.approval == "held":
        note = f" ({issue.approval_note})" if issue.approval_note else ""
        return f"is held by {issue.approval_by or '?'}{note}"
    pilot = settings.autopilot
    if pilot and pilot.approval == "required" and issue.approval != "approved":
        return 'is not approved ([autopilot] approval = "required")'
    return None


def gate(db: Database, settings: Settings, issue: Issue) -> None:
    """What must hold before an issue's first message: approved (when required), not held,
    and its checks pass. A send under way continues without asking again."""
    if not issue.editable:
        return
    why = unapproved(settings, issue)
    if why:
        raise NotApproved(f"Issue {issue.slug} {why} - approve it with 'newsletter approve {issue.slug}' "
                          "(as someone other than its composer), or send anyway with --force", why)
    preflight(db, settings, issue)


def send_issue(db: Database, settings: Settings, issue: Issue, opts: SendOptions, *, force: bool = False,
               progress: Callable[[str], None] = lambda state: None,
               on_start: Callable[[int], None] = lambda total: None, transport_factory=None,
               by: str | None = None) -> SendSummary:
    """Check approval and content (unless `force`), deliver, and publish the archive once the
    issue is out; the timeline notes who sent it (`by`, default: the editor at the terminal),
    the counts, and what a forced send went past."""
    forced: list[str] = []

    def check(db: Database, issue: Issue) -> None:
        if not force:
            gate(db, settings, issue)
        elif issue.editable:
            why = unapproved(settings, issue)
            forced.append("forced: checks skipped" + (f", the issue {why}" if why else ""))

    try:
        summary = deliver(db, settings, issue, opts, progress=progress, on_start=on_start,
                          transport_factory=transport_factory, check=check)
    except SendStopped as stopped:
        if stopped.summary is not None:
            _record(db, stopped.summary, by, [*forced, "stopped: " + str(stopped).split(" - ", 1)[0]])
        raise
    _record(db, summary, by, forced)
    if summary.done and summary.issue.sent and settings.archive.enabled:
        summary.notes.append(publish(db, settings))
    return summary


def _record(db: Database, summary: SendSummary, by: str | None, notes: list[str]) -> None:
    """The run in the issue's timeline: who sent, the counts, and what it went past."""
    if not summary.attempted:
        return
    c = summary.counts
    kind = "sent" if summary.issue.sent else "sending"
    detail = (f"{c.get('sent', 0)} delivered, {c.get('failed', 0)} failed, {c.get('deferred', 0)} deferred"
              + (f", {c['sending']} unconfirmed" if c.get("sending") else "") + "".join(f"; {n}" for n in notes))
    with transaction(db):
        add_event(db, summary.issue.id, kind, clock.stamp(), by or editor(), detail)


def plan(db: Database, settings: Settings, issue: Issue) -> tuple[int, str]:
    """What a send would do, for the question before it: how many readers are still to get
    the issue, and where the messages go."""
    return readers_waiting(db, issue.id), transports.describe(settings)


def publish(db: Database, settings: Settings) -> str:
    """Rebuild the web archive; a failure is reported, not raised."""
    try:
        result = archive.build(db, settings)
    except NewsletterError as e:
        return f"Warning: the web archive was not updated: {e}"
    return f"Web archive updated in {result.out_dir} ({len(result.issues)} issues)."
