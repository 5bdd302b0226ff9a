"""Web commands: preview (a local page with live reload, or screenshots), archive, serve, and
the confirmation mails `serve` sends."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from newsletter.cli.base import command, commands, database, group, settings

app = commands()
confirmations_app = group(app, "confirmations", "Confirmation (double opt-in) mails to pending subscribers.")


@command(app)
def preview(
    issue: Annotated[Optional[str], typer.Argument(help="Issue id or slug (default: the latest draft).", show_default=False)] = None,
    port: Annotated[Optional[int], typer.Option("--port", min=0, max=65535, help="Port (default: [preview] port, 8025; 0 = any free one).", show_default=False)] = None,
    as_email: Annotated[Optional[str], typer.Option("--as", help="Personalise for this subscriber (default: a sample reader).", show_default=False)] = None,
    no_open: Annotated[bool, typer.Option("--no-open", help="Print the address, do not open a browser.")] = False,
    screenshot: Annotated[Optional[Path], typer.Option("--screenshot", help="Write desktop.png, mobile.png and dark.png into this folder and exit.", show_default=False)] = None,
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
        from newsletter.web.view import load_view

        for path in screenshots(load_view(s, issue, as_email, clicks).html, screenshot):
            typer.echo(f"Wrote {path}")
        return
    import webbrowser

    from newsletter.web import preview as previewing

    server = previewing.start(lambda: settings(**flags), issue, as_email, s.preview.host, s.preview.port,
                              report=lambda message: typer.echo(message, err=True), clicks=clicks)
    typer.echo(f"Preview of {server.preview.view.issue.slug} at {server.url} - press Ctrl-C to stop")
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
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder to write (default: [archive] out_dir, archive/).", show_default=False)] = None,
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


@command(app)
def serve(
    host: Annotated[Optional[str], typer.Option("--host", help="Address to listen on (default: [serve] host, 127.0.0.1).", show_default=False)] = None,
    port: Annotated[Optional[int], typer.Option("--port", min=1, max=65535, help="Port (default: [serve] port, 8080).", show_default=False)] = None,
) -> None:
    """Run the web app for sign-up (double opt-in), one-click unsubscribe and the archive.

    Put it behind your web server, which terminates TLS for [publication] base_url and forwards
    /subscribe, /confirm/, /u/ and /archive/ to it. Needs NEWSLETTER_SECRET.

    Example: newsletter serve --port 8080
    """
    from newsletter.web.server import run

    run(settings(**{"serve.host": (host, "--host"), "serve.port": (port, "--port")}), announce=typer.echo)


@command(confirmations_app, "send")
def confirmations_send(
    resend: Annotated[bool, typer.Option("--resend", help="Also mail a new link to those whose last one has expired.")] = False,
) -> None:
    """Mail a confirmation link to each pending subscriber that has not had one yet.

    Pending subscribers come from 'subscribers add' or 'subscribers import' without
    --consent-source, or from sign-ups whose mail could not be sent. Needs NEWSLETTER_SECRET.

    Example: newsletter confirmations send --resend
    """
    from newsletter.audience.confirmations import send_confirmations

    report = send_confirmations(settings(), resend=resend)
    for email, reason in report.failed:
        typer.echo(f"Not sent to {email}: {reason}", err=True)
    typer.echo(f"{report.sent} confirmation mails sent" + (f", {len(report.failed)} refused" if report.failed else ""))
