"""`newsletter stats`: one line per sent issue, oldest first, so trends read left to right."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from newsletter.config import Settings
from newsletter.reports.issue import issue_report
from newsletter.store import Database
from newsletter.store.issues import sent_issues


@dataclass
class IssueLine:
    slug: str
    number: str | None
    issue_date: str
    subject: str
    delivered: int
    failed: int
    bounced: int
    complained: int
    unsubscribed: int
    readers: int
    human: int
    automated: int
    rate: float | None          # estimated readers who clicked, per 100 delivered
    tracked: bool

    @property
    def unsubscribe_rate(self) -> float | None:
        return round(100 * self.unsubscribed / self.delivered, 2) if self.delivered else None

    def as_dict(self) -> dict:
        return {**asdict(self), "unsubscribe_rate": self.unsubscribe_rate}


def stats(db: Database, settings: Settings, last: int = 12) -> list[IssueLine]:
    """The `last` sent issues, oldest first."""
    lines = []
    for issue in reversed(sent_issues(db)[:last]):
        r = issue_report(db, settings, issue)
        lines.append(IssueLine(issue.slug, issue.number, issue.issue_date, issue.subject,
                               r.delivered, r.failed, r.bounced, r.complained, r.unsubscribed, r.readers,
                               r.human, r.automated, r.rate, r.tracked))
    return lines
