"""Sending commands: send, status, schedule, unschedule, run-due, approve, hold."""

from __future__ import annotations

import sys
import threading
from typing import Annotated, Any

import typer

from newsletter.cli.base import IssueArg, command, commands, database, fail, issue_of, settings

app = commands()
@command(app)
def send(
    issue: IssueArg,
    test: Annotated[str | None, typer.Option("--test", help="Send one copy marked [TEST] to this address only.", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Build every message and report; send nothing.")] = False,
    rate: Annotated[float | None, typer.Option("--rate", min=0, help="Messages per second (default: [send] rate).", show_default=False)] = None,
    connections: Annotated[int | None, typer.Option("--connections", min=1, max=64, help="Parallel SMTP connections (default: [send] connections).", show_default=False)] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Send at most N messages in this run.", show_default=False)] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    resend_unconfirmed: Annotated[bool, typer.Option("--resend-unconfirmed", help="Also resend the messages whose delivery is unconfirmed (a crash, or no answer from the server after the message).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Send even if a preflight check (newsletter check) fails.")] = False,
) -> None:
    """Send an issue to all active subscribers; run it again to continue after a failure.

    Example: newsletter send latest --test redaktion@example.de, then newsletter send latest
    """
    s, db = database(settings(**{"send.rate": (rate, "--rate"), "send.connections": (connections, "--connections")}))
    row = issue_of(db, issue)
    if test:
        from newsletter.delivery.send import send_test

        typer.echo(f"Test message to {test}: {send_test(db, s, row, test)}")
    elif dry_run:
        _dry_run(db, s, row)
    else:
        if not yes:
            _ask_before_sending(db, s, row)
        _send(db, s, row, limit, resend_unconfirmed, force)


def _dry_run(db, s, row) -> None:
    from newsletter.delivery.send import dry_run

    progress = Progress()
    summary = dry_run(db, s, row, progress.step)
    progress.finish()
    avg = summary.built_bytes // summary.built if summary.built else 0
    typer.echo(f"Dry run of {summary.issue.slug}: built {summary.built} messages ({avg:,} bytes on average) "
               f"in {summary.seconds:.1f} s; nothing sent.")


def _send(db, s, row, limit, resend_unconfirmed: bool, force: bool) -> None:
    from newsletter.delivery.send import SendOptions
    from newsletter.errors import SendStopped
    from newsletter.workflow.send import send_issue

    progress = Progress()
    try:
        summary = send_issue(db, s, row, SendOptions(limit=limit, resend_unconfirmed=resend_unconfirmed),
                             force=force, progress=progress.step, on_start=progress.start)
    except SendStopped as stopped:
        progress.finish()
        if stopped.summary is not None and stopped.summary.attempted:
            print_summary(stopped.summary, stopped=True)
        raise
    progress.finish()
    print_summary(summary)


def _ask_before_sending(db, s, row) -> None:
    """A send cannot be taken back: ask at a terminal, naming what goes where; without one
    (cron, a script, input from a file), refuse unless --yes says it is meant."""
    from newsletter.workflow.send import plan

    if not sys.stdin.isatty():
        fail(f"Not sending issue {row.slug} without a confirmation: there is no terminal to ask - pass --yes "
             "to send from cron or a script", 2)
    readers, where = plan(db, s, row)
    number = f" (Nr. {row.number})" if row.number else ""
    typer.confirm(f"Send issue {row.slug}{number} „{row.subject}“ to {readers:,} readers via {where}?", abort=True)


class Progress:
    """A bar with rate and ETA at a terminal; a log line every 10 s otherwise (cron)."""

    def __init__(self) -> None:
        from newsletter import clock

        self.clock = clock
        self.tty = sys.stderr.isatty()
        self.lock = threading.Lock()
        self.done, self.total = 0, 0
        self.started = self.last_log = clock.monotonic()
        self.bar: Any = None  # click's ProgressBar while a terminal shows one

    def start(self, total: int) -> None:
        self.total = total
        if self.tty and total:
            self.bar = typer.progressbar(length=total, label="Sending", show_eta=False, show_pos=True,
                                         show_percent=True, file=sys.stderr)
            self.bar.__enter__()

    def step(self, state: str) -> None:
        with self.lock:
            self.done += 1
            now = self.clock.monotonic()
            rate = self.done / max(now - self.started, 1e-6)
            if self.bar:
                eta = int((self.total - self.done) / rate)
                self.bar.label = f"Sending ({rate:.0f}/s, ETA {eta // 60:02d}:{eta % 60:02d})"
                self.bar.update(1)
            elif now - self.last_log >= 10:
                self.last_log = now
                typer.echo(f"{self.done}/{self.total or '?'} messages, {rate:.0f}/s", err=True)

    def finish(self) -> None:
        if self.bar:
            self.bar.__exit__(None, None, None)


def print_summary(summary, stopped: bool = False) -> None:
    slug = summary.issue.slug
    c = summary.counts
    typer.echo(f"Issue {slug}: {c['sent']} sent, {c['deferred']} deferred, {c['failed']} failed, "
               f"{c['queued']} queued, {c['sending']} unconfirmed, {c['skipped']} skipped "
               f"({summary.attempted} attempted in {summary.seconds:.1f} s)")
    for email in summary.unconfirmed:
        typer.echo(f"Unconfirmed (an earlier run ended before the server's answer): {email} - "
                   "check the server log; resend with --resend-unconfirmed", err=True)
    for note in summary.notes:
        typer.echo(note, err=note.startswith("Warning"))
    if summary.done and summary.issue.status == "sent":
        typer.echo(f"Issue {slug} is sent.")
    elif (c["deferred"] or c["queued"]) and not stopped:
        typer.echo(f"Not finished: run 'newsletter send {slug}' again to continue.")


@command(app)
def status(issue: IssueArg) -> None:
    """Delivery counts per state, and failures with the server's reply. Example: newsletter status latest"""
    from newsletter.delivery.schedule import local_label
    from newsletter.delivery.send import status as delivery_status

    s, db = database()
    row = issue_of(db, issue)
    found = delivery_status(db, row)
    labels = {"sending": "unconfirmed"}
    typer.echo(f"Issue {row.slug} ({row.status}): " + ", ".join(f"{n} {labels.get(state, state)}" for state, n in found.counts.items()))
    if row.scheduled_at and row.status == "scheduled":
        typer.echo(f"Scheduled for {local_label(s, row.scheduled_at)}")
    width = max([8, *(len(labels.get(p["status"]) or p["status"]) for p in found.problems)])
    for p in found.problems:
        code = p["last_code"] if p["last_code"] else "-"
        typer.echo(f"  {labels.get(p['status'], p['status']):<{width}} {p['email']}  {code} {p['last_reply'] or ''}  ({p['attempts']} attempts)")
    if found.bounces:
        typer.echo(f"Bounces and complaints that came back ({len(found.bounces)}):")
    for b in found.bounces:
        what = "complaint" if b["kind"] == "complaint" else f"{b['kind']} bounce"
        reason = " ".join(str(x) for x in (b["code"], b["status"]) if x) or "-"
        typer.echo(f"  {what:<12} {b['email']}  {reason}  {(b['diagnostic'] or '')[:160]}")


@command(app)
def schedule(
    issue: IssueArg,
    at: Annotated[str, typer.Option("--at", help='Local time in the configured timezone, e.g. "2026-12-10 08:00" or "10.12.2026 08:00".')],
    force: Annotated[bool, typer.Option("--force", help="Schedule even if the issue is not approved or a preflight check (newsletter check) fails.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask when the time is more than 60 days ahead.")] = False,
) -> None:
    """Schedule an issue; cron runs 'newsletter run-due' to send it.

    Example: newsletter schedule latest --at "10.12.2026 08:00"
    """
    from newsletter.delivery.schedule import local_label, looks_far, parse_at
    from newsletter.workflow.due import schedule_issue

    s, db = database()
    when = parse_at(s, at)
    row = issue_of(db, issue)
    if looks_far(when) and not yes:
        label = local_label(s, when.isoformat())
        if not sys.stdin.isatty():
            fail(f"--at {at!r} is {label}, more than 60 days ahead - check the year, or pass --yes if it is meant", 2)
        typer.confirm(f"Schedule issue {row.slug} for {label}, more than 60 days ahead?", abort=True)
    row = schedule_issue(db, s, row, when, force)
    typer.echo(f"Issue {row.slug} scheduled for {local_label(s, when.isoformat())}.")


@command(app)
def unschedule(issue: IssueArg) -> None:
    """Take an issue off the schedule (it becomes a draft again). Example: newsletter unschedule latest"""
    from newsletter.delivery import schedule as schedules

    _, db = database()
    row = schedules.unschedule(db, issue_of(db, issue))
    typer.echo(f"Issue {row.slug} is a draft again.")


@command(app, "run-due")
def run_due() -> None:
    """Do what is due: the weekly routine ([autopilot]) and scheduled sends; silent when nothing is.

    For cron: */5 * * * * newsletter run-due
    """
    from newsletter.workflow import due

    s, db = database()
    summaries, refused, routine = due.run_due(db, s)
    if routine is not None:
        for line in routine.lines:
            typer.echo(line)
        for summary in routine.sends:
            print_summary(summary)
        for line in routine.warnings:
            typer.echo(f"Warning: {line}", err=True)
        refused = [*routine.errors, *refused]
    for summary in summaries:
        print_summary(summary)
    for message in refused:
        typer.echo(f"Error: {message}", err=True)
    if refused:
        raise typer.Exit(1)


@command(app)
def approve(
    issue: IssueArg,
    by: Annotated[str | None, typer.Option("--by", help="Who approves (default: NEWSLETTER_EDITOR or your login name).", show_default=False)] = None,
) -> None:
    """Approve an issue for sending: run-due sends it at [autopilot] send_at. Example: newsletter approve latest"""
    from newsletter.workflow.approval import approve as approve_issue
    from newsletter.workflow.approval import editor

    s, db = database()
    row, changed = approve_issue(db, s, issue_of(db, issue), by or editor())
    if changed:
        typer.echo(f"Issue {row.slug} approved by {row.approval_by}.")
    else:
        typer.echo(f"Issue {row.slug} was approved already, by {row.approval_by}; nothing changed.")


@command(app)
def hold(
    issue: IssueArg,
    by: Annotated[str | None, typer.Option("--by", help="Who holds it (default: NEWSLETTER_EDITOR or your login name).", show_default=False)] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the timeline and the reviewers.", show_default=False)] = None,
) -> None:
    """Hold an issue back: run-due will not send it until it is approved again.

    Example: newsletter hold latest --reason "Termin prüfen"
    """
    from newsletter.workflow.approval import editor
    from newsletter.workflow.approval import hold as hold_issue

    s, db = database()
    row = hold_issue(db, s, issue_of(db, issue), by or editor(), reason or "")
    typer.echo(f"Issue {row.slug} held by {row.approval_by}" + (f" ({reason})" if reason else "") + ".")
