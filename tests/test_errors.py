"""User-caused errors: one line with the fix, exit 1 (usage 2), data unchanged, no traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ISSUE_DATE

from newsletter.errors import ConfigError

DATE = ISSUE_DATE.isoformat()


def one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_missing_config(project, monkeypatch):
    monkeypatch.delenv("NEWSLETTER_CONFIG")
    project.config_path.unlink()
    result = project.run("compose")
    assert result.exit_code == 1
    assert "run 'newsletter init'" in one_line(result)


def test_config_env_pointing_nowhere(project, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_CONFIG", str(project.root / "nope.toml"))
    result = project.run("issues", "list")
    assert result.exit_code == 1 and "NEWSLETTER_CONFIG=" in one_line(result)


def test_broken_toml_and_unknown_setting(project):
    text = project.config_path.read_text()
    project.config_path.write_text(text + "\n[compose\nmax_articles = 3\n")
    result = project.run("issues", "list")
    assert result.exit_code == 1 and "not valid TOML" in one_line(result)
    project.config_path.write_text(text.replace("[impressum]", "[impressum]\nvat = 1"))
    result = project.run("issues", "list")
    assert result.exit_code == 1 and "unknown setting [impressum] vat" in one_line(result)


def test_locked_database(composed, monkeypatch):
    monkeypatch.setattr("newsletter.store.db.BUSY_TIMEOUT_MS", 200)
    path = composed.settings().db_path
    blocker = sqlite3.connect(path)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        result = composed.run("compose", "--date", DATE, "--replace", "1")
    finally:
        blocker.rollback()
        blocker.close()
    assert result.exit_code == 1
    assert "is locked by another process" in one_line(result)


def compose_with_template(content, name: str, text: str):
    """Compose with one template overridden from the configured templates folder."""
    override = content.root / "tpl"
    override.mkdir(exist_ok=True)
    (override / name).write_text(text)
    content.set_config("publication", "templates_dir", "tpl")
    return content.run("compose", "--date", DATE)


def test_template_typo_names_file_and_line(content):
    result = compose_with_template(content, "issue.txt.j2", "{{ publication.name }}\n{{ issue.numbr }}\n")
    assert result.exit_code == 1
    line = one_line(result)
    assert "issue.txt.j2, line 2" in line and "numbr" in line
    assert list(content.db()["issues"].rows) == []


def test_template_syntax_error(content):
    result = compose_with_template(content, "issue.txt.j2", "{% if x %}\nno end\n")
    assert result.exit_code == 1 and "Template error in" in one_line(result)


def test_mjml_error(content):
    result = compose_with_template(content, "issue.mjml.j2", '<mjml lang="de"><mj-body><mj-section><mj-text>x</mj-text></mj-body></mjml>')
    assert result.exit_code == 1 and "MJML error" in one_line(result)


def test_unwritable_output_directory_leaves_no_draft(content):
    blocked = content.root / "blocked"
    blocked.write_text("a file, not a folder")
    result = content.run("compose", "--date", DATE, "--out", blocked)
    assert result.exit_code == 1 and "choose another folder with --out" in one_line(result)
    assert list(content.db()["issues"].rows) == []


def test_bad_dates_in_options(content):
    result = content.run("compose", "--date", "24.13.2026")
    assert result.exit_code == 1 and "--date" in one_line(result)
    result = content.run("compose", "--since", "lately")
    assert result.exit_code == 1 and "--since" in one_line(result)


def test_usage_error_exits_2(project):
    assert project.run("compose", "--no-such-flag").exit_code == 2


def test_real_process_prints_one_line_and_debug_shows_traceback(project):
    env = {**os.environ, "NEWSLETTER_CONFIG": str(project.config_path)}
    env.pop("NEWSLETTER_NOW")  # a moved clock adds its note
    plain = subprocess.run([sys.executable, "-m", "newsletter", "issues", "show", "7"],
                           capture_output=True, text=True, env=env, cwd=project.root)
    assert plain.returncode == 1
    assert plain.stderr.strip() == "Error: No issue '7' - see 'newsletter issues list' for ids and slugs"
    debug = subprocess.run([sys.executable, "-m", "newsletter", "--debug", "issues", "show", "7"],
                           capture_output=True, text=True, env=env, cwd=project.root)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_every_command_has_help(project):
    import typer.main

    from newsletter.cli import COMMANDS, app

    root = typer.main.get_command(app)
    ctx = root.make_context("newsletter", ["--help"], resilient_parsing=True)

    def walk(cmd, path):
        yield path, cmd
        names = cmd.list_commands(ctx) if hasattr(cmd, "list_commands") else []
        for name in names:
            yield from walk(cmd.get_command(ctx, name), path + [name])

    for path, cmd in walk(root, []):
        assert cmd.help, f"{' '.join(path)} has no help text"
        if len(path) == 1:  # the root lists the table's line without loading the command
            first = cmd.help.strip().splitlines()[0].split(" Example:")[0].split(" For cron:")[0]
            assert first == COMMANDS[path[0]][1], path
        assert project.run(*path, "--help").exit_code == 0


def test_init_writes_config_and_database(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from newsletter.cli import app

    for name in list(os.environ):
        if name.startswith("NEWSLETTER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "newsletter.toml").exists() and (tmp_path / "data/newsletter.db").exists()
    assert runner.invoke(app, ["init"]).exit_code == 1
    # A fresh config has an empty Impressum: compose names what is missing.
    compose = runner.invoke(app, ["compose"])
    assert compose.exit_code == 1 and "Impressum is incomplete: organisation, legal_form" in compose.output


def test_settings_precedence(project, monkeypatch):
    from newsletter import config

    project.set_config("compose", "max_jobs", 4)
    assert config.load(config=project.config_path).compose.max_jobs == 4
    monkeypatch.setenv("NEWSLETTER_COMPOSE_MAX_JOBS", "5")
    assert config.load(config=project.config_path).compose.max_jobs == 5
    flagged = config.load(config=project.config_path, overrides={"compose.max_jobs": (6, "--max-jobs")})
    assert flagged.compose.max_jobs == 6
    with pytest.raises(ConfigError, match=r"--max-jobs \(for \[compose\] max_jobs\) = -1 is out of range"):
        config.load(config=project.config_path, overrides={"compose.max_jobs": (-1, "--max-jobs")})
    monkeypatch.setenv("NEWSLETTER_DB", str(project.root / "other.db"))
    assert config.load(config=project.config_path).db_path == project.root / "other.db"
    assert config.load(config=project.config_path, db=project.root / "flag.db").db_path == project.root / "flag.db"


def test_old_database_is_upgraded(project):
    """A database created by the first migration only gets the later ones on open."""
    import sqlite_utils

    from newsletter.store import open_db
    from newsletter.store.schema import migrations

    path = project.root / "old.db"
    old = sqlite_utils.Database(path)
    migrations.apply(old, stop_before="m002_issues")
    assert "issues" not in old.table_names()
    old.close()
    open_db(path).close()
    db = sqlite_utils.Database(path)
    assert {"issues", "issue_items", "check_results"} <= set(db.table_names())
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("how", ["--config", "NEWSLETTER_CONFIG"])
def test_init_with_an_existing_config_creates_only_its_database(tmp_path, monkeypatch, how):
    """It used to write a second newsletter.toml in the current folder and ask to fill it in."""
    from typer.testing import CliRunner

    from newsletter import demo
    from newsletter.cli import app

    for name in list(os.environ):
        if name.startswith("NEWSLETTER_") and name != "NEWSLETTER_NOW":
            monkeypatch.delenv(name)
    site = tmp_path / "site"
    site.mkdir()
    (site / "newsletter.toml").write_text(demo.DEMO_CONFIG, encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    args = ["--config", str(site / "newsletter.toml"), "init"] if how == "--config" else ["init"]
    if how == "NEWSLETTER_CONFIG":
        monkeypatch.setenv("NEWSLETTER_CONFIG", str(site / "newsletter.toml"))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert list(elsewhere.iterdir()) == []  # no second config here
    assert (site / "data" / "newsletter.db").exists()
    assert "Kept" in result.output and "fill" not in result.output


def test_a_typo_in_a_command_suggests_the_command(project):
    result = project.run("sned")
    assert result.exit_code == 2 and "No such command 'sned'. Did you mean 'send'?" in result.output


def test_a_moved_clock_is_never_silent(project, monkeypatch):
    """NEWSLETTER_NOW moved the clock of a production run without a word."""
    import subprocess
    import sys

    env = {**os.environ, "NEWSLETTER_NOW": "2027-03-28T01:30:00+01:00"}
    run = subprocess.run([sys.executable, "-m", "newsletter", "issues", "list"], cwd=project.root, env=env,
                         capture_output=True, text=True, timeout=60)
    notes = [line for line in run.stderr.splitlines() if "NEWSLETTER_NOW" in line]
    assert notes == ["Note: NEWSLETTER_NOW=2027-03-28T01:30:00+01:00 - this run's clock starts at that moment, "
                     "not at the real time (unset NEWSLETTER_NOW for the real time)"]
    env.pop("NEWSLETTER_NOW")
    quiet = subprocess.run([sys.executable, "-m", "newsletter", "issues", "list"], cwd=project.root, env=env,
                           capture_output=True, text=True, timeout=60)
    assert "NEWSLETTER_NOW" not in quiet.stderr


def test_the_suite_has_a_cache_of_its_own():
    from newsletter.files import cache_dir

    assert str(cache_dir("jinja")).startswith(os.environ["XDG_CACHE_HOME"])
    assert not str(cache_dir("jinja")).startswith(str(Path.home() / ".cache"))
