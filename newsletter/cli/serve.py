"""Web commands: serve (sign-up, confirmation, unsubscribe, archive) and confirmations send."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from newsletter.audience import consent
from newsletter.web import serve as web
from newsletter.cli.base import app, command, settings

confirmations_app = typer.Typer(help="Confirmation (double opt-in) mails to pending subscribers.", no_args_is_help=True)
app.add_typer(confirmations_app, name="confirmations")


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
    s = settings()
    web.run(s, host or s.serve.host, port or s.serve.port, announce=typer.echo)


@command(confirmations_app, "send")
def confirmations_send(
    resend: Annotated[bool, typer.Option("--resend", help="Also mail a new link to those whose last one has expired.")] = False,
) -> None:
    """Mail a confirmation link to each pending subscriber that has not had one yet.

    Pending subscribers come from 'subscribers add' or 'subscribers import' without
    --consent-source, or from sign-ups whose mail could not be sent. Needs NEWSLETTER_SECRET.

    Example: newsletter confirmations send --resend
    """
    report = consent.send_confirmations(settings(), resend=resend)
    for email, reason in report.failed:
        typer.echo(f"Not sent to {email}: {reason}", err=True)
    typer.echo(f"{report.sent} confirmation mails sent" + (f", {len(report.failed)} refused" if report.failed else ""))
