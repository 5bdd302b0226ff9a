"""Shared fixtures: a project folder with a real config and SQLite file, and the CLI runner."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from browsing import browser  # noqa: F401  (the shared Chromium fixture of the browser tests)

from newsletter import config, demo, ingest, store
from newsletter.cli import app

ISSUE_DATE = date(2026, 11, 24)  # the date the demo content is written for
GOLDEN = Path(__file__).parent / "golden"
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

    def db(self):
        return store.open_db(self.settings().db_path)

    def write(self, name: str, text: str | bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def set_config(self, section: str, key: str, value: str) -> None:
        """Replace one `key = ...` line inside [section] of the config."""
        text = self.config_path.read_text(encoding="utf-8")
        head, _, rest = text.partition(f"[{section}]\n")
        body, sep, tail = rest.partition("\n[")
        pattern = re.compile(rf"^{key} = .*$", re.M)
        body = pattern.sub(f"{key} = {value}", body) if pattern.search(body) else body + f"\n{key} = {value}"
        self.config_path.write_text(head + f"[{section}]\n" + body + sep + tail, encoding="utf-8")


@pytest.fixture
def project(tmp_path, monkeypatch) -> Project:
    """An empty project: demo config (complete Impressum), no content yet."""
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_"):
            monkeypatch.delenv(name)
    (tmp_path / "newsletter.toml").write_text(demo.DEMO_CONFIG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_CONFIG", str(tmp_path / "newsletter.toml"))
    return Project(tmp_path, CliRunner())


@pytest.fixture
def content(project) -> Project:
    """The project with the demo content, dated for an issue on ISSUE_DATE."""
    db = project.db()
    for kind in store.KINDS:
        report = ingest.import_rows(db, demo.load_content(kind, ISSUE_DATE - demo.REFERENCE_DATE), kind, "demo")
        assert not report.rejected
    db.close()
    return project


@pytest.fixture
def composed(content) -> Project:
    """The demo content composed into draft 2026-11-24."""
    result = content.run("compose", "--date", ISSUE_DATE.isoformat(), "--number", "11/2026")
    assert result.exit_code == 0, result.output
    return content
