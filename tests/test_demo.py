"""`newsletter demo`: the Quickstart's main job on the embedded defaults, end to end."""

from __future__ import annotations

import email
import os
import subprocess
import sys
from email import policy

from conftest import SLUG

import sqlite_utils

from newsletter import clock, config

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
    assert again.returncode == 1 and again.stderr.startswith("Error: ") and "--force" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert run("demo", "--force").returncode == 0
