"""Opening the SQLite file, transactions, and what SQLite's errors mean to a user.

WAL mode and a busy timeout let a cron run and an editor work on the same file at once.
Only `newsletter init` and `newsletter demo` create a database; every other command refuses a
missing one and says where it looked, so a typo in --db never starts an empty store.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from newsletter.config import Settings
from newsletter.errors import IssueBeingSent, StoreError

BUSY_TIMEOUT_MS = 5000

Row = dict[str, Any]                             # a row as the store hands it out
Params = Sequence[Any] | Mapping[str, Any]        # what a query's placeholders take


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


class Database:
    """A connection in autocommit mode; `transaction()` groups writes. Rows come as dicts."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn, self.path = conn, path

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> sqlite3.Cursor:
        return self.conn.executemany(sql, rows)

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        rows: list[Row] = self.conn.execute(sql, params).fetchall()
        return rows

    def one(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def value(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row (None when there is none)."""
        row = self.one(sql, params)
        return next(iter(row.values())) if row else None

    def count(self, sql: str, params: Params = ()) -> int:
        """The first column of the first row as a whole number (0 when there is none)."""
        return int(self.value(sql, params) or 0)

    def number(self, sql: str, params: Params = ()) -> int | None:
        """The first column of the first row as a whole number, or None."""
        value = self.value(sql, params)
        return None if value is None else int(value)

    def text(self, sql: str, params: Params = ()) -> str | None:
        """The first column of the first row as text, or None."""
        value = self.value(sql, params)
        return None if value is None else str(value)

    def insert(self, table: str, row: Mapping[str, Any]) -> int:
        marks = ", ".join("?" * len(row))
        cursor = self.conn.execute(f"insert into {table} ({', '.join(row)}) values ({marks})", list(row.values()))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def update(self, table: str, row_id: int, changes: Mapping[str, Any]) -> None:
        if changes:
            assignments = ", ".join(f"{key} = ?" for key in changes)
            self.conn.execute(f"update {table} set {assignments} where id = ?", [*changes.values(), row_id])

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_db(path: Path, *, create: bool = False, looked: str = "") -> Database:
    """Open (and upgrade) the database at `path`; `create` only for init and demo.

    `looked` says where the path came from (for the message when there is no database)."""
    path = Path(path)
    if not path.exists():
        if not create:
            where = f" (from {looked})" if looked else ""
            raise StoreError(f"No database at {path}{where} - create one with 'newsletter init' (or "
                             "'newsletter demo'), or point --db / NEWSLETTER_DB at the existing file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"Cannot create {path.parent}: {e.strerror} - check the path and its permissions") from None
    else:
        _check_writable(path)
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = _dict_row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA journal_mode").fetchone()["journal_mode"] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        _migrate(conn, path)
    except sqlite3.DatabaseError as e:
        raise translate(e, path) from None
    except OSError as e:
        raise StoreError(f"Cannot open database {path}: {e.strerror} - check the path and its permissions") from None
    return Database(conn, path)


def connect(settings: Settings) -> Database:
    """The database the settings name (it must exist; see `open_db`)."""
    return open_db(settings.db_path, looked=settings.db_source)


def _check_writable(path: Path) -> None:
    """Refuse a read-only database before SQLite opens it, and mend what a refused open left.

    SQLite makes the -wal and -shm files with the database's own permissions: opened while
    read-only, it would leave a read-only -shm behind that keeps failing after the user has
    fixed the database's permission."""
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        target = path if not os.access(path, os.W_OK) else path.parent
        raise StoreError(f"Cannot write {target} (read-only) - give your user write permission, "
                         f"e.g. chmod u+w {target}")
    mode = stat.S_IMODE(path.stat().st_mode)
    for suffix in ("-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        if side.exists() and not os.access(side, os.W_OK):
            try:
                os.chmod(side, mode)
            except FileNotFoundError:
                continue  # the last connection of another process closed and took it away
            except OSError:
                raise StoreError(f"Cannot write {side} (read-only) - give your user write permission, "
                                 f"e.g. chmod u+w {side}") from None


# The newest migration in store.schema (a test keeps them equal). Migrations apply in order, so
# a database that has this one has all: checked with plain sqlite3 in the table sqlite-utils
# records them in (`Migrations.migrations_table`), and sqlite-utils (a tenth of a second to
# import) is loaded only when the check does not find it. Should a release of sqlite-utils keep
# its records elsewhere, the check finds nothing and the public `Migrations.apply()` decides.
LATEST_MIGRATION = "m012_bounce_code"


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    if conn.execute("select 1 from sqlite_master where name = '_sqlite_migrations'").fetchone() and \
            conn.execute("select 1 from _sqlite_migrations where migration_set = 'newsletter' and name = ?",
                         [LATEST_MIGRATION]).fetchone():
        return
    import sqlite_utils

    from newsletter.store.schema import migrations

    upgrading = sqlite_utils.Database(str(path))
    try:
        upgrading.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        migrations.apply(upgrading)
    finally:
        upgrading.close()


def translate(e: sqlite3.Error, path: Path | str = "the database") -> StoreError:
    """Turn an sqlite3 error into a message that says what to do, by SQLite's error code."""
    text, name = str(e), getattr(e, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreError(
            f"{path} is locked by another process (waited {BUSY_TIMEOUT_MS // 1000} s) - "
            "wait until it has finished and run the command again"
        )
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return StoreError(f"{path} is not a newsletter database ({text}) - check NEWSLETTER_DB / --db")
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
        return StoreError(f"Cannot write {path} ({text}) - check the permissions of the file and its folder")
    return StoreError(f"Database error on {path}: {text}")


@contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """One write transaction (BEGIN IMMEDIATE); rolled back whole on any exception."""
    try:
        db.conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        raise translate(e, db.path) from None
    try:
        yield db
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    else:
        db.conn.execute("COMMIT")


class _Named(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def slug(self) -> str: ...


@contextmanager
def issue_lock(db_path: Path, issue: _Named) -> Iterator[None]:
    """An exclusive lock per issue: a second `send`/`run-due` for it stops at once. The kernel
    releases it when the process dies, so a crash never leaves it stuck."""
    path = Path(f"{db_path}.issue-{issue.id}.lock")
    handle = open(path, "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise IssueBeingSent(
            f"Issue {issue.slug} is being sent by another process - wait for it to finish "
            f"('newsletter status {issue.slug}' shows the progress)", issue.slug
        ) from None
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def erase_traces(db: Database) -> None:
    """Overwrite deleted content and empty the WAL, so erased data does not linger in the files."""
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def secure_delete(db: Database) -> None:
    """From now on, overwrite the content of deleted rows (for erasure)."""
    db.execute("PRAGMA secure_delete = ON")
