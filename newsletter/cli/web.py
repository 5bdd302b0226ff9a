"""Web commands: preview (a local page with live reload, or screenshots) and serve."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.base import command, commands, database, settings

app = commands()


@command(app)
def preview(
    issue: Annotated[str | None, typer.Argument(help="Issue id or slug (default: the latest draft).", show_default=False)] = None,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, help="Port (default: [preview] port, 8025; 0 = any free one).", show_default=False)] = None,
    as_email: Annotated[str | None, typer.Option("--as", help="Personalise for this subscriber (default: a sample reader).", show_default=False)] = None,
    no_open: Annotated[bool, typer.Option("--no-open", help="Print the address, do not open a browser.")] = False,
    screenshot: Annotated[Path | None, typer.Option("--screenshot", help="Write desktop.png, mobile.png and dark.png into this folder and exit.", show_default=False)] = None,
    clicks: Annotated[bool, typer.Option("--clicks", help="Show each link's human clicks beside it (a click map of a sent issue).")] = False,
) -> None:
    """Show an issue in the browser: 600/375 px, light/dark, text part, headers, size and items.

    A draft is re-composed and the page reloads itself when a template, the config or the database changes.

    Example: newsletter preview --as erika@example.org (or: newsletter preview latest --clicks)
    """
    flags = {"preview.port": (port, "--port")}
    s = settings(**flags)
    if screenshot is not None:
        from newsletter.web.screenshots import screenshots
        from newsletter.web.view import find_issue, make_view, reader

        s, db = database(s)
        view = make_view(db, s, find_issue(db, issue), reader(db, as_email), clicks)
        for path in screenshots(view.html, screenshot):
            typer.echo(f"Wrote {path}")
        return
    import webbrowser

    from newsletter.web import preview as previewing

    server = previewing.start(lambda: settings(**flags), issue, as_email, s.preview.host, s.preview.port,
                              report=lambda message: typer.echo(message, err=True), clicks=clicks)
    typer.echo(f"Preview of {server.preview.shown.issue.slug} at {server.url} - press Ctrl-C to stop")
    if not no_open:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("Preview stopped.", err=True)
    finally:
        server.close()


@command(app)
def serve(
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default: [serve] host, 127.0.0.1).", show_default=False)] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535, help="Port (default: [serve] port, 8080).", show_default=False)] = None,
) -> None:
    """Run the web app for sign-up (double opt-in), one-click unsubscribe and the archive.

    Put it behind your web server, which terminates TLS for [publication] base_url and forwards
    /subscribe, /confirm/, /u/ and /archive/ to it. Needs NEWSLETTER_SECRET.

    Example: newsletter serve --port 8080
    """
    from newsletter.web.server import run

    run(settings(**{"serve.host": (host, "--host"), "serve.port": (port, "--port")}), announce=typer.echo)
