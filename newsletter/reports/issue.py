"""What an issue achieved, from counts alone: delivery outcomes from the delivery log and bounce
events, reader interest from the counted links (`[tracking] clicks`).

    issues + deliveries + bounce_events + subscribers + links/clicks → IssueReport

No figure here is about a reader: clicks are counted per link and hour, unique clicks are an
estimate (see `web.clicks`), and automated requests (scanners, previews) stand beside the
human ones, never inside them. Rates are per 100 delivered messages.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from newsletter.config import Settings
from newsletter.store import Database
from newsletter.store.bounces import events_by_issue, reasons_by_issue
from newsletter.store.clicks import hourly, issue_readers, links_of
from newsletter.store.deliveries import counts, first_sent
from newsletter.store.issues import Issue, next_sent_after
from newsletter.store.subscribers import unsubscribed_between

SECTIONS = {"lead": "Aufmacher", "articles": "Weitere Meldungen", "jobs": "Stellenmarkt", "ads": "Anzeigen",
            "header": "Kopf (Logo)", "footer": "Fuß (Social Media)", "text": "Links im Text"}
SECTION_ORDER = tuple(SECTIONS)


@dataclass(frozen=True)
class IssueFacts:
    """What a report says about its issue (and what `report --json` writes under "issue")."""
    id: int
    slug: str
    number: str | None
    subject: str
    issue_date: str
    status: str
    sent_at: str | None

    @classmethod
    def of(cls, issue: Issue) -> IssueFacts:
        return cls(issue.id, issue.slug, issue.number, issue.subject, issue.issue_date, issue.status, issue.sent_at)
DAYS = 7


def per_100(count: int, delivered: int) -> float | None:
    return round(100 * count / delivered, 1) if delivered else None


@dataclass
class LinkStat:
    section: str
    kind: str
    label: str
    url: str
    code: str
    item_id: int | None
    human: int
    unique: int
    automated: int
    repeated: int
    rate: float | None      # estimated unique clicks per 100 delivered (None: no deliveries, or implausible)
    implausible: bool       # more human clicks than messages delivered: not shown as fact


@dataclass
class SectionStat:
    """Clicks per section. No unique figure: a reader who clicked two links of a section is
    unique on each, so per-link estimates cannot be added up."""

    section: str
    name: str
    links: int
    human: int
    automated: int
    repeated: int


@dataclass
class IssueReport:
    issue: IssueFacts
    delivered: int
    failed: int
    deferred: int
    bounced: int
    complained: int
    unsubscribed: int
    readers_estimated: int  # estimated different readers who clicked anything, as counted
    human: int
    automated: int
    repeated: int           # further clicks of one client on one link, not counted as clicks
    automated_by: dict[str, int]  # head, scanner, burst
    tracked: bool           # the issue's links were counted
    sections: list[SectionStat] = field(default_factory=list)
    links: list[LinkStat] = field(default_factory=list)
    days: list[dict] = field(default_factory=list)   # first DAYS days after sending: day, human, automated
    flags: list[dict] = field(default_factory=list)  # figures that cannot be true: {"kind": ..., counts}
    bounce_reasons: list[dict] = field(default_factory=list)  # kind, code, status, diagnostic, readers

    @property
    def readers(self) -> int:
        """The estimate, never above the messages delivered (an estimate that exceeds them is flagged)."""
        return min(self.readers_estimated, self.delivered)

    @property
    def readers_plausible(self) -> bool:
        return self.readers_estimated <= self.delivered

    @property
    def rate(self) -> float | None:
        return per_100(self.readers, self.delivered) if self.readers_plausible else None

    def as_dict(self) -> dict:
        out = asdict(self)
        out.update(readers=self.readers, rate=self.rate, readers_plausible=self.readers_plausible)
        return out

    def as_csv(self) -> str:
        """One row per link, the columns of the link table."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["issue", "section", "kind", "label", "url", "human_clicks", "unique_clicks_estimated",
                         "per_100_delivered", "automated_clicks", "repeated_clicks", "delivered", "implausible"])
        for link in self.links:
            writer.writerow([self.issue.slug, link.section, link.kind, link.label, link.url, link.human,
                             link.unique, "" if link.rate is None else link.rate, link.automated, link.repeated,
                             self.delivered, "yes" if link.implausible else ""])
        return buffer.getvalue()


def issue_report(db: Database, settings: Settings, issue: Issue) -> IssueReport:
    delivery = counts(db, issue.id)
    delivered = delivery.get("sent", 0)
    events = events_by_issue(db, issue.id)
    unsubscribed, started = 0, first_sent(db, issue.id)
    if started:
        following = next_sent_after(db, issue) if issue.sent_at else None
        unsubscribed = unsubscribed_between(db, issue.id, started, following.sent_at if following else None)
    rows = links_of(db, issue.id)
    links = [_link(row, delivered) for row in rows]
    report = IssueReport(
        issue=IssueFacts.of(issue),
        delivered=delivered, failed=delivery.get("failed", 0), deferred=delivery.get("deferred", 0),
        bounced=events["hard"] + events["soft"], complained=events["complaint"], unsubscribed=unsubscribed,
        readers_estimated=issue_readers(db, issue.id), human=sum(link.human for link in links),
        automated=sum(link.automated for link in links), repeated=sum(link.repeated for link in links),
        automated_by={reason: sum(row[f"auto_{reason}"] for row in rows) for reason in ("head", "scanner", "burst")},
        tracked=bool(links), links=links)
    report.sections = _sections(links)
    report.days = _days(hourly(db, issue.id), started or issue.sent_at, issue.issue_date,
                        settings.publication.timezone)
    report.flags = _flags(report)
    report.bounce_reasons = reasons_by_issue(db, issue.id)
    return report


def _link(row: dict, delivered: int) -> LinkStat:
    implausible = row["human"] > delivered
    return LinkStat(row["section"] or "text", row["kind"], row["label"] or row["url"], row["url"], row["code"],
                    row["item_id"], row["human"], min(row["unique_human"], delivered), row["automated"],
                    row["repeated"], None if implausible else per_100(min(row["unique_human"], delivered), delivered),
                    implausible)


def _flags(report: IssueReport) -> list[dict]:
    """What cannot be true: more readers, or more clicks on one link, than messages delivered
    (automated requests that passed for people). Reports show these beside the figures, which
    they never present as fact: "readers" (estimated, delivered), "links" (how many links)."""
    flags = []
    if not report.readers_plausible:
        flags.append({"kind": "readers", "estimated": report.readers_estimated, "delivered": report.delivered})
    odd = [link for link in report.links if link.implausible]
    if odd:
        flags.append({"kind": "links", "links": len(odd), "delivered": report.delivered})
    return flags


def _sections(links: list[LinkStat]) -> list[SectionStat]:
    out = []
    for section in SECTION_ORDER:
        mine = [link for link in links if link.section == section]
        if mine:
            out.append(SectionStat(section, SECTIONS[section], len(mine), sum(link.human for link in mine),
                                   sum(link.automated for link in mine), sum(link.repeated for link in mine)))
    return out


def _days(hours: list[dict], started: str | None, issue_date: str, zone_name: str) -> list[dict]:
    """Clicks per local day for the first DAYS days from the send (or the issue date)."""
    zone = ZoneInfo(zone_name)
    start = datetime.fromisoformat(started).astimezone(zone).date() if started else date.fromisoformat(issue_date)
    days = {start + timedelta(days=n): {"human": 0, "automated": 0} for n in range(DAYS)}
    for row in hours:
        moment = datetime.strptime(row["hour"], "%Y-%m-%dT%H").replace(tzinfo=UTC)
        day = moment.astimezone(zone).date()
        if day in days:
            days[day]["human"] += row["human"]
            days[day]["automated"] += row["automated"]
    return [{"day": day.isoformat(), **values} for day, values in sorted(days.items())]
