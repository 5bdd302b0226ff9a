"""The `newsletter` command: parse, call one core function, print. No SQL, SMTP or Jinja here."""

from __future__ import annotations

import functools
import sqlite3
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from newsletter import __version__, config, store
from newsletter.errors import NewsletterError

app = typer.Typer(
    help="Compose, check and send the newsletter from a SQLite store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
articles_app = typer.Typer(help="Articles in the store.", no_args_is_help=True)
jobs_app = typer.Typer(help="Job ads in the store.", no_args_is_help=True)
ads_app = typer.Typer(help="Paid ads (Anzeigen) in the store.", no_args_is_help=True)
issues_app = typer.Typer(help="Composed issues.", no_args_is_help=True)
subscribers_app = typer.Typer(help="Subscribers, their consent and the suppression list.", no_args_is_help=True)
app.add_typer(articles_app, name="articles")
app.add_typer(jobs_app, name="jobs")
app.add_typer(ads_app, name="ads")
app.add_typer(issues_app, name="issues")
app.add_typer(subscribers_app, name="subscribers")


class State:
    config: Path | None = None
    db: Path | None = None
    debug: bool = False


state = State()


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def command(group: typer.Typer, name: str | None = None, **kwargs):
    """Register a command whose user errors end in one line and exit code 1 (--debug: traceback)."""
    def decorate(fn):
        @functools.wraps(fn)
        def run(*args, **kw):
            try:
                return fn(*args, **kw)
            except NewsletterError as e:
                if state.debug:
                    raise
                fail(str(e), e.exit_code)
            except sqlite3.Error as e:
                if state.debug:
                    raise
                fail(str(store.translate(e)))
            except KeyboardInterrupt:
                fail("Interrupted", 130)
        return group.command(name, **kwargs)(run)
    return decorate


def settings() -> config.Settings:
    return config.load(config=state.config, db=state.db)


def database(create: bool = True):
    s = settings()
    return s, store.open_db(s.db_path, create=create)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"newsletter {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    config_path: Annotated[Optional[Path], typer.Option("--config", "-c", help="newsletter.toml to use [env: NEWSLETTER_CONFIG]", show_default=False)] = None,
    db: Annotated[Optional[Path], typer.Option("--db", help="SQLite database [env: NEWSLETTER_DB]", show_default=False)] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Print the version.")] = False,
) -> None:
    """Compose, check and send the newsletter. Start with: newsletter demo"""
    state.config, state.db, state.debug = config_path, db, debug


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except NewsletterError as e:  # raised outside a command (e.g. while resolving options)
        if state.debug:
            raise
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
