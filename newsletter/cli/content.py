"""Content commands: init, demo, import, and listing articles, job ads and ads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.base import EncodingOpt, JsonOpt, SinceOpt, UntilOpt, command, commands, database, group, state

app = commands()
articles_app = group(app, "articles", "Articles in the store.")
jobs_app = group(app, "jobs", "Job ads in the store.")
ads_app = group(app, "ads", "Paid ads (Anzeigen) in the store.")
KINDS = ("article", "job", "ad")


@command(app)
def init(
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing newsletter.toml.")] = False,
) -> None:
    """Write a commented newsletter.toml and create the database (whichever is missing).

    Example: newsletter init && $EDITOR newsletter.toml (another database: newsletter --db other.db init).
    With --config or NEWSLETTER_CONFIG naming an existing file, only its database is created.
    """
    from newsletter import config
    from newsletter.errors import InputError
    from newsletter.store import open_db

    path = config.config_target(state.config)
    wrote = not path.exists() or force
    if wrote:
        try:
            config.write_default(path)
        except OSError as e:
            raise InputError(f"Cannot write {path}: {e.strerror} - run it in a folder you can write to") from None
    s = config.load(config=path, db=state.db)
    created = not s.db_path.exists()
    if not (wrote or created):
        raise InputError(f"{path} and {s.db_path} exist already - edit the config, or pass --force to "
                         "write a fresh one")
    open_db(s.db_path, create=True).close()
    typer.echo(f"{'Wrote' if wrote else 'Kept'} {path}; {'created' if created else 'kept'} {s.db_path}.")
    if wrote:
        typer.echo("Next: fill [publication] and [impressum] in the config, then 'newsletter import FILE'.")


@command(app)
def demo(
    folder: Annotated[Path, typer.Argument(help="Folder for the demo config, database and output.")] = Path("demo"),
    date: Annotated[str | None, typer.Option("--date", help="Issue date (default: today).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild an existing demo folder.")] = False,
) -> None:
    """Build a demo: config, database with German demo content, and a composed issue.

    Example: newsletter demo && cd demo && newsletter preview latest
    """
    from newsletter import dates
    from newsletter import demo as demo_module
    from newsletter.cli.issues import print_compose_result

    issue_date = dates.option_date(date, "--date") if date else None
    result = demo_module.create(folder, issue_date, force=force)
    typer.echo(f"Demo ready in {folder}/ (config: {folder}/newsletter.toml)")
    print_compose_result(result)
    typer.echo(f"Next: cd {folder} && newsletter preview latest  (or follow the README's tour)")


@command(app, "import")
def import_(
    source: Annotated[str, typer.Argument(help="JSON, JSON-lines, CSV or RSS/Atom file, or an https URL.")],
    kind: Annotated[str | None, typer.Option("--kind", "-k", help="article, job or ad (guessed from the fields when omitted)", show_default=False)] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Import the valid rows and report the rest.")] = False,
    encoding: EncodingOpt = None,
    upgrade_http: Annotated[bool, typer.Option("--upgrade-http", help="Take plain http:// links as https:// (for sites that serve the same pages over https).")] = False,
) -> None:
    """Import articles, job ads or ads; upserts by url (importing twice changes nothing).

    Example: newsletter import artikel.csv --kind article
    """
    if kind is not None and kind not in KINDS:
        raise typer.BadParameter(f"{kind!r} - use article, job or ad", param_hint="--kind")
    from newsletter.content import ingest
    from newsletter.errors import InputError

    _, db = database()
    report = ingest.import_source(db, source, kind, skip_invalid, encoding, upgrade_http=upgrade_http)
    for note in report.notes:
        typer.echo(note, err=True)
    for rejected in report.rejected[:20]:
        typer.echo(f"{report.source} {rejected}", err=True)
    if len(report.rejected) > 20:
        typer.echo(f"{report.source}: {len(report.rejected) - 20} more invalid rows", err=True)
    if report.rejected and not skip_invalid:
        raise InputError(report.refusal())
    if report.ignored_fields:
        from newsletter.checks.result import listing

        shown = [name[:40] + ("…" if len(name) > 40 else "") for name in report.ignored_fields]
        typer.echo(f"Ignored unknown fields: {listing(shown, 10)}", err=True)
    typer.echo(
        f"{report.source} ({report.kind}s): {report.new} new, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.rejected)} rejected"
    )


def _list(kind: str, since: str | None, until: str | None, as_json: bool, category: str | None = None) -> None:
    import json

    from newsletter import dates
    from newsletter.store.content import TABLES, list_items

    s, db = database()
    ref = dates.today(s.publication.timezone)
    since_d = dates.parse_since(since, ref).isoformat() if since else None
    until_d = dates.option_date(until, "--until").isoformat() if until else None
    rows = list_items(db, kind, since_d, until_d, category)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    columns = {"article": ("id", "published", "category", "title"),
               "job": ("id", "published", "deadline", "employer", "title"),
               "ad": ("id", "starts", "ends", "advertiser", "title")}[kind]
    for row in rows:
        typer.echo("  ".join(str(row.get(c) or "-")[:10] if c in ("published", "starts", "ends", "deadline")
                             else str(row.get(c) or "-") for c in columns))
    typer.echo(f"{len(rows)} {TABLES[kind]}", err=True)


@command(articles_app, "list")
def articles_list(
    since: SinceOpt = None,
    until: UntilOpt = None,
    category: Annotated[str | None, typer.Option("--category", help="Only this category.", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """List articles, newest first. Example: newsletter articles list --since 14d"""
    _list("article", since, until, as_json, category)


@command(jobs_app, "list")
def jobs_list(since: SinceOpt = None, until: UntilOpt = None, as_json: JsonOpt = False) -> None:
    """List job ads, newest first. Example: newsletter jobs list --since 60d"""
    _list("job", since, until, as_json)


@command(ads_app, "list")
def ads_list(since: SinceOpt = None, until: UntilOpt = None, as_json: JsonOpt = False) -> None:
    """List ads by start date (--since/--until: the start date). Example: newsletter ads list --json"""
    _list("ad", since, until, as_json)
