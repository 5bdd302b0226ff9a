"""Dates as editors write them and as German readers expect them."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date

from newsletter import clock
from newsletter.errors import ConfigError, InputError

_GERMAN = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_SINCE = re.compile(r"^(\d+)\s*([dw])$")


def parse_date(text: str) -> date:
    """ISO 8601 date (or the date part of a datetime), or German DD.MM.YYYY; ValueError otherwise."""
    text = str(text).strip()
    m = _GERMAN.match(text)
    if m:
        return date(int(m[3]), int(m[2]), int(m[1]))
    if len(text) > 10:
        return parse_datetime(text).date()
    return date.fromisoformat(text)


def parse_datetime(text: str) -> datetime:
    """ISO 8601 datetime or date ('Z' accepted); ValueError otherwise."""
    text = str(text).strip()
    if len(text) <= 10:
        d = parse_date(text)
        return datetime(d.year, d.month, d.day)
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))


def normalise_published(text: str) -> str:
    """Keep what the editor gave (date or datetime) in one canonical ISO form."""
    text = str(text).strip()
    if _GERMAN.match(text) or len(text) <= 10:
        return parse_date(text).isoformat()
    return parse_datetime(text).isoformat()


def german_long(d: date | str) -> str:
    """'19. Juni 2020'."""
    return format_date(_as_date(d), "d. MMMM y", locale="de")


def german_short(d: date | str) -> str:
    """'12.05.2024'."""
    return _as_date(d).strftime("%d.%m.%Y")


def _as_date(d: date | str) -> date:
    return parse_date(d) if isinstance(d, str) else d


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"Unknown timezone {name!r} - use an IANA name such as Europe/Berlin") from None


def today(tz: str) -> date:
    """Today's date in the timezone `tz`, by the one clock."""
    return clock.now().astimezone(zone(tz)).date()


def parse_since(text: str, ref: date) -> date:
    """'14d' or '2w' back from `ref`, or an explicit date."""
    m = _SINCE.match(text.strip().lower())
    if m:
        days = int(m[1]) * (7 if m[2] == "w" else 1)
        return ref - timedelta(days=days)
    try:
        return parse_date(text)
    except ValueError:
        raise InputError(f"--since {text!r} is neither a span like 14d / 2w nor a date YYYY-MM-DD") from None


def option_date(text: str, option: str) -> date:
    try:
        return parse_date(text)
    except ValueError:
        raise InputError(f"{option} {text!r} is not a date - write YYYY-MM-DD or DD.MM.YYYY") from None
