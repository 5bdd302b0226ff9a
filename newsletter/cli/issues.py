"""Issue commands: compose, issues list/show, export, and the web archive of sent issues."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from newsletter.cli.base import IssueArg, command, commands, database, group, issue_of, settings

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.store import Database
    from newsletter.store.issues import Issue

app = commands()
issues_app = group(app, "issues", "Composed issues.")
FORMATS = ("html", "mjml", "txt", "eml")


@command(app)
def compose(
    since: Annotated[str | None, typer.Option("--since", help="Window start as a span (14d, 2w) or date.", show_default=False)] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="Window start date (YYYY-MM-DD).", show_default=False)] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Window end date (default: issue date).", show_default=False)] = None,
    issue_date: Annotated[str | None, typer.Option("--date", help="Issue date (default: today; with --replace: the draft's).", show_default=False)] = None,
    category: Annotated[list[str] | None, typer.Option("--category", help="Only articles of this category (repeatable).", show_default=False)] = None,
    lead: Annotated[str | None, typer.Option("--lead", help="Lead article: id or URL.", show_default=False)] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Leave out this article (id or URL; repeatable).", show_default=False)] = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="Use exactly these articles (id or URL; repeatable).", show_default=False)] = None,
    number: Annotated[str | None, typer.Option("--number", help='Issue number, e.g. "4/2024".', show_default=False)] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="Subject line (default: name, number, lead title).", show_default=False)] = None,
    preheader: Annotated[str | None, typer.Option("--preheader", help="Preview text (default: lead teaser).", show_default=False)] = None,
    intro: Annotated[Path | None, typer.Option("--intro", help="Editorial: a text or .html file.", show_default=False)] = None,
    replace: Annotated[str | None, typer.Option("--replace", help="Re-compose this draft (id or slug).", show_default=False)] = None,
    allow_clipping: Annotated[bool, typer.Option("--allow-clipping", help="Save even above the 102 KB clipping budget.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: out/).", show_default=False)] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who composes, for the timeline and four eyes (default: NEWSLETTER_EDITOR or your login name).", show_default=False)] = None,
    another: Annotated[bool, typer.Option("--another", help="Compose a second issue for a day that already has an unsent one.")] = False,
) -> None:
    """Select recent items, render the issue once and save it as a draft with its outputs.

    Example: newsletter compose --since 14d --number "4/2024" --intro editorial.txt
    """
    if since and date_from:
        raise typer.BadParameter("use either --since or --from", param_hint="--since/--from")
    from newsletter import dates
    from newsletter.compose.issue import ComposeRequest
    from newsletter.compose.select import Options
    from newsletter.workflow.compose import compose_issue

    options = Options(
        issue_date=dates.option_date(issue_date, "--date") if issue_date else None,
        since=since,
        date_from=dates.option_date(date_from, "--from") if date_from else None,
        date_to=dates.option_date(date_to, "--to") if date_to else None,
        categories=category or [], lead=lead, exclude=exclude or [], only=only or [],
    )
    s, db = database()
    draft = issue_of(db, replace) if replace else None
    request = ComposeRequest(options, number, subject, preheader, intro, draft, allow_clipping, out, by, another)
    print_compose_result(compose_issue(db, s, request))


def print_compose_result(result) -> None:
    from newsletter import dates

    issue, sel = result.issue, result.selection
    verb = "Re-composed" if result.replaced else "Composed"
    typer.echo(f"{verb} draft {issue.slug} (id {issue.id}): {issue.subject}")
    typer.echo(f"  window   {sel.window_from} .. {sel.window_to}, issue date {dates.german_long(sel.issue_date)}")
    c = sel.counts
    new_jobs = sum(1 for j in sel.jobs if j["is_new"])
    typer.echo(f"  items    lead {c['lead']}, articles {c['articles']}, job ads {c['jobs']} ({new_jobs} neu), ads {c['ads']}")
    typer.echo(f"  size     HTML part {result.html_size:,} of {result.budget:,} bytes ({result.html_size / result.budget:.0%})")
    for note in result.notes:
        typer.echo(f"Note: {note}", err=True)
    for warning in result.warnings:
        typer.echo(f"Warning: {warning}", err=True)
    typer.echo(f"  files    {result.paths['html'].parent}/issue.{{mjml,html,txt,eml}}")


@command(issues_app, "list")
def issues_list() -> None:
    """List issues, newest first. Example: newsletter issues list"""
    from newsletter.store.issues import list_issues

    _, db = database()
    rows = list_issues(db)
    for r in rows:
        size = f"{r['html_size'] / 1000:.0f} KB" if r["html_size"] else "-"
        typer.echo(f"{r['id']:>4}  {r['slug']:<14} {r['status']:<9} {r['issue_date']}  {r['items']:>3} items  {size:>6}  {r['subject']}")
    if not rows:
        typer.echo("No issues yet - compose one with 'newsletter compose'.", err=True)


@command(issues_app, "show")
def issues_show(issue: IssueArg) -> None:
    """Show an issue's details and its frozen item list. Example: newsletter issues show latest"""
    from newsletter.compose.issue import show

    s, db = database()
    row = issue_of(db, issue)
    items = show(db, row)
    typer.echo(f"Issue {row.slug} (id {row.id}), {row.status}")
    for label, key in (("Number", "number"), ("Date", "issue_date"), ("Subject", "subject"),
                       ("Preheader", "preheader"), ("Window", "window_from"), ("Sent", "sent_at")):
        value = getattr(row, key)
        if key == "window_from" and value:
            value = f"{row.window_from} .. {row.window_to}"
        if key == "sent_at" and value:
            from newsletter.delivery.schedule import local_label

            value = local_label(s, value)
        if value:
            typer.echo(f"  {label + ':':<11}{value}")
    typer.echo(f"  {'Size:':<11}{row.html_size:,} bytes (HTML part, encoded)")
    if row.approval:
        typer.echo(f"  {'Approval:':<11}{row.approval} by {row.approval_by}"
                   + (f" ({row.approval_note})" if row.approval_note else ""))
    section = None
    for entry in items:
        if entry["section"] != section:
            section = entry["section"]
            typer.echo(f"{section}:")
        new = " [neu]" if entry["is_new"] else ""
        typer.echo(f"  {entry['kind']} {entry['item']['id']}: {entry['item']['title']}{new}  <{entry['item']['url']}>")
    _timeline(db, s, row)


def _timeline(db: Database, s: Settings, row: Issue) -> None:
    """composed (by whom, when), review sent, approved or held (by whom), sent, with counts."""
    from newsletter import dates
    from newsletter.store.timeline import events

    happened = events(db, row.id)
    if not happened:
        return
    typer.echo("timeline:")
    for event in happened:
        when = dates.terminal_time(event["at"], s.publication.timezone)
        by = f" by {event['actor']}" if event["actor"] else ""
        detail = f": {event['detail']}" if event["detail"] else ""
        typer.echo(f"  {when}  {event['kind']}{by}{detail}")


@command(app)
def export(
    issue: IssueArg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="html, mjml, txt or eml.")] = "html",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).", show_default=False)] = None,
) -> None:
    """Export a stored issue (personalised for a sample reader). Example: newsletter export latest -f eml -o issue.eml"""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} - use one of {', '.join(FORMATS)}", param_hint="--format")
    from newsletter import files
    from newsletter.errors import InputError
    from newsletter.mail.export import export as export_issue

    s, db = database()
    data = export_issue(s, issue_of(db, issue), fmt)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        files.atomic_write(output, data)
    except OSError as e:
        raise InputError(f"Cannot write {output}: {e.strerror} - choose another path") from None
    typer.echo(f"Wrote {output} ({len(data):,} bytes)", err=True)


@command(app)
def archive(
    out: Annotated[Path | None, typer.Option("--out", help="Folder to write (default: [archive] out_dir, archive/).", show_default=False)] = None,
) -> None:
    """Build the web archive of sent issues: index.html, one page per issue and feed.xml (RSS).

    Example: newsletter archive --out /var/www/archive
    """
    from newsletter.publish.archive import build

    s, db = database(settings(**{"archive.out_dir": (str(out) if out else None, "--out")}))
    result = build(db, s)
    typer.echo(f"Wrote {len(result.issues)} issue page(s), index.html and feed.xml to {result.out_dir}")
    if not s.archive.enabled:
        typer.echo("Note: [archive] enabled is false, so issues do not link to the archive yet.", err=True)
