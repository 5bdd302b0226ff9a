"""Commands for mail that comes back: bounces import, unsubscribes import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.base import command, commands, database, group

app = commands()
bounces_app = group(app, "bounces", "Bounces and spam complaints read from returned mail.")
unsubscribes_app = group(app, "unsubscribes", "Unsubscribe requests sent to the List-Unsubscribe mailto address.")

# The mail source, shared by both imports.
PathArg = Annotated[Path | None, typer.Argument(
    help="An mbox file, a Maildir folder or a single .eml file (or use --imap).", show_default=False)]
ImapOpt = Annotated[str | None, typer.Option(
    "--imap", help="Read an IMAP folder over TLS: imaps://user@host/INBOX or a host name; "
                   "password from NEWSLETTER_IMAP_PASSWORD.", show_default=False)]
ImapUserOpt = Annotated[str | None, typer.Option(
    "--imap-user", help="IMAP user instead of the one in the URL (or set NEWSLETTER_IMAP_USER).", show_default=False)]
ImapFolderOpt = Annotated[str | None, typer.Option(
    "--imap-folder", help="IMAP folder (default: the URL's, else INBOX).", show_default=False)]


def open_source(path: Path | None, imap: str | None, user: str | None, folder: str | None):
    """The one mail source the options name (usage error for none or both)."""
    if (path is None) == (imap is None):
        raise typer.BadParameter("give either PATH or --imap", param_hint="PATH / --imap")
    from newsletter import config
    from newsletter.audience import mailboxes

    if path is not None:
        return mailboxes.open_path(path)
    assert imap is not None
    address = mailboxes.imap_address(imap, user or config.secret("imap_user") or None, folder)
    return mailboxes.open_imap(address, mailboxes.imap_password())


@command(bounces_app, "import")
def bounces_import(path: PathArg = None, imap: ImapOpt = None, imap_user: ImapUserOpt = None,
                   imap_folder: ImapFolderOpt = None) -> None:
    """Record bounces (DSNs, Exim and other servers' notices) and complaints (ARF) and suppress those readers.

    A hard bounce marks the reader bounced, soft ones do once soft_limit different messages bounced within soft_window_days (section bounces of newsletter.toml; repeated delay warnings about one message count once); a complaint marks the reader complained.

    Mails that are no bounce are listed with the reason. Nothing in the mailbox is moved or deleted, and a second run counts nothing twice.

    Example: newsletter bounces import /var/mail/bounces (or: --imap imaps://bounces%40verlag.de@mail.verlag.de/INBOX)
    """
    from newsletter.audience import bounces

    settings, db = database()
    with open_source(path, imap, imap_user, imap_folder) as source:
        s = bounces.import_bounces(db, settings, source)
    typer.echo(f"{s.mails} mails: hard {s.hard}, soft {s.soft}, complaints {s.complaints}, "
               f"marked bounced {s.marked_bounced}, marked complained {s.marked_complained}, "
               f"ignored {len(s.ignored)}, unparseable {len(s.unparseable)}, already imported {s.already_imported}")
    for where, reason in s.ignored:
        typer.echo(f"ignored: {where}: {reason}")
    for where, reason in s.unparseable:
        typer.echo(f"unparseable: {where}: {reason}")


@command(unsubscribes_app, "import")
def unsubscribes_import(path: PathArg = None, imap: ImapOpt = None, imap_user: ImapUserOpt = None,
                        imap_folder: ImapFolderOpt = None) -> None:
    """Unsubscribe the readers whose mails to the List-Unsubscribe mailto address carry a valid token.

    The token is read from the Subject ("Re:" prefixes and encoded subjects are fine); mails without a valid one are listed. Running it again changes nothing.

    Example: newsletter unsubscribes import /var/mail/unsubscribe
    """
    from newsletter.audience import bounces

    settings, db = database()
    with open_source(path, imap, imap_user, imap_folder) as source:
        s = bounces.import_unsubscribes(db, settings, source)
    typer.echo(f"{s.mails} mails: unsubscribed {s.unsubscribed}, already unsubscribed or suppressed {s.already}, "
               f"invalid {len(s.invalid)}")
    for where, reason in s.invalid:
        typer.echo(f"invalid: {where}: {reason}")
