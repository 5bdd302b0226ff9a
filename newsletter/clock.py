"""The one clock every stage asks: the time of day, the monotonic time of waits, and sleeping.

Nothing else in the package reads the system clock (no `datetime.now()`, `time.time()`,
`time.monotonic()` or `time.sleep()` for anything a reader or a test could see), so the whole
product runs at any date one sets here:

- `NEWSLETTER_NOW=2027-03-28T00:30:00+01:00` (or a date, taken as noon UTC) starts this
  process's clock at that moment; from there it runs on in real time. CI runs the suite at
  other dates this way, and subprocesses inherit it.
- Tests install a `FakeClock` with `use()`: it stands still until told to move, and a `sleep`
  on it moves it at once and is recorded, so waits are exact and nothing really sleeps.

Network timeouts (sockets, HTTP, SMTP) stay on real time: they guard against a peer, not a date.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from newsletter.errors import ConfigError

ENV = "NEWSLETTER_NOW"


class Clock(Protocol):
    def now(self) -> datetime: ...
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The machine's clock, optionally moved by a fixed offset (NEWSLETTER_NOW)."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock for tests: still until `advance`d; `sleep` advances it and is recorded."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._mono = 1000.0
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
        self.advance(seconds=max(seconds, 0))

    def advance(self, **delta: float) -> datetime:
        """Move on by a timedelta's keywords (seconds=, minutes=, hours=, days=)."""
        step = timedelta(**delta)
        with self._lock:
            self._now += step
            self._mono += step.total_seconds()
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to `when` (forwards or back; the monotonic time only ever moves forwards)."""
        with self._lock:
            forward = (when.astimezone(UTC) - self._now).total_seconds()
            self._now = when.astimezone(UTC)
            self._mono += max(forward, 0)


_current: Clock | None = None
_lock = threading.Lock()


def parse(text: str) -> datetime:
    """An ISO 8601 datetime with offset ('Z' accepted), or a date (noon UTC)."""
    value = text.strip()
    try:
        if len(value) <= 10:
            d = date.fromisoformat(value)
            return datetime(d.year, d.month, d.day, 12, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{ENV}={text!r} is not a date or datetime - write e.g. "
                          "2027-03-28 or 2027-03-28T08:00:00+02:00, or unset it") from None
    if moment.tzinfo is None:
        raise ConfigError(f"{ENV}={text!r} has no UTC offset - add one, e.g. +01:00 or Z")
    return moment


def current() -> Clock:
    """The clock in use: the installed one, else the system clock (moved by NEWSLETTER_NOW)."""
    global _current
    with _lock:
        if _current is None:
            start = os.environ.get(ENV, "").strip()
            offset = parse(start) - datetime.now(UTC) if start else timedelta(0)
            _current = SystemClock(offset)
        return _current


def moved_note() -> str | None:
    """The line a command prints when NEWSLETTER_NOW moves its clock (None when it does not), so
    that a run at another date is never silent."""
    start = os.environ.get(ENV, "").strip()
    if not start:
        return None
    return f"Note: {ENV}={start} - this run's clock starts at that moment, not at the real time (unset {ENV} for the real time)"


@contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """Install `clock` for the block (tests)."""
    global _current
    with _lock:
        before, _current = _current, clock
    try:
        yield clock
    finally:
        with _lock:
            _current = before


def now() -> datetime:
    """The current moment, timezone-aware (UTC)."""
    return current().now()


def stamp() -> str:
    """Now as stored in *_at columns: UTC, ISO 8601, whole seconds."""
    return now().isoformat(timespec="seconds")


def timestamp() -> float:
    """Now as seconds since the epoch."""
    return now().timestamp()


def local(tz: str | ZoneInfo) -> datetime:
    """Now in the timezone `tz` (an IANA name or a ZoneInfo)."""
    return now().astimezone(ZoneInfo(tz) if isinstance(tz, str) else tz)


def monotonic() -> float:
    """Seconds for measuring waits and rates; only differences mean anything."""
    return current().monotonic()


def sleep(seconds: float) -> None:
    """Wait `seconds` (a FakeClock moves on at once instead)."""
    current().sleep(seconds)
