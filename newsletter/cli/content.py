"""Content commands: init, demo, import, and listing articles, job ads and ads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from newsletter import config, dates, store
from newsletter.content import ingest
from newsletter.cli.base import ads_app, app, articles_app, command, database, jobs_app, state
from newsletter.cli.issues import print_compose_result
from newsletter.errors import InputError

Kind = typer.Option("--kind", "-k", help="article, job or ad (guessed from the fields when omitted)")


@command(app)
def init(
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing newsletter.toml.")] = False,
) -> None:
    """Write a commented newsletter.toml and create the database.

    Example: newsletter init && $EDITOR newsletter.toml
    """
    path = state.config or config.DEFAULT_CONFIG
    if path.exists() and not force:
        raise InputError(f"{path} already exists - edit it, or pass --force to start over")
    config.write_default(path)
    s = config.load(config=path, db=state.db)
    store.open_db(s.db_path)
    typer.echo(f"Wrote {path} and created {s.db_path}.")
    typer.echo("Next: fill [publication] and [impressum] in the config, then 'newsletter import FILE'.")


@command(app)
def demo(
    folder: Annotated[Path, typer.Argument(help="Folder for the demo config, database and output.")] = Path("demo"),
    date: Annotated[Optional[str], typer.Option("--date", help="Issue date (default: today).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild an existing demo folder.")] = False,
) -> None:
    """Build a demo: config, database with German demo content, and a composed issue.

    Example: newsletter demo && open demo/out/*/issue.html
    """
    from newsletter import demo as demo_module

    issue_date = dates.option_date(date, "--date") if date else None
    result = demo_module.create(folder, issue_date, force=force)
    typer.echo(f"Demo ready in {folder}/ (config: {folder}/newsletter.toml)")
    print_compose_result(result)
    typer.echo(f"Try: cd {folder} && newsletter issues show {result.issue['slug']}")


@command(app, "import")
def import_(
    source: Annotated[str, typer.Argument(help="JSON, JSON-lines, CSV or RSS/Atom file, or an https URL.")],
    kind: Annotated[Optional[str], Kind] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Import the valid rows and report the rest.")] = False,
) -> None:
    """Import articles, job ads or ads; upserts by url (importing twice changes nothing).

    Example: newsletter import artikel.csv --kind article
    """
    if kind is not None and kind not in store.KINDS:
        raise typer.BadParameter(f"{kind!r} - use article, job or ad", param_hint="--kind")
    _, db = database()
    report = ingest.import_source(db, source, kind, skip_invalid)
    for rejected in report.rejected:
        typer.echo(f"{report.source} {rejected}", err=True)
    if report.rejected and not skip_invalid:
        raise InputError(
            f"{report.source}: {len(report.rejected)} invalid row(s), nothing imported - "
            "fix them, or pass --skip-invalid to import the valid rows"
        )
    if report.ignored_fields:
        typer.echo(f"Ignored unknown fields: {', '.join(report.ignored_fields)}", err=True)
    typer.echo(
        f"{report.source} ({report.kind}s): {report.new} new, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.rejected)} rejected"
    )


SinceOpt = typer.Option("--since", help="Only items dated on/after this date (YYYY-MM-DD) or span (14d).")
UntilOpt = typer.Option("--until", help="Only items dated on/before this date.")
JsonOpt = typer.Option("--json", help="Print JSON instead of a table.")


def _list(kind: str, since: str | None, until: str | None, as_json: bool, category: str | None = None) -> None:
    s, db = database()
    ref = dates.today(s.publication.timezone)
    since_d = dates.parse_since(since, ref).isoformat() if since else None
    until_d = dates.option_date(until, "--until").isoformat() if until else None
    rows = store.list_items(db, kind, since_d, until_d, category)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    columns = {"article": ("id", "published", "category", "title"),
               "job": ("id", "published", "deadline", "employer", "title"),
               "ad": ("id", "starts", "ends", "advertiser", "title")}[kind]
    for row in rows:
        typer.echo("  ".join(str((row.get(c) or "-"))[:10] if c in ("published", "starts", "ends", "deadline")
                             else str(row.get(c) or "-") for c in columns))
    typer.echo(f"{len(rows)} {store.TABLES[kind]}", err=True)


@command(articles_app, "list")
def articles_list(
    since: Annotated[Optional[str], SinceOpt] = None,
    until: Annotated[Optional[str], UntilOpt] = None,
    category: Annotated[Optional[str], typer.Option("--category", help="Only this category.")] = None,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """List articles, newest first. Example: newsletter articles list --since 14d"""
    _list("article", since, until, as_json, category)


@command(jobs_app, "list")
def jobs_list(
    since: Annotated[Optional[str], SinceOpt] = None,
    until: Annotated[Optional[str], UntilOpt] = None,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """List job ads, newest first. Example: newsletter jobs list --since 60d"""
    _list("job", since, until, as_json)


@command(ads_app, "list")
def ads_list(
    since: Annotated[Optional[str], typer.Option("--since", help="Only ads starting on/after this date or span.")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="Only ads starting on/before this date.")] = None,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """List ads by start date. Example: newsletter ads list --json"""
    _list("ad", since, until, as_json)
