"""The outcome of the preflight checks: one `CheckResult` per named check, a `CheckReport` of them all,
and the report as a table.

A check returns `CheckResult`s made with `ok`, `warn` or `fail`; `listing` shortens the list of
offending things named in a detail.
"""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass, field

from newsletter.store.issues import Issue


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # pass | warn | fail
    detail: str


def ok(name: str, detail: str) -> CheckResult:
    return CheckResult(name, "pass", detail)


def warn(name: str, detail: str) -> CheckResult:
    return CheckResult(name, "warn", detail)


def fail(name: str, detail: str) -> CheckResult:
    return CheckResult(name, "fail", detail)


def listing(things: list[str], limit: int = 3) -> str:
    shown = ", ".join(things[:limit])
    return shown + (f" and {len(things) - limit} more" if len(things) > limit else "")


@dataclass
class CheckReport:
    issue: Issue
    results: list[CheckResult] = field(default_factory=list)

    def _with(self, status: str) -> list[CheckResult]:
        return [r for r in self.results if r.status == status]

    @property
    def passed(self) -> list[CheckResult]:
        return self._with("pass")

    @property
    def warnings(self) -> list[CheckResult]:
        return self._with("warn")

    @property
    def failed(self) -> list[CheckResult]:
        return self._with("fail")

    def as_dict(self) -> dict:
        return {"issue": self.issue.slug, "passed": len(self.passed), "warnings": len(self.warnings),
                "failed": len(self.failed), "results": [asdict(r) for r in self.results]}


LABELS = {"pass": "pass", "warn": "WARN", "fail": "FAIL"}


def format_table(report: CheckReport, width: int = 100) -> list[str]:
    """Aligned rows 'status  name  detail', details wrapped to `width` under their column."""
    name_width = max((len(r.name) for r in report.results), default=0)
    indent = 6 + name_width + 2
    lines = []
    for r in report.results:
        head = f"{LABELS[r.status]:<4}  {r.name:<{name_width}}  "
        wrapped = textwrap.wrap(r.detail, max(width - indent, 30), break_on_hyphens=False) or [""]
        lines.append(head + wrapped[0])
        lines.extend(" " * indent + rest for rest in wrapped[1:])
    return lines


def summary(report: CheckReport) -> str:
    """'N passed, N warnings, N failed', with what to do when something failed."""
    n_warn = len(report.warnings)
    line = (f"{len(report.passed)} passed, {n_warn} warning{'s' if n_warn != 1 else ''}, "
            f"{len(report.failed)} failed")
    if report.failed:
        line += (" - not ready to send: fix the FAIL rows above "
                 f"(all details: newsletter check {report.issue.slug} --json)")
    return line
