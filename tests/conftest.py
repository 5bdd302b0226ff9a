"""Shared fixtures: a project folder with a real config and SQLite file, and the CLI runner."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils
import tomli_w
from browsing import browser  # noqa: F401  (the shared Chromium fixture of the browser tests)
from typer.testing import CliRunner

from newsletter import clock, config, dates, demo
from newsletter.cli import app
from newsletter.content import ingest
from newsletter.store import open_db
from newsletter.store.content import KINDS

BERLIN = ZoneInfo("Europe/Berlin")


def _start() -> datetime:
    """The moment the suite runs at: NEWSLETTER_NOW when set (CI runs the suite at other dates
    that way), else 09:00 in Berlin on the machine's date. Every test sees this same moment on
    a FakeClock, so no test depends on the date or the time of day it happens to run."""
    if os.environ.get(clock.ENV):
        return clock.parse(os.environ[clock.ENV])
    today = datetime.now(BERLIN).date()
    return datetime(today.year, today.month, today.day, 9, 0, tzinfo=BERLIN)


START = _start()
ISSUE_DATE = START.astimezone(BERLIN).date()  # the demo content is moved to this date
SLUG = ISSUE_DATE.isoformat()  # the slug of the issue the `composed` fixture makes
NUMBER = f"{ISSUE_DATE.month}/{ISSUE_DATE.year}"
GOLDEN = Path(__file__).parent / "golden"


def day(offset: int) -> date:
    """The issue date moved by `offset` days."""
    return ISSUE_DATE + timedelta(days=offset)


def german(d: date) -> str:
    """A date as the issue prints it: '24. November 2026'."""
    return dates.german_long(d)


@pytest.fixture(autouse=True, scope="session")
def own_cache(tmp_path_factory):
    """The suite's own cache folder (XDG_CACHE_HOME): it never reads or fills the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("cache")
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(autouse=True)
def fake_clock(monkeypatch):
    """Every test runs at START on a clock that moves only when told (or slept on); processes
    the test starts begin at START too."""
    monkeypatch.setenv(clock.ENV, START.isoformat())
    with clock.use(clock.FakeClock(START)) as fake:
        yield fake
ARTIFACTS = Path(__file__).parent / "artifacts"


@dataclass
class Project:
    root: Path
    runner: CliRunner

    @property
    def config_path(self) -> Path:
        return self.root / "newsletter.toml"

    def run(self, *args: str, input: str | None = None):
        """Run the CLI in the project folder; returns click's Result."""
        return self.runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)

    def settings(self) -> config.Settings:
        return config.load(config=self.config_path)

    def db(self) -> sqlite_utils.Database:
        """The database for a test to look at or change rows directly."""
        return sqlite_utils.Database(self.settings().db_path)

    def store(self):
        """The database as the product opens it (for calling its functions)."""
        return open_db(self.settings().db_path)

    def link(self, url: str, issue_id: int = 1) -> str:
        """How `url` appears in issue `issue_id`: its counted short link when the demo config's
        [tracking] clicks made one, else the URL itself."""
        row = self.db().execute("select code from links where issue_id = ? and url = ? and position is not null",
                                [issue_id, url]).fetchone()
        return f"https://www.stadtmarketing-demo.de/c/{row[0]}" if row else url

    def write(self, name: str, text: str | bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def config(self) -> dict:
        """The config file as data."""
        return tomllib.loads(self.config_path.read_text(encoding="utf-8"))

    def configure(self, **sections) -> None:
        """Merge `sections` into the config file (section -> {key: value}; an array of tables such
        as feeds -> its new list), written as TOML."""
        data = self.config()
        for name, values in sections.items():
            if isinstance(values, list):
                data[name] = values
            else:
                data.setdefault(name, {}).update(values)
        self.config_path.write_text(tomli_w.dumps(data), encoding="utf-8")

    def set_config(self, section: str, key: str, value) -> None:
        """Set one key of [section] (a Python value: "Mon 07:00", 3, False, ["a"])."""
        self.configure(**{section: {key: value}})


# The demo's config without its weekly routine ([autopilot], [[feeds]]): `run-due` in a test does
# only what the test asks for, whatever weekday the suite runs on. tests/test_autopilot.py turns
# the routine on.
ROUTINE = demo.DEMO_CONFIG.index("# The weekly routine")
TEST_CONFIG = demo.DEMO_CONFIG[:ROUTINE]
ROUTINE_CONFIG = demo.DEMO_CONFIG[ROUTINE:]


@pytest.fixture
def smtp():
    """A real SMTP server (aiosmtpd) on 127.0.0.1, stopped after the test."""
    from smtp_server import Handler, Server

    server = Server(Handler()).start()
    yield server
    server.stop()


@pytest.fixture
def project(tmp_path, monkeypatch) -> Project:
    """An empty project: demo config (complete Impressum) without the weekly routine, no content yet."""
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_") and name != clock.ENV:
            monkeypatch.delenv(name)
    (tmp_path / "newsletter.toml").write_text(TEST_CONFIG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_CONFIG", str(tmp_path / "newsletter.toml"))
    # Chromium takes a second per check; the contrast tests turn it on where they need it.
    monkeypatch.setenv("NEWSLETTER_CHECK_CONTRAST", "0")
    project = Project(tmp_path, CliRunner())
    open_db(project.settings().db_path, create=True).close()  # as `newsletter init` does
    return project


def load_demo_content(project: Project, issue_date: date) -> Project:
    db = project.store()
    for kind in KINDS:
        report = ingest.import_rows(db, demo.load_content(kind, issue_date - demo.REFERENCE_DATE), kind, "demo")
        assert not report.rejected
    db.close()
    return project


@pytest.fixture
def content(project) -> Project:
    """The project with the demo content, dated for an issue on ISSUE_DATE."""
    return load_demo_content(project, ISSUE_DATE)


@pytest.fixture
def composed(content) -> Project:
    """The demo content composed into draft SLUG (the issue date)."""
    result = content.run("compose", "--date", SLUG, "--number", NUMBER)
    assert result.exit_code == 0, result.output
    return content
