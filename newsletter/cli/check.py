"""The preflight check: newsletter check ISSUE."""

from __future__ import annotations

import json
import shutil
from typing import Annotated, Optional

import typer

from newsletter.checks.issue import check_issue, format_table, summary
from newsletter.cli.base import app, command, settings


@command(app)
def check(
    issue: Annotated[str, typer.Argument(help="Issue id or slug.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    spamassassin: Annotated[Optional[bool], typer.Option(
        "--spamassassin/--no-spamassassin", show_default=False,
        help="Score the message with SpamAssassin (default: \\[check] spamassassin).")] = None,
) -> None:
    """Check an issue before sending: subject, HTML, links, legal parts, the .eml, spam score.

    Exits 1 when any check fails. Example: newsletter check 2026-11-24
    """
    report = check_issue(settings(), issue, spamassassin=spamassassin)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        for line in format_table(report, shutil.get_terminal_size((100, 24)).columns):
            typer.echo(line)
        typer.echo(summary(report))
    if report.failed:
        raise typer.Exit(1)
