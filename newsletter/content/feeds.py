"""RSS 2.0 and Atom entries as article rows (feedparser does the dialects)."""

from __future__ import annotations

import calendar
import xml.sax
from datetime import datetime, timezone

import feedparser

from newsletter.errors import InputError


def parse_feed(data: bytes, name: str) -> list[dict]:
    """Article dicts (field names as in the store) for each entry of the feed."""
    feed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=True)
    problem = feed.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXException) or (problem and not feed.entries):
        where = ""
        if hasattr(problem, "getLineNumber"):
            where = f" at line {problem.getLineNumber()}"
        raise InputError(f"{name} is not a well-formed RSS/Atom feed ({_reason(problem)}{where}) - check the file")
    if not feed.entries and not feed.get("feed"):
        raise InputError(f"{name} has no RSS or Atom entries - is it a feed?")
    return [_entry(e) for e in feed.entries]


def _reason(problem) -> str:
    return getattr(problem, "getMessage", lambda: str(problem))()


def _entry(e) -> dict:
    row = {
        "url": e.get("link"),
        "title": e.get("title"),
        "teaser": e.get("summary"),
        "author": e.get("author"),
    }
    content = e.get("content")
    if content:
        row["body"] = content[0].get("value")
    stamp = e.get("published_parsed") or e.get("updated_parsed")
    if stamp:
        row["published"] = datetime.fromtimestamp(calendar.timegm(stamp), timezone.utc).isoformat()
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
