"""The `newsletter` app, the options several commands share, and the one-line error handling.

Command modules import only this module and typer at their top: a command imports the core it
needs when it runs, so `newsletter --help` and every command start without loading the rest.
A command body resolves its inputs (flags go through the settings loader like the environment
and the file), calls one core function and prints the result.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from typing import Annotated, Any

import typer

from newsletter.errors import NewsletterError


def commands() -> typer.Typer:
    """A command module's own collection of commands and noun groups; the root app
    (`newsletter.cli`) loads a module when one of its commands is run."""
    return typer.Typer(add_completion=False, rich_markup_mode=None)


def group(app: typer.Typer, name: str, help: str) -> typer.Typer:
    """A noun group (`newsletter subscribers ...`) in a command module."""
    sub = typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)
    app.add_typer(sub, name=name)
    return sub


class State:
    config: Path | None = None
    db: Path | None = None
    debug: bool = False
    opened: list = []   # databases a command opened; closed when it ends


state = State()

# Options and arguments that several commands take, declared once.
IssueArg = Annotated[str, typer.Argument(help="Issue id or slug ('latest': the newest issue).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="Only items dated on/after this date (YYYY-MM-DD) or span (14d).", show_default=False)]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Only items dated on/before this date.", show_default=False)]
EncodingOpt = Annotated[str | None, typer.Option("--encoding", help="The file's encoding when it is not UTF-8, e.g. cp1252 (Excel).", show_default=False)]


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
                from newsletter.store import translate

                fail(str(translate(e)))
            except KeyboardInterrupt:
                fail("Interrupted", 130)
            except Exception as e:  # noqa: BLE001 - a bug still ends in one line without --debug
                if state.debug or _is_click(e):
                    raise
                detail = " ".join(str(e).split())[:200]
                fail(f"Unexpected error ({type(e).__name__}{': ' + detail if detail else ''}) - this is a bug in "
                     "newsletter; run the command again with --debug and report the traceback")
            finally:
                close_databases()
        return group.command(name, **kwargs)(run)
    return decorate


def _is_click(error: Exception) -> bool:
    """Click's own exceptions (usage errors, Exit, Abort) that it turns into messages and exit
    codes itself; typer vendors click in newer releases, so they are known by name."""
    return any(cls.__name__ in ("ClickException", "Exit", "Abort") for cls in type(error).__mro__)


def settings(**flags: tuple[Any, str]):
    """The settings, with command-line flags: settings(**{"send.rate": (rate, "--rate")})."""
    from newsletter import config

    return config.load(config=state.config, db=state.db, overrides=flags)


def database(settings_=None):
    """The settings and the open database (which must exist: only init and demo create one);
    the command closes it when it ends."""
    from newsletter.store import connect

    s = settings_ or settings()
    db = connect(s)
    state.opened.append(db)
    return s, db


def close_databases() -> None:
    while state.opened:
        state.opened.pop().close()


def issue_of(db, ref: str):
    """The issue a reference names: an id, a slug or 'latest'."""
    from newsletter.store.issues import get_issue

    return get_issue(db, ref)
