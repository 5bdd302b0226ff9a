"""The outcome of one named preflight check, shared by `checks` (the issue) and `mailrules` (the .eml).

A check returns `Result`s made with `ok`, `warn` or `fail`; `listing` shortens the list of
offending things named in a detail.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    name: str
    status: str  # pass | warn | fail
    detail: str


def ok(name: str, detail: str) -> Result:
    return Result(name, "pass", detail)


def warn(name: str, detail: str) -> Result:
    return Result(name, "warn", detail)


def fail(name: str, detail: str) -> Result:
    return Result(name, "fail", detail)


def listing(things: list[str], limit: int = 3) -> str:
    shown = ", ".join(things[:limit])
    return shown + (f" and {len(things) - limit} more" if len(things) > limit else "")
