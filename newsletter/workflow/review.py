"""The mails of the weekly routine to the reviewers: the review copy of an issue, with its
"Freigeben" / "Zurückstellen" links, and short notices (held, nothing new, missed, sent).

The review copy is the issue as a reader gets it (personalised for the sample reader) with a box
on top that is not part of the issue: the check summary, the planned send time, notes (a feed
that failed) and the links. Each reviewer gets their own links:

    <base_url>/review/<approve|hold>/<reviewer number>/<token>

The token (`tokens.make_timed`) signs the issue, the action, the reviewer's address and the
issue's content, and expires after a week: a link from before a re-compose no longer approves
what changed since. `serve` shows a page with a button; only its POST acts, so a link scanner
approves nothing. Texts come from templates/mail/review*.j2 and notice*.j2.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from newsletter import clock, dates, tokens
from newsletter.checks.result import CheckReport
from newsletter.compose import render
from newsletter.compose.personal import Recipient
from newsletter.config import Settings
from newsletter.delivery.transports import Outcome, Transport
from newsletter.mail import mime
from newsletter.mail.export import export
from newsletter.mail.message import Multipart, list_id
from newsletter.store import Database, mailings
from newsletter.store.issues import Issue

ACTIONS = ("approve", "hold")
LINK_DAYS = 7
AUTO_HEAD = b"Auto-Submitted: auto-generated\r\n"
_BODY = re.compile(r"(<body\b[^>]*>)", re.I)


def _purpose(action: str, reviewer: str, issue: Issue) -> str:
    return f"review:{action}:{reviewer.lower()}:{issue.content_hash()[:24]}"


def review_url(settings: Settings, key: bytes, issue: Issue, action: str, index: int, reviewer: str) -> str:
    token = tokens.make_timed(key, list_id(settings), issue.id, purpose=_purpose(action, reviewer, issue))
    return f"{settings.require_base_url('the review links')}/review/{action}/{index}/{token}"


@dataclass(frozen=True)
class ReviewLink:
    """What a review link says once checked: the reviewer, and whether it has expired."""

    reviewer: str
    expired: bool


def check_link(settings: Settings, key: bytes, issue: Issue, action: str, index: int, token: str) -> ReviewLink | None:
    """The reviewer a link was made for, or None when it is forged, for another issue or for
    content that has changed since (a re-compose)."""
    reviewers = settings.autopilot.reviewers if settings.autopilot else []
    if action not in ACTIONS or not 0 <= index < len(reviewers):
        return None
    reviewer = reviewers[index]
    checked = tokens.verify_timed(key, list_id(settings), token, LINK_DAYS * 86400, purpose=_purpose(action, reviewer, issue))
    if checked is None or checked.ref_id != issue.id:
        return None
    return ReviewLink(reviewer, checked.expired)


def issue_of_token(token: str) -> int | None:
    """The issue id a review token names (unverified: `check_link` decides)."""
    return tokens.number(token.split(".", 1)[0])


def review_message(settings: Settings, key: bytes | None, issue: Issue, reviewer: str, index: int, report: CheckReport,
                   send_at: datetime, readers: int, notes: list[str]) -> bytes:
    """The review copy for one reviewer (links only when approval is required)."""
    env = render.environment(settings.templates_dir)
    pilot = settings.autopilot
    needs_approval = bool(pilot and pilot.approval == "required" and key)
    problems = [r for r in report.results if r.status in ("fail", "warn")]
    values = {
        "publication": settings.publication, "issue": issue, "readers": f"{readers:,}".replace(",", "."),
        "send_label": send_label(settings, send_at), "notes": notes,
        "report": {"passed": len(report.results) - len(problems), "warnings": len(report.warnings),
                   "failed": len(report.failed), "problems": problems},
        "approve_url": review_url(settings, key, issue, "approve", index, reviewer) if needs_approval and key else "",
        "hold_url": review_url(settings, key, issue, "hold", index, reviewer) if needs_approval and key else "",
        "composer_is_reviewer": bool(pilot and pilot.four_eyes and (issue.composed_by or "").lower() == reviewer.lower()),
    }
    banner_html = render.template(env, "mail/review_banner.html.j2", values)
    banner_text = render.wrap_text(render.template(env, "mail/review_banner.txt.j2", values)) + "\n"
    page = export(settings, issue, "html").decode("utf-8")
    page = _BODY.sub(lambda m: m.group(1) + banner_html, page, count=1)
    text = banner_text + export(settings, issue, "txt").decode("utf-8")
    subject = " ".join(render.template(env, "mail/review.subject.j2", values).split())
    raw, _ = Multipart(settings, subject, text, page, AUTO_HEAD).build(Recipient(mime.check_header_value("To", reviewer)))
    return raw


def notice_message(settings: Settings, reviewer: str, title: str, paragraphs: list[str],
                   facts: Sequence[tuple[str, str]] = (), commands: Sequence[str] = ()) -> bytes:
    env = render.environment(settings.templates_dir)
    values = {"publication": settings.publication, "title": title, "paragraphs": list(paragraphs),
              "facts": list(facts), "commands": list(commands)}
    subject = " ".join(render.template(env, "mail/notice.subject.j2", values).split())
    text = render.wrap_text(render.template(env, "mail/notice.txt.j2", values))
    markup = render.template(env, "mail/notice.html.j2", values)
    raw, _ = Multipart(settings, subject, text, markup, AUTO_HEAD).build(Recipient(mime.check_header_value("To", reviewer)))
    return raw


def mail_each(db: Database, settings: Settings, transport: Transport, purpose: str, build) -> list[str]:
    """Send `build(reviewer, index)` to every reviewer, once: each mail is claimed under
    `purpose` and the reviewer's address before it goes out and recorded after, so a mail that
    another run sent, holds or lost is left alone. Returns the mails the server refused."""
    refused = []
    for index, reviewer in enumerate(settings.autopilot.reviewers if settings.autopilot else []):
        key = f"{purpose}|{reviewer.lower()}"
        if not mailings.claim(db, key, reviewer, clock.stamp()):
            continue
        try:
            result = transport.send(settings.publication.sender_address, reviewer, build(reviewer, index))
        except Exception:
            mailings.record(db, key, "refused", clock.stamp(), "not sent: it failed before it left")
            raise
        status = {Outcome.SENT: "sent", Outcome.UNCONFIRMED: "unconfirmed"}.get(result.outcome, "refused")
        mailings.record(db, key, status, clock.stamp(), result.reply)
        if status != "sent":
            refused.append(f"{reviewer}: {result.reply}")
    return refused


def send_label(settings: Settings, moment: datetime) -> str:
    """'Do., 3. Dezember 2026, 09:00 Uhr' in the publication's time zone."""
    local = moment.astimezone(dates.zone(settings.publication.timezone))
    day = ("Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa.", "So.")[local.weekday()]
    return f"{day}, {dates.german_long(local.date())}, {local:%H:%M} Uhr"


def now_label(settings: Settings) -> str:
    return send_label(settings, clock.now())
