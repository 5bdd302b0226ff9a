"""RSS 2.0 and Atom entries as article rows (feedparser does the dialects and the repairs).

Feeds in the wild are often not quite XML: HTML entities such as `&auml;` or `&mdash;`, a bare
`&` in a title. feedparser recovers them; what it could read is imported, and the import says
what had to be repaired. A title or summary marked as text (Atom `type="text"`) is text: a
`<blink>` in it is the word, not a tag.
"""

from __future__ import annotations

import calendar
import html
from datetime import UTC, datetime

import feedparser

from newsletter.errors import InputError


def parse_feed(data: bytes, name: str) -> tuple[list[dict], list[str]]:
    """Article dicts (field names as in the store) for each entry, and notes on repairs."""
    feed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=True)
    problem = feed.get("bozo_exception")
    if not feed.entries and (not feed.get("version") or problem):
        where = f" at line {problem.getLineNumber()}" if hasattr(problem, "getLineNumber") else ""
        reason = f" ({_reason(problem)}{where})" if problem else ""
        raise InputError(f"{name} is not an RSS or Atom feed{reason} - check the file or address")
    notes = []
    if problem:
        notes.append(f"{name}: the feed is not well-formed XML ({_reason(problem)}); "
                     f"read {len(feed.entries)} entries the way a feed reader would - tell the site's maintainers")
    if not feed.entries:
        notes.append(f"{name}: the feed has no entries")
    return [_entry(e) for e in feed.entries], notes


def _reason(problem) -> str:
    return getattr(problem, "getMessage", lambda: str(problem))()


def _text(e, key: str) -> str | None:
    """A field's value; one marked as plain text is escaped, so that cleaning it as HTML gives
    back exactly the text."""
    value = e.get(key)
    detail = e.get(f"{key}_detail") or {}
    if value and detail.get("type") == "text/plain":
        return html.escape(value, quote=False)
    return value


def _entry(e) -> dict:
    row = {
        "url": e.get("link"),
        "title": _text(e, "title"),
        "teaser": _text(e, "summary"),
        "author": e.get("author"),
    }
    content = e.get("content")
    if content:
        body = content[0]
        row["body"] = html.escape(body.get("value", "")) if body.get("type") == "text/plain" else body.get("value")
    stamp = e.get("published_parsed") or e.get("updated_parsed")
    if stamp:
        row["published"] = datetime.fromtimestamp(calendar.timegm(stamp), UTC).isoformat()
    tags = e.get("tags")
    if tags:
        row["category"] = tags[0].get("term")
    image = _image(e)
    if image:
        row["image"] = image
        row["image_alt"] = e.get("media_description") or e.get("title")
        credit = e.get("media_credit")
        if isinstance(credit, list) and credit:
            row["image_credit"] = credit[0].get("content")
    return {k: v for k, v in row.items() if v}


def _image(e) -> str | None:
    for media in (e.get("media_content") or []) + (e.get("media_thumbnail") or []):
        if media.get("url") and media.get("medium", "image") == "image":
            return media["url"]
    for link in e.get("links") or []:
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            return link.get("href")
    return None
