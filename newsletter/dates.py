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


def terminal_time(moment: datetime | str, tz: str) -> str:
    """A moment as the command line shows it, in local time: '2026-12-03 14:01 CET'."""
    when = parse_datetime(moment) if isinstance(moment, str) else moment
    return when.astimezone(zone(tz)).strftime("%Y-%m-%d %H:%M %Z")


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


_GERMAN_TIME = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def parse_local_time(text: str, tz: str) -> datetime:
    """A wall-clock time in `tz` as an aware datetime: "2026-12-10 08:00", "2026-12-10T08:00",
    "10.12.2026 08:00", or ISO 8601 with its own offset. A time the switch to summer time skips
    is the moment the clock would show had it not jumped; one it shows twice is the first.
    ValueError otherwise."""
    text = str(text).strip()
    m = _GERMAN_TIME.match(text)
    if m:
        local = datetime(int(m[3]), int(m[2]), int(m[1]), int(m[4]), int(m[5]), int(m[6] or 0))
    else:
        if len(text) <= 10:
            raise ValueError(text)
        local = datetime.fromisoformat(text.replace(" ", "T", 1))
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone(tz))
        local = datetime.fromtimestamp(local.timestamp(), local.tzinfo)
    return local


# --- the weekly routine: "Thu 07:00", "2h" --------------------------------------------------

WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6,
            "mo": 0, "di": 1, "mi": 2, "do": 3, "fr": 4, "sa": 5, "so": 6}
_WEEKLY = re.compile(r"^([A-Za-z]+)\.?\s+(\d{1,2}):(\d{2})$")
_DURATION = re.compile(r"^(\d+)\s*(m|min|h|d)$")


def parse_weekly(text: str) -> tuple[int, int, int]:
    """'Thu 07:00' (or German 'Do 07:00', or a full English name) as (weekday 0=Mon, hour,
    minute); ValueError otherwise."""
    m = _WEEKLY.match(text.strip())
    if not m:
        raise ValueError(text)
    name, hour, minute = m[1].lower(), int(m[2]), int(m[3])
    day = WEEKDAYS.get(name[:3] if len(name) > 3 else name)
    if day is None or len(name) > 3 and name not in ("monday", "tuesday", "wednesday", "thursday", "friday",
                                                     "saturday", "sunday") or hour > 23 or minute > 59:
        raise ValueError(text)
    return day, hour, minute


def parse_duration(text: str) -> timedelta:
    """'30m', '2h', '1d' as a timedelta; ValueError otherwise."""
    m = _DURATION.match(text.strip().lower())
    if not m:
        raise ValueError(text)
    unit = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days"}[m[2]]
    return timedelta(**{unit: int(m[1])})


def occurrence(weekly: str, tz: str, day: date) -> datetime:
    """The moment `weekly`'s wall-clock time falls on `day` in `tz` (aware). A time that a
    switch to summer time skips (02:30 on the last Sunday in March) is the moment the clock
    would show it had it not jumped (03:30); a time that happens twice is its first."""
    _, hour, minute = parse_weekly(weekly)
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone(tz))
    return datetime.fromtimestamp(local.timestamp(), local.tzinfo)


def last_occurrence(weekly: str, tz: str, now: datetime) -> datetime:
    """The latest moment at or before `now` that matches `weekly` ('Thu 07:00') in `tz`."""
    weekday = parse_weekly(weekly)[0]
    today_ = now.astimezone(zone(tz)).date()
    for back in range(8):
        day = today_ - timedelta(days=back)
        if day.weekday() == weekday:
            moment = occurrence(weekly, tz, day)
            if moment <= now:
                return moment
    raise AssertionError("a weekday recurs within eight days")


def next_occurrence(weekly: str, tz: str, after: datetime) -> datetime:
    """The first moment at or after `after` that matches `weekly` in `tz` (at: on the night
    clocks go forward, 02:30 and 03:30 are the same moment)."""
    weekday = parse_weekly(weekly)[0]
    start = after.astimezone(zone(tz)).date()
    for ahead in range(9):
        day = start + timedelta(days=ahead)
        if day.weekday() == weekday:
            moment = occurrence(weekly, tz, day)
            if moment >= after:
                return moment
    raise AssertionError("a weekday recurs within eight days")
