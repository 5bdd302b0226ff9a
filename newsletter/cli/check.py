"""The preflight check: newsletter check ISSUE."""

from __future__ import annotations

import shutil
from typing import Annotated

import typer

from newsletter.cli.base import IssueArg, JsonOpt, command, commands, database, issue_of, settings

app = commands()
@command(app)
def check(
    issue: IssueArg,
    as_json: JsonOpt = False,
    spamassassin: Annotated[bool | None, typer.Option(
        "--spamassassin/--no-spamassassin", show_default=False,
        help="Score the message with SpamAssassin (default: [check] spamassassin).")] = None,
    contrast: Annotated[bool | None, typer.Option(
        "--contrast/--no-contrast", show_default=False,
        help="Measure text contrast in Chromium, light and dark (default: [check] contrast).")] = None,
) -> None:
    """Check an issue before sending: subject, HTML, links, legal parts, the .eml, spam score, contrast.

    Exits 1 when any check fails. Example: newsletter check latest
    """
    import json

    from newsletter.checks.result import format_table, summary
    from newsletter.checks.run import run_checks

    s = settings(**{"check.spamassassin": (spamassassin, "--spamassassin"), "check.contrast": (contrast, "--contrast")})
    s.require_config()
    s, db = database(s)
    report = run_checks(db, s, issue_of(db, issue))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        for line in format_table(report, shutil.get_terminal_size((100, 24)).columns):
            typer.echo(line)
        typer.echo(summary(report))
    if report.failed:
        raise typer.Exit(1)
