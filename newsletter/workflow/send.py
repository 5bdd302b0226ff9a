"""Send an issue as a person at the terminal or cron does: lock → preflight checks → deliver →
publish the web archive.

The checks run under the issue's lock before its first message, unless the last `newsletter
check` passed on this very content with the same settings; a send already under way (status
'sending') continues without them. A failed check refuses the send unless forced. After the
last message, the web archive is rebuilt so the issue's "Im Browser ansehen" link works; a
failure there is reported and never undoes or repeats the send.
"""

from __future__ import annotations

from typing import Callable

from newsletter.checks.run import passed_before, repeats, run_checks
from newsletter.config import Settings
from newsletter.delivery.send import SendOptions, SendSummary, send_issue
from newsletter.errors import CheckError, NewsletterError, SendStopped
from newsletter.publish import archive
from newsletter import clock
from newsletter.store import Database, connect, transaction
from newsletter.store.autopilot import add_event
from newsletter.workflow.approval import editor


def preflight(settings: Settings, db: Database, issue: dict) -> None:
    """Refuse an issue whose checks fail (see the module docstring for when they run)."""
    if issue["status"] not in ("draft", "scheduled"):
        return
    repeated = repeats(settings, issue, db)
    failed = [repeated] if repeated.status == "fail" else []
    if not passed_before(settings, issue, db):
        failed = run_checks(settings, issue, db).failed
    if failed:
        names = ", ".join(r.name for r in failed)
        raise CheckError(
            f"Issue {issue['slug']} fails {len(failed)} preflight check{'s' if len(failed) > 1 else ''} ({names}) - "
            f"see 'newsletter check {issue['slug']}', fix the issue, or send anyway with --force",
            failed=[r.name for r in failed])


def send(settings: Settings, ref: str, opts: SendOptions, *, force: bool = False,
         progress: Callable[[str], None] = lambda state: None,
         on_start: Callable[[int], None] = lambda total: None, transport_factory=None,
         by: str | None = None) -> SendSummary:
    """Check (unless `force`), send, and publish the archive once the issue is out; the
    timeline notes who sent it (`by`, default: the editor at the terminal) and the counts."""
    try:
        summary = send_issue(settings, ref, opts, progress=progress, on_start=on_start,
                             transport_factory=transport_factory,
                             check=(lambda db, issue: None) if force else (lambda db, issue: preflight(settings, db, issue)))
    except SendStopped as stopped:
        if stopped.summary is not None:
            _record(settings, stopped.summary, by, force, "stopped: " + str(stopped).split(" - ", 1)[0])
        raise
    _record(settings, summary, by, force)
    if summary.done and summary.issue["status"] == "sent" and settings.archive.enabled:
        summary.notes.append(publish(settings))
    return summary


def _record(settings: Settings, summary: SendSummary, by: str | None, force: bool, note: str = "") -> None:
    """The run in the issue's timeline: who sent, the counts, and whether checks were overridden."""
    if not summary.attempted:
        return
    c = summary.counts
    kind = "sent" if summary.issue["status"] == "sent" else "sending"
    detail = (f"{c.get('sent', 0)} delivered, {c.get('failed', 0)} failed, {c.get('deferred', 0)} deferred"
              + (f", {c['sending']} unconfirmed" if c.get("sending") else "")
              + (" (forced past failed checks)" if force else "") + (f"; {note}" if note else ""))
    with connect(settings) as db, transaction(db):
        add_event(db, summary.issue["id"], kind, clock.stamp(), by or editor(), detail)


def publish(settings: Settings) -> str:
    """Rebuild the web archive; a failure is reported, not raised."""
    try:
        with connect(settings) as db:
            result = archive.build(db, settings)
    except NewsletterError as e:
        return f"Warning: the web archive was not updated: {e}"
    return f"Web archive updated in {result.out_dir} ({len(result.issues)} issues)."
