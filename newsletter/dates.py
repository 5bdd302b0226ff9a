"""Dates as editors write them and as German readers expect them."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
          "Oktober", "November", "Dezember")


def german_long(d: date | str) -> str:
    """'19. Juni 2020'."""
    d = _as_date(d)
    return f"{d.day}. {MONTHS[d.month - 1]} {d.year}"


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


# Dates an option may name: wide enough for any archive, narrow enough that a window of
# years around them stays a valid date (date.min/max are year 1 and 9999).
EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)


def parse_since(text: str, ref: date, option: str = "--since") -> date:
    """'14d' or '2w' back from `ref`, or an explicit date."""
    m = _SINCE.match(text.strip().lower())
    if m:
        days = int(m[1]) * (7 if m[2] == "w" else 1)
        if days > (ref - EARLIEST).days:
            raise InputError(f"{option} {text!r} reaches back before {EARLIEST.year} - give a shorter span or a date")
        return ref - timedelta(days=days)
    try:
        return _in_range(parse_date(text), option, text)
    except ValueError:
        raise InputError(f"{option} {text!r} is neither a span like 14d / 2w nor a date YYYY-MM-DD") from None


def option_date(text: str, option: str) -> date:
    try:
        return _in_range(parse_date(text), option, text)
    except ValueError:
        raise InputError(f"{option} {text!r} is not a date - write YYYY-MM-DD or DD.MM.YYYY") from None


def _in_range(d: date, option: str, text: str) -> date:
    if not EARLIEST <= d <= LATEST:
        raise InputError(f"{option} {text!r} is outside {EARLIEST.year}..{LATEST.year} - check the year")
    return d
