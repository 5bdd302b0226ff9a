"""The weekly routine on its own, each time cron calls `newsletter run-due` (`[autopilot]`):

    feeds (conditional requests) → at compose_at: compose the next issue, check it, mail the
    reviewers a review copy → at send_at: send it if approved (when approval is required) and
    its checks pass, else hold it and tell the reviewers why → after the send: a summary mail

The week's steps are keyed by the compose time they belong to (the *slot*, local wall-clock
time) and claimed in the store before they run, so overlapping `run-due` calls never compose or
send twice. A step runs when its time has come and at most `grace` late; a step missed by more
(the machine was off) is not caught up but reported to the reviewers: an issue is never sent
days late by surprise. Times are wall-clock times in the publication's time zone, so the switch
to and from summer time moves nothing (a time the clock skips runs an hour later that night).

The first time the routine runs, a compose time already past by more than `grace` is skipped
silently: it belongs to the weeks before the routine was set up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from newsletter import clock, config, dates
from newsletter.checks.run import run_checks
from newsletter.compose.issue import ComposeRequest
from newsletter.compose.select import Options
from newsletter.config import Settings
from newsletter.config.sections import Autopilot
from newsletter.content.pull import FeedResult, pull_feeds
from newsletter.delivery import transports
from newsletter.delivery.send import SendOptions, SendSummary
from newsletter.delivery.transports.base import Transport
from newsletter.errors import CheckError, ConfigError, DraftExists, NewsletterError, SelectionError
from newsletter.store import Database, timeline, transaction
from newsletter.store import routine as steps
from newsletter.store.deliveries import counts as delivery_counts
from newsletter.store.issues import Issue, change_issue, issue_by_id, sent_in_year
from newsletter.store.subscribers import count_by_status
from newsletter.workflow.approval import AUTOPILOT
from newsletter.workflow.compose import compose_issue
from newsletter.workflow.review import mail_each, notice_message, review_message, send_label
from newsletter.workflow.send import send_issue


@dataclass
class RoutineReport:
    """What a run did, for the terminal (and cron's mail): silent when nothing happened."""

    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sends: list[SendSummary] = field(default_factory=list)


@dataclass
class Week:
    slot: str               # the compose time, local: "2026-12-03T07:00"
    compose_at: datetime
    send_at: datetime


def _pilot(settings: Settings) -> Autopilot:
    """[autopilot]; callers run the routine only when the config has one."""
    if settings.autopilot is None:
        raise ConfigError("This config has no [autopilot] section - add one to run the weekly routine")
    return settings.autopilot


def week(settings: Settings, now: datetime) -> Week:
    pilot, tz = _pilot(settings), settings.publication.timezone
    compose_at = dates.last_occurrence(pilot.compose_at, tz, now)
    send_at = dates.next_occurrence(pilot.send_at, tz, compose_at)
    local = compose_at.astimezone(dates.zone(tz))
    return Week(local.strftime("%Y-%m-%dT%H:%M"), compose_at, send_at)


def run(db: Database, settings: Settings, transport_factory=None) -> RoutineReport:
    report = RoutineReport()
    factory = transport_factory or (lambda: transports.make(settings))
    feeds = pull_feeds(db, settings)
    _report_feeds(feeds, report)
    routine = Routine(db, settings, factory, report, feeds)
    try:
        routine.run()
    finally:
        routine.close()
    return report


class Routine:
    def __init__(self, db: Database, settings: Settings, factory, report: RoutineReport,
                 feeds: list[FeedResult]) -> None:
        self.settings, self.db, self.factory, self.report, self.feeds = settings, db, factory, report, feeds
        self.pilot = _pilot(settings)
        self.grace = dates.parse_duration(self.pilot.grace)
        self.now = clock.now()
        self.week = week(settings, self.now)
        self._transport: Transport | None = None

    # -- the steps ---------------------------------------------------------------------------------

    def run(self) -> None:
        first_run = steps.first_step(self.db) is None
        self.compose_step(first_run)
        self.review_again()
        self.send_step()

    def compose_step(self, first_run: bool) -> None:
        w = self.week
        if steps.step_of(self.db, w.slot, "compose") and not self._stale(w.slot, "compose"):
            return
        late = self.now - w.compose_at
        if late > self.grace:
            if self._claim("compose"):
                if first_run:
                    self._finish("compose", "before-start", detail="the routine was set up after this week's compose time")
                else:
                    self._finish("compose", "missed", detail=f"run-due did not run between {self._label(w.compose_at)} "
                                 f"and {self._label(w.compose_at + self.grace)}")
                    self._notice("compose-missed", "Ausgabe nicht erstellt: Zeitpunkt verpasst", [
                        f"Die Ausgabe für den Versand am {send_label(self.settings, w.send_at)} sollte am "
                        f"{send_label(self.settings, w.compose_at)} erstellt werden; newsletter run-due lief bis "
                        f"{send_label(self.settings, w.compose_at + self.grace)} nicht "
                        "(war der Rechner ausgeschaltet?). Damit keine Ausgabe unerwartet verspätet verschickt wird, holt "
                        "die Automatik diesen Schritt nicht nach.",
                        "Sie können die Ausgabe von Hand erstellen und versenden."],
                        commands=["newsletter compose", "newsletter check latest", "newsletter send latest"])
                    self.report.warnings.append(f"Missed this week's compose time ({self._label(w.compose_at)}); "
                                                "reviewers notified")
            return
        if self._claim("compose"):
            self._compose()

    def _compose(self) -> None:
        w = self.week
        local = w.send_at.astimezone(dates.zone(self.settings.publication.timezone))
        number = self.pilot.number.format(n=sent_in_year(self.db, local.year) + 1, year=local.year,
                                          month=local.month, week=local.isocalendar()[1])
        request = ComposeRequest(options=Options(issue_date=local.date()), number=number, by=AUTOPILOT)
        try:
            result = compose_issue(self.db, self.settings, request)
        except SelectionError:
            self._finish("compose", "nothing")
            self._notice("nothing-new", f"Keine Ausgabe am {send_label(self.settings, w.send_at)}: keine neuen Artikel", [
                "Seit der letzten Ausgabe sind keine neuen Artikel erschienen, deshalb wurde keine Ausgabe "
                "erstellt und es wird nichts versandt.", *self._feed_notes()],
                commands=["newsletter articles list --since 14d"])
            self.report.lines.append("Nothing new since the last issue: no issue this week; reviewers notified")
            return
        except DraftExists as e:
            if e.issue.editable:
                self._adopt(e.issue)
                return
            self._finish("compose", "failed", detail=str(e))
            self.report.errors.append(f"Composing this week's issue failed: {e}")
            return
        except NewsletterError as e:
            self._finish("compose", "failed", detail=str(e))
            self._notice("compose-failed", "Ausgabe konnte nicht erstellt werden", [
                f"Beim Erstellen der Ausgabe für den Versand am {send_label(self.settings, w.send_at)} trat ein "
                "Fehler auf:", str(e)],
                commands=["newsletter compose", "newsletter check latest"])
            self.report.errors.append(f"Composing this week's issue failed: {e}")
            return
        issue = result.issue
        self._finish("compose", "done", issue.id)
        self.report.lines.append(f"Composed {issue.number} ({issue.slug}) for "
                                 f"{self._label(w.send_at)}: {sum(result.selection.counts.values())} items")
        self._review(issue, first=True)

    def _adopt(self, issue: Issue) -> None:
        """An editor composed the send day's issue by hand before compose time: it becomes the
        week's issue as it is (composing a second one would mail readers the same articles twice)."""
        self._finish("compose", "done", issue.id, detail=f"adopted {issue.slug}, composed by "
                     f"{issue.composed_by or '?'}")
        self.report.lines.append(f"Took draft {issue.slug} (composed by {issue.composed_by or '?'}) as "
                                 f"the issue for {self._label(self.week.send_at)}")
        self._review(issue, first=True)

    def review_again(self) -> None:
        """The review copy when the last try failed, and a fresh one when the week's draft was
        re-composed since the last one."""
        issue = self._issue()
        if issue is None or issue.status != "draft" or self.now >= self.week.send_at:
            return
        if issue.reviewed_hash != issue.content_hash():
            self._review(issue, first=not issue.reviewed_hash)

    def _review(self, issue: Issue, first: bool) -> None:
        """Check the issue and mail the review copies, once per content of the issue: the step
        is claimed first, so two runs at once never check or mail it twice."""
        step = f"review {issue.content_hash()[:16]}"
        if not self._claim(step, retry_failed=True):
            return
        try:
            self._mail_review(issue, first)
        except NewsletterError as e:
            self._finish(step, "failed", issue.id, str(e))
            self.report.errors.append(f"The review copy of {issue.slug} was not sent: {e} - run-due tries "
                                      f"again until {self._label(self.week.send_at)}")
        else:
            self._finish(step, "done", issue.id)

    def _mail_review(self, issue: Issue, first: bool) -> None:
        checks = run_checks(self.db, self.settings, issue)
        stamp = clock.stamp()
        with transaction(self.db):
            timeline.add_event(self.db, issue.id, "checked", stamp, AUTOPILOT,
                            f"{len(checks.failed)} failed, {len(checks.warnings)} warnings")
        readers = count_by_status(self.db).get("active", 0)
        key = config.signing_key() if self.pilot.approval == "required" else None
        purpose = f"review:{issue.id}:{issue.content_hash()[:16]}"
        refused = mail_each(self.db, self.settings, self._transport_open(), purpose, lambda reviewer, index: review_message(
            self.settings, key, issue, reviewer, index, checks, self.week.send_at, readers, self._feed_notes()))
        with transaction(self.db):
            timeline.set_reviewed(self.db, issue.id, issue.content_hash())
            timeline.add_event(self.db, issue.id, "review sent", clock.stamp(), AUTOPILOT,
                            ("to " if first else "again, after a re-compose, to ") + ", ".join(self.pilot.reviewers))
        self.report.lines.append(f"Review copy of {issue.slug} sent to {len(self.pilot.reviewers)} reviewer(s)"
                                 + ("" if first else " (re-composed)"))
        self._refused(refused)

    def send_step(self) -> None:
        w = self.week
        if self.now < w.send_at:
            return
        issue = self._issue()
        existing = steps.step_of(self.db, w.slot, "send")
        if issue is None or (existing and existing["status"] != "failed"):
            return
        if not issue.editable:
            return  # sent or being sent by hand meanwhile
        if self.now - w.send_at > self.grace:
            if self._claim("send-missed"):
                self._finish("send-missed", "done", issue.id)
                reason = (f"newsletter run-due lief zwischen {send_label(self.settings, w.send_at)} und "
                          f"{send_label(self.settings, w.send_at + self.grace)} nicht")
                if existing:
                    reason = (f"der Versand schlug bis {send_label(self.settings, w.send_at + self.grace)} fehl: "
                              f"{existing['detail']}")
                self._notice("send-missed", f"Ausgabe {issue.number} nicht versandt: Zeitpunkt verpasst", [
                    f"Die Ausgabe „{issue.subject}“ sollte am {send_label(self.settings, w.send_at)} versandt werden; "
                    f"das ist nicht geschehen ({reason}). Damit sie nicht unerwartet verspätet ankommt, versendet "
                    "die Automatik sie nicht mehr. Sie können sie von Hand versenden."],
                    commands=[f"newsletter send {issue.slug}"])
                self.report.warnings.append(f"Missed the send time of {issue.slug}; reviewers notified")
            return
        if not self._claim("send", retry_failed=True):
            return
        self._send(issue)

    def _send(self, issue: Issue) -> None:
        why = self._hold_reason(issue)
        if why is None:
            try:
                with transaction(self.db):
                    change_issue(self.db, issue.id, {"scheduled_at": _utc(self.week.send_at)})
                summary = send_issue(self.db, self.settings, issue_by_id(self.db, issue.id), SendOptions(),
                                     transport_factory=self.factory, by=AUTOPILOT)
            except CheckError as e:
                why = f"Prüfung fehlgeschlagen: {', '.join(e.failed) or e}"
            except NewsletterError as e:
                self._finish("send", "failed", issue.id, str(e))
                self.report.errors.append(f"Sending {issue.slug} failed: {e} - run-due tries again until "
                                          f"{self._label(self.week.send_at + self.grace)}")
                return
            else:
                self._sent(issue, summary)
                return
        self._hold(issue, why)

    def _hold_reason(self, issue: Issue) -> str | None:
        if issue.approval == "held":
            by = issue.approval_by or "?"
            return f"von {by} zurückgestellt" + (f" ({issue.approval_note})" if issue.approval_note else "")
        if self.pilot.approval == "required" and issue.approval != "approved":
            return "nicht freigegeben"
        return None

    def _hold(self, issue: Issue, why: str) -> None:
        stamp = clock.stamp()
        with transaction(self.db):
            if issue.approval != "held":
                timeline.set_approval(self.db, issue.id, "held", AUTOPILOT, stamp, why)
            timeline.add_event(self.db, issue.id, "held", stamp, AUTOPILOT, why)
        self._finish("send", "held", issue.id, why)
        self._notice(f"held-{issue.id}", f"Ausgabe {issue.number} angehalten: {why}", [
            f"Die Ausgabe „{issue.subject}“ wurde am {send_label(self.settings, self.week.send_at)} nicht versandt: "
            f"{why}.", "Sobald das geklärt ist, können Sie die Ausgabe von Hand versenden."],
            commands=[f"newsletter check {issue.slug}", f"newsletter approve {issue.slug}",
                      f"newsletter send {issue.slug}"])
        self.report.warnings.append(f"Held {issue.slug}: {why}; reviewers notified")

    def _sent(self, issue: Issue, summary: SendSummary) -> None:
        self.report.sends.append(summary)
        c = delivery_counts(self.db, issue.id)
        self._finish("send", "sent", issue.id)
        if self._claim("summary"):
            self._notice(f"summary-{issue.id}", f"Ausgabe {issue.number} versandt", [
                f"Die Ausgabe „{issue.subject}“ ist versandt."],
                facts=[("Zugestellt", f"{c['sent']:,}".replace(",", ".")), ("Fehlgeschlagen", str(c["failed"])),
                       ("Verzögert (neuer Zustellversuch folgt)", str(c["deferred"]))],
                commands=[f"newsletter status {issue.slug}", f"newsletter report {issue.slug}"])
            self._finish("summary", "done", issue.id)
            with transaction(self.db):
                timeline.add_event(self.db, issue.id, "summary sent", clock.stamp(), AUTOPILOT,
                                "to " + ", ".join(self.pilot.reviewers))

    # -- helpers -------------------------------------------------------------------------------------

    def _issue(self) -> Issue | None:
        step = steps.step_of(self.db, self.week.slot, "compose")
        if step is None or step["status"] != "done" or not step["issue_id"]:
            return None
        return issue_by_id(self.db, step["issue_id"])

    def _claim(self, step: str, retry_failed: bool = False) -> bool:
        if retry_failed and steps.retake_failed(self.db, self.week.slot, step, clock.stamp()):
            return True
        return steps.claim(self.db, self.week.slot, step, clock.stamp())

    def _stale(self, slot: str, step: str) -> bool:
        row = steps.step_of(self.db, slot, step)
        return bool(row and row["status"] == "started"
                    and datetime.fromisoformat(row["started_at"]) + steps.STALE <= self.now)

    def _finish(self, step: str, status: str, issue_id: int | None = None, detail: str = "") -> None:
        steps.finish(self.db, self.week.slot, step, status, clock.stamp(), issue_id, detail)

    def _notice(self, key: str, title: str, paragraphs: list[str], facts=(), commands=()) -> None:
        """A short mail to the reviewers, once per week (`slot`) and `key`."""
        refused = mail_each(self.db, self.settings, self._transport_open(), f"notice:{self.week.slot}:{key}",
                            lambda reviewer, index: notice_message(self.settings, reviewer, title, paragraphs,
                                                                   list(facts), list(commands)))
        self._refused(refused)

    def _refused(self, refused: list[str]) -> None:
        for entry in refused:
            self.report.errors.append(f"The mail server refused the mail to reviewer {entry}")

    def _feed_notes(self) -> list[str]:
        return [f"Der Feed {f.url} war nicht abrufbar ({f.error}); seine neuen Beiträge fehlen in dieser Ausgabe."
                for f in self.feeds if f.error]

    def _transport_open(self) -> Transport:
        if self._transport is None:
            self._transport = self.factory()
            self._transport.open()
        return self._transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _label(self, moment: datetime) -> str:
        return dates.terminal_time(moment, self.settings.publication.timezone)


def _report_feeds(feeds: list[FeedResult], report: RoutineReport) -> None:
    for feed in feeds:
        if feed.error and feed.error_is_new:
            report.warnings.append(f"Feed {feed.url}: {feed.error}")
        elif feed.recovered:
            report.lines.append(f"Feed {feed.url} works again")
        if feed.new or feed.updated:
            report.lines.append(f"Feed {feed.url}: {feed.new} new, {feed.updated} updated")


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")
