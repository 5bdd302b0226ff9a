"""Subscriber commands: subscribers add, import, list, remove, export, proof, forget, purge-pending,
and the confirmation mails of the double opt-in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.base import EncodingOpt, JsonOpt, command, commands, database, group

app = commands()
subscribers_app = group(app, "subscribers", "Subscribers, their consent and the suppression list.")
confirmations_app = group(app, "confirmations", "Confirmation (double opt-in) mails to pending subscribers.")
STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")

ConsentSource = typer.Option(
    "--consent-source",
    help='Where and how consent was given, e.g. "Webformular 2026-03-01". Makes the subscriber '
         "active; without it a new subscriber is pending.",
    show_default=False,
)


@command(subscribers_app, "add")
def subscribers_add(
    email: Annotated[str, typer.Argument(help="The e-mail address.")],
    name: Annotated[str | None, typer.Option("--name", help="Display name.", show_default=False)] = None,
    anrede: Annotated[str | None, typer.Option("--anrede", help="Frau or Herr (else: Guten Tag ...).", show_default=False)] = None,
    titel: Annotated[str | None, typer.Option("--titel", help='Academic title, e.g. "Dr."', show_default=False)] = None,
    vorname: Annotated[str | None, typer.Option("--vorname", help="First name.", show_default=False)] = None,
    nachname: Annotated[str | None, typer.Option("--nachname", help="Last name.", show_default=False)] = None,
    consent_source: Annotated[str | None, ConsentSource] = None,
) -> None:
    """Add a subscriber, or update the name fields of an existing one.

    Unsubscribed, bounced or complained addresses are never re-activated.

    Example: newsletter subscribers add erika@example.org --anrede Frau --titel Dr. --nachname Muster --consent-source "Messe 2026"
    """
    from newsletter.audience import subscribers

    _, db = database()
    row, outcome = subscribers.add(db, email, name=name, anrede=anrede, titel=titel, vorname=vorname,
                                   nachname=nachname, consent_source=consent_source)
    if outcome == "suppressed":
        state = "was erased ('subscribers forget')" if row["id"] is None else f"is {row['status']}"
        typer.echo(f"{row['email']} {state} and stays suppressed - nothing changed", err=True)
        return
    label = {"added": "Added", "updated": "Updated", "unchanged": "Unchanged"}[outcome]
    hint = " - confirm consent with --consent-source to make it active" if row["status"] == "pending" else ""
    typer.echo(f"{label} {row['email']} ({row['status']}){hint}")


@command(subscribers_app, "import")
def subscribers_import(
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8; comma, semicolon or tab) with a header row naming at least 'email'.")],
    consent_source: Annotated[str | None, ConsentSource] = None,
    encoding: EncodingOpt = None,
) -> None:
    """Import subscribers from CSV; invalid rows are reported and skipped.

    Optional columns: name, anrede (salutation), titel (title), vorname (first_name),
    nachname (last_name). Suppressed and erased addresses stay suppressed. Without
    --consent-source new subscribers are pending: 'newsletter confirmations send' asks them.

    Example: newsletter subscribers import messe.csv --consent-source "Messe 2026, Formular"
    """
    from newsletter.audience import subscribers

    _, db = database()
    report = subscribers.import_csv(db, file, consent_source, encoding)
    for number, field, reason in report.invalid:
        typer.echo(f"{file.name} row {number}, field {field}: {reason}", err=True)
    if report.invalid_count > len(report.invalid):
        typer.echo(f"{file.name}: {report.invalid_count - len(report.invalid)} more invalid rows", err=True)
    typer.echo(f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
               f"{report.suppressed} suppressed, {report.invalid_count} invalid")


@command(subscribers_app, "list")
def subscribers_list(
    status: Annotated[str | None, typer.Option("--status", help=f"Only this status: {', '.join(STATUSES)}.", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """List subscribers by address, one per line. Example: newsletter subscribers list --status active"""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"{status!r} - use one of {', '.join(STATUSES)}", param_hint="--status")
    import json

    from newsletter.audience import subscribers

    _, db = database()
    rows = subscribers.list_subscribers(db, status)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        typer.echo(row["email"])
    typer.echo(f"{len(rows)} subscribers", err=True)


@command(subscribers_app, "remove")
def subscribers_remove(email: Annotated[str, typer.Argument(help="The e-mail address.")]) -> None:
    """Delete a subscriber; one who was ever sent mail is marked unsubscribed instead.

    Addresses that got mail (or are already unsubscribed, bounced or complained) stay in the
    store as the suppression list, so a later import cannot add them again.

    Example: newsletter subscribers remove erika@example.org
    """
    from newsletter.audience import subscribers

    _, db = database()
    row, outcome = subscribers.remove(db, email)
    typer.echo({
        "deleted": f"Deleted {row['email']}",
        "unsubscribed": f"Unsubscribed {row['email']} (kept on the suppression list: mail was sent to it)",
        "suppressed": f"{row['email']} is already {row['status']} (kept on the suppression list)",
    }[outcome])


@command(subscribers_app, "export")
def subscribers_export(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).", show_default=False)] = None,
) -> None:
    """Export all subscribers as CSV; 'subscribers import' reads it back.

    Example: newsletter subscribers export -o subscribers.csv
    """
    import sys

    from newsletter import files
    from newsletter.audience import subscribers
    from newsletter.errors import InputError

    _, db = database()
    if output is None:
        subscribers.export(db, sys.stdout)
        return
    try:
        with files.atomic_text(output, private=True) as out:  # personal data: for the owner only
            count = subscribers.export(db, out)
    except OSError as e:
        raise InputError(f"Cannot write {output}: {e.strerror} - choose another path") from None
    typer.echo(f"Wrote {output} ({count} subscribers)", err=True)


@command(subscribers_app, "proof")
def subscribers_proof(email: Annotated[str, typer.Argument(help="The e-mail address.")]) -> None:
    """Print the proof of consent as JSON: the subscriber and every consent record.

    Each record has the sign-up time, source, consent text, its version and sha256, when the
    confirmation mail went out and when it was confirmed (IP addresses only with [serve] store_ip).

    Example: newsletter subscribers proof erika@example.org > nachweis.json
    """
    import json

    from newsletter.audience import consent

    _, db = database()
    typer.echo(json.dumps(consent.proof(db, email), ensure_ascii=False, indent=2))


@command(subscribers_app, "forget")
def subscribers_forget(email: Annotated[str, typer.Argument(help="The e-mail address.")]) -> None:
    """Erase a subscriber (GDPR Art. 17); only a hash of the address stays, so it is never mailed again.

    Deletes the subscriber, the consent records, the delivery log rows and bounce events of the
    address. The hash is a plain sha256 of the lower-cased address (no secret needed to check it).

    Example: newsletter subscribers forget erika@example.org
    """
    from newsletter.audience import consent

    _, db = database()
    erased = consent.forget(db, email)
    if not erased.found:
        typer.echo(f"No subscriber {erased.email}; its hash is now on the suppression list, so it is never added or mailed")
        return
    typer.echo(f"Erased {erased.email} ({erased.consents} consent records, {erased.deliveries} delivery rows); "
               "only its hash stays on the suppression list")


@command(subscribers_app, "purge-pending")
def subscribers_purge_pending(
    older_than: Annotated[str, typer.Option("--older-than", help="Age of the latest sign-up: days (7d) or hours (48h).")] = "7d",
) -> None:
    """Delete unconfirmed sign-ups older than the given age (data minimisation). For cron.

    Example: newsletter subscribers purge-pending --older-than 7d
    """
    from newsletter.audience import consent
    from newsletter.errors import InputError

    try:
        age = consent.parse_age(older_than)
    except InputError as e:
        raise typer.BadParameter(str(e), param_hint="--older-than") from None
    _, db = database()
    typer.echo(f"{consent.purge_pending(db, age)} unconfirmed sign-ups deleted")


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

    s, db = database()
    report = send_confirmations(db, s, resend=resend)
    for email, reason in report.failed:
        typer.echo(f"Not sent to {email}: {reason}", err=True)
    typer.echo(f"{report.sent} confirmation mails sent" + (f", {len(report.failed)} refused" if report.failed else ""))
