"""Running the preflight checks on a stored issue, and remembering what they found.

    stored issue + items → Context (HTML parsed once, the sample reader's .eml) → every check
    in `checks.issue.CHECKS` → SpamAssassin (`spam`) → text contrast in Chromium (`contrast`)
    → CheckReport, saved with a hash of what was checked

A send asks `passed_before` first: when the last report passed on the identical rendered issue
with the same check settings, the checks (SpamAssassin alone takes seconds) are not run again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from newsletter import clock, dates
from newsletter.checks.issue import CHECKS, Context, repeat_check
from newsletter.checks.page import Page, norm
from newsletter.checks.result import CheckReport, CheckResult
from newsletter.checks.spam import spam_check
from newsletter.config import Settings
from newsletter.errors import NewsletterError
from newsletter.mail.export import export
from newsletter.store import Database, transaction
from newsletter.store.checks import last_result, save_result
from newsletter.store.clicks import links_of
from newsletter.store.issues import Issue, articles_sent_elsewhere, issue_items


def run_checks(db: Database, settings: Settings, issue: Issue) -> CheckReport:
    """Every check on a stored issue; SpamAssassin and the contrast check as [check] says."""
    items = issue_items(db, issue.id)
    eml, error = _build_eml(settings, issue)
    ctx = Context(settings, issue, items, Page(issue.html or ""), norm(issue.text or ""),
                  dates.today(settings.publication.timezone), eml, error, links_of(db, issue.id),
                  articles_sent_elsewhere(db, issue.id))
    report = CheckReport(issue)
    for check in CHECKS:
        report.results.extend(check(ctx))
    if settings.check.spamassassin and eml is not None:
        report.results.append(spam_check(eml, settings.check.spam_threshold))
    if settings.check.contrast and issue.html:
        from newsletter.checks.contrast import contrast_check

        report.results.extend(contrast_check(export(settings, issue, "html").decode("utf-8")))
    with transaction(db):
        save_result(db, issue.id, checked_hash(issue, items), settings_hash(settings),
                    not report.failed, report.as_dict(), clock.stamp())
    return report


def repeats(db: Database, settings: Settings, issue: Issue) -> CheckResult:
    """The one check whose answer changes without the issue changing (another issue went out
    since): a send asks it even when the last report passed."""
    items = issue_items(db, issue.id)
    ctx = Context(settings, issue, items, Page(""), "", dates.today(settings.publication.timezone), None,
                  sent_elsewhere=articles_sent_elsewhere(db, issue.id))
    return repeat_check(ctx)[0]


def passed_before(db: Database, settings: Settings, issue: Issue) -> bool:
    """Whether the last report passed on this very content with these very check settings."""
    last = last_result(db, issue.id)
    return bool(last and last["passed"] and last["content_hash"] == checked_hash(issue, issue_items(db, issue.id))
                and last["settings_hash"] == settings_hash(settings))


def checked_hash(issue: Issue, items: list[dict]) -> str:
    """What the checks look at: the issue's content (its one hash) and the items as stored now."""
    parts = [issue.content_hash(), *(json.dumps(e["item"], sort_keys=True, default=str) for e in items)]
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def settings_hash(settings: Settings) -> str:
    """The settings the checks read: the publication, Impressum, size budget, sending headers
    and the check settings themselves."""
    relevant: dict[str, Any] = {name: dataclasses.asdict(getattr(settings, name))
                                for name in ("publication", "impressum", "check", "tracking")}
    relevant["budget"] = settings.compose.size_budget
    relevant["feedback_id"] = settings.send.feedback_id
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _build_eml(settings: Settings, issue: Issue) -> tuple[bytes | None, str]:
    try:
        return export(settings, issue, "eml"), ""
    except NewsletterError as e:
        return None, str(e)
