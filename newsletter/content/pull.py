"""Pulling the configured feeds (`[[feeds]]`) into the store, as the weekly routine does on every
`run-due`: one conditional request per feed (ETag / Last-Modified remembered), a total deadline
per feed, and a feed that fails reported without stopping the others.

    [[feeds]] → download (If-None-Match / If-Modified-Since) → feedparser → import_rows (upsert)

Entries of a `kind = "job"` feed become job ads: title, link, date, and the author as employer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from newsletter import clock
from newsletter.config import Feed, Settings
from newsletter.content import feeds as feed_format
from newsletter.content import ingest
from newsletter.errors import InputError
from newsletter.store import Database, transaction
from newsletter.store.feeds import feed_state, save_feed_state

FEED_DEADLINE = 20  # seconds per feed, the whole download


@dataclass
class FeedResult:
    url: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    not_modified: bool = False
    error: str = ""
    error_is_new: bool = False      # a different error than at the last pull (worth telling)
    recovered: bool = False         # the feed works again after an error
    notes: list[str] = field(default_factory=list)


def pull_feeds(db: Database, settings: Settings) -> list[FeedResult]:
    return [pull(db, feed, settings.path) for feed in settings.feeds]


def pull(db: Database, feed: Feed, resolve=Path) -> FeedResult:
    """One feed; `resolve` turns a feed given as a file's path into the file (relative to the
    config's folder)."""
    state = feed_state(db, feed.url)
    result = FeedResult(feed.url)
    headers = {}
    if state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state.get("last_modified"):
        headers["If-Modified-Since"] = state["last_modified"]
    stamp = clock.stamp()
    try:
        if feed.url.startswith(("http://", "https://")):
            status, data, answer = ingest.download(feed.url, FEED_DEADLINE, headers)
        else:
            status, data, answer = _read_file(resolve(feed.url), state.get("last_modified"))
        if status == 304:
            result.not_modified = True
        else:
            rows, notes = feed_format.parse_feed(data, feed.url)
            raw = [ingest.RawRow(n, _as_job(row) if feed.kind == "job" else row) for n, row in enumerate(rows, 1)]
            report = ingest.import_rows(db, raw, feed.kind, feed.url, skip_invalid=True, notes=notes)
            result.new, result.updated, result.unchanged = report.new, report.updated, report.unchanged
            result.rejected, result.notes = len(report.rejected), report.notes
    except InputError as e:
        result.error = str(e)
        result.error_is_new = result.error != state.get("error")
        with transaction(db):
            save_feed_state(db, feed.url, checked_at=stamp, error=result.error)
        return result
    result.recovered = bool(state.get("error"))
    with transaction(db):
        save_feed_state(db, feed.url, checked_at=stamp, ok_at=stamp, error=None,
                        etag=answer.get("etag", state.get("etag")) if not result.not_modified else state.get("etag"),
                        last_modified=answer.get("last-modified", state.get("last_modified")))
    return result


def _read_file(path: Path, seen: str | None) -> tuple[int, bytes, dict]:
    """A feed kept as a file, answered like a server would: 304 while its mtime is unchanged."""
    try:
        modified = str(path.stat().st_mtime_ns)
        if modified == seen:
            return 304, b"", {"last-modified": modified}
        return 200, path.read_bytes(), {"last-modified": modified}
    except OSError as e:
        raise InputError(f"Cannot read the feed file {path}: {e.strerror} - fix [[feeds]] url") from None


def _as_job(row: dict) -> dict:
    job = {"url": row.get("url"), "title": row.get("title"), "published": row.get("published")}
    if row.get("author"):
        job["employer"] = row["author"]
    return {k: v for k, v in job.items() if v}
