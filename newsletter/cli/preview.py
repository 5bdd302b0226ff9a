"""Web commands: preview (a local page with live reload, or screenshots) and archive."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated, Optional

import typer

from newsletter.publish import archive as web_archive
from newsletter.web import preview as previewing
from newsletter.cli.base import app, command, database, settings
from newsletter.web.screenshots import screenshots


@command(app)
def preview(
    issue: Annotated[Optional[str], typer.Argument(help="Issue id or slug (default: the latest draft).", show_default=False)] = None,
    port: Annotated[Optional[int], typer.Option("--port", min=0, max=65535, help="Port (default: preview.port in newsletter.toml, 8025; 0 = any free one).", show_default=False)] = None,
    as_email: Annotated[Optional[str], typer.Option("--as", help="Personalise for this subscriber (default: a sample reader).", show_default=False)] = None,
    no_open: Annotated[bool, typer.Option("--no-open", help="Print the address, do not open a browser.")] = False,
    screenshot: Annotated[Optional[Path], typer.Option("--screenshot", help="Write desktop.png, mobile.png and dark.png into this folder and exit.", show_default=False)] = None,
) -> None:
    """Show an issue in the browser: 600/375 px, light/dark, text part, headers, size and items.

    A draft is re-composed and the page reloads itself when a template, the config or the database changes.

    Example: newsletter preview --as erika@example.org
    """
    s = settings()
    if screenshot is not None:
        for path in screenshots(previewing.load_view(s, issue, as_email).html, screenshot):
            typer.echo(f"Wrote {path}")
        return
    server = previewing.start(settings, issue, as_email, s.preview.host, s.preview.port if port is None else port,
                              report=lambda message: typer.echo(message, err=True))
    typer.echo(f"Preview of {server.preview.view.issue['slug']} at {server.url} - press Ctrl-C to stop")
    if not no_open:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("Preview stopped.", err=True)
    finally:
        server.close()


@command(app)
def archive(
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder to write (default: archive.out_dir in newsletter.toml, archive/).", show_default=False)] = None,
) -> None:
    """Build the web archive of sent issues: index.html, one page per issue and feed.xml (RSS).

    Example: newsletter archive --out /var/www/archive
    """
    s, db = database()
    result = web_archive.build(db, s, out)
    typer.echo(f"Wrote {len(result.issues)} issue page(s), index.html and feed.xml to {result.out_dir}")
    if not s.archive.enabled:
        typer.echo("Note: [archive] enabled is false, so issues do not link to the archive yet.", err=True)
