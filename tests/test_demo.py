"""`newsletter demo`: the Quickstart's main job on the embedded defaults, end to end."""

from __future__ import annotations

import email
import os
import subprocess
import sys
from email import policy
from pathlib import Path

import sqlite_utils
from conftest import SLUG

from newsletter import clock, config, demo

SECRET = "test-secret-0123456789abcdef"


def test_demo_builds_a_project_that_composes_checks_and_sends_to_files(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_") and name != clock.ENV:
            monkeypatch.delenv(name)
    env = {**os.environ, "NEWSLETTER_SECRET": SECRET}
    run = lambda *args, cwd=tmp_path: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "newsletter", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)

    built = run("demo")
    assert built.returncode == 0, built.stderr
    folder = tmp_path / "demo"
    assert "Demo ready in demo/" in built.stdout and "HTML part" in built.stdout
    for ext in ("html", "mjml", "txt", "eml"):
        assert (folder / "out" / SLUG / f"issue.{ext}").stat().st_size > 1000
    db = sqlite_utils.Database(config.load(config=folder / "newsletter.toml").db_path)
    assert {r["email"]: r["status"] for r in db["subscribers"].rows} == {
        "erika.beispiel@example.org": "active", "jonas.probe@example.org": "active",
        "stadtmarketing@example.net": "active", "kim.muster@example.com": "active"}
    assert {r["source"] for r in db["consents"].rows} == {"Demo-Leserliste"}

    checked = run("check", SLUG, "--no-spamassassin", cwd=folder)
    assert checked.returncode == 0 and " 0 failed" in checked.stdout, checked.stdout

    unapproved = run("send", SLUG, "--yes", cwd=folder)  # the demo's routine asks for an approval
    assert unapproved.returncode == 1 and "newsletter approve" in unapproved.stderr
    approved = run("approve", SLUG, "--by", "chefredaktion@stadtmarketing-demo.de", cwd=folder)
    assert approved.returncode == 0, approved.stderr
    sent = run("send", SLUG, "--yes", cwd=folder)
    assert sent.returncode == 0 and "4 sent" in sent.stdout, sent.stderr
    mails = sorted((folder / "outbox").glob("*.eml"))
    assert len(mails) == 4
    erika = next(m for m in mails if "erika" in m.name)
    message = email.message_from_bytes(erika.read_bytes(), policy=policy.default)
    assert message["To"] == "erika.beispiel@example.org"
    assert "Sehr geehrte Frau Dr. Beispiel" in message.get_body(("plain",)).get_content()

    again = run("demo")
    errors = [line for line in again.stderr.splitlines() if not line.startswith("Note: NEWSLETTER_NOW=")]
    assert again.returncode == 1 and len(errors) == 1 and errors[0].startswith("Error: ") and "--force" in errors[0]
    assert run("demo", "--force").returncode == 0


def test_the_demo_copy_reads_as_german_editors_write_it():
    """Job titles say (m/w/d) and so do not gender a second time ("Geschäftsführer*in (m/w/d)");
    "Ein Sommer lang" is "Einen Sommer lang"."""
    import json
    import re

    folder = Path(demo.__file__).parent.parent / "data" / "demo"
    jobs = json.loads((folder / "jobs.json").read_text(encoding="utf-8"))
    twice = [j["title"] for j in jobs if "(m/w/d)" in j["title"] and re.search(r"[*:_/]in\b|[*:_]innen\b|Innen\b", j["title"])]
    assert twice == []
    text = "".join(p.read_text(encoding="utf-8") for p in folder.iterdir())
    assert "Ein Sommer lang" not in text
