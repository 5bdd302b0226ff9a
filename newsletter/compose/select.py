"""Selection: which stored items go into an issue, in which section and order.

Pure reads: the result is a `Selection` that `compose.issue` freezes into the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from newsletter import dates
from newsletter.config import Settings
from newsletter.errors import InputError, NotFound, SelectionError
from newsletter.store import Database
from newsletter.store.content import find_item, list_items, open_jobs, running_ads, used_in_sent
from newsletter.store.db import Row
from newsletter.store.issues import Issue, item_ids_of, last_sent_issue


@dataclass
class Options:
    """What the editor asked for on the command line (None = default)."""

    issue_date: date | None = None
    since: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    categories: list[str] = field(default_factory=list)
    lead: str | None = None
    exclude: list[str] = field(default_factory=list)
    only: list[str] = field(default_factory=list)


@dataclass
class Selection:
    issue_date: date
    window_from: date
    window_to: date
    lead: Row
    articles: list[Row]
    jobs: list[Row]  # each with "is_new"
    ads: list[Row]

    @property
    def counts(self) -> dict[str, int]:
        return {"lead": 1, "articles": len(self.articles),
                "jobs": len(self.jobs), "ads": len(self.ads)}


def select(db: Database, settings: Settings, opts: Options) -> Selection:
    """Pick lead, articles, job ads and ads for an issue dated `opts.issue_date` (default today)."""
    issue_date = opts.issue_date or dates.today(settings.publication.timezone)
    window_from, window_to = _window(db, settings, opts, issue_date)
    if window_from > window_to:
        raise InputError(f"The window {window_from} .. {window_to} is empty - --from must not be after --to")
    candidates = _articles(db, opts, window_from, window_to)
    lead = _lead(db, opts, candidates)
    if lead is None:
        raise SelectionError(
            f"No articles published between {window_from} and {window_to} that were not already sent - "
            "import new articles or widen the window with --since 14d / --from DATE"
        )
    rest = [a for a in candidates if a["id"] != lead["id"]]
    articles = rest[: max(settings.compose.max_articles - 1, 0)]
    jobs = _jobs(db, settings, issue_date, last_sent_issue(db))
    ads = _ads(db, settings, issue_date)
    return Selection(issue_date, window_from, window_to, lead, articles, jobs, ads)


def _window(db: Database, settings: Settings, opts: Options, issue_date: date) -> tuple[date, date]:
    window_to = opts.date_to or issue_date
    if opts.since:
        return dates.parse_since(opts.since, issue_date), window_to
    if opts.date_from:
        return opts.date_from, window_to
    last = last_sent_issue(db)
    if last and last.sent_at:
        sent = dates.parse_datetime(last.sent_at).astimezone(dates.zone(settings.publication.timezone))
        return sent.date(), window_to
    return issue_date - timedelta(days=settings.compose.window_days), window_to


def _articles(db: Database, opts: Options, window_from: date, window_to: date) -> list[Row]:
    """Articles in the window (or exactly the --only ones), newest first, none sent before."""
    if opts.only:
        rows = [find_item(db, "article", ref) for ref in opts.only]
        return sorted(rows, key=lambda r: (r.get("published") or "", r["id"]), reverse=True)
    sent = used_in_sent(db, "article")
    excluded = {find_item(db, "article", ref)["id"] for ref in opts.exclude}
    rows = list_items(db, "article", since=window_from.isoformat(), until=window_to.isoformat())
    wanted = {c.casefold() for c in opts.categories}
    return [
        r for r in rows
        if r["id"] not in sent and r["id"] not in excluded
        and (not wanted or (r.get("category") or "").casefold() in wanted)
    ]


def _lead(db: Database, opts: Options, candidates: list[Row]) -> Row | None:
    if opts.lead:
        try:
            return find_item(db, "article", opts.lead)
        except NotFound:
            raise NotFound(f"--lead {opts.lead}: no article with that id or URL - see 'newsletter articles list'") from None
    with_image = [a for a in candidates if a.get("image")]
    found = with_image or candidates
    return found[0] if found else None


def _jobs(db: Database, settings: Settings, issue_date: date, previous: Issue | None) -> list[Row]:
    """Open job ads: deadline on or after the issue date; without deadline, recent ones only."""
    oldest = (issue_date - timedelta(days=settings.compose.job_max_age_days)).isoformat()
    rows = open_jobs(db, issue_date.isoformat(), oldest, settings.compose.max_jobs)
    before = item_ids_of(db, previous.id, "job") if previous else set()
    return [{**r, "is_new": r["id"] not in before} for r in rows]


def _ads(db: Database, settings: Settings, issue_date: date) -> list[Row]:
    """Ads whose booking covers the issue date."""
    return running_ads(db, issue_date.isoformat(), settings.compose.max_ads)
