"""The weekly routine on autopilot (`[autopilot]`, `[[feeds]]`, `newsletter run-due`), through the
CLI with the injected clock, a real SMTP server (aiosmtpd) for the reviewers' and readers' mail,
a local feed server, and a real `serve` for the approval link."""

from __future__ import annotations

import email
import re
import subprocess
import sys
import threading
import tomllib
from datetime import UTC, date, datetime, timedelta
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import httpx
import pytest
import tomli_w
from conftest import ROUTINE_CONFIG, START, load_demo_content
from smtp_server import free_port

from newsletter import demo

BERLIN = ZoneInfo("Europe/Berlin")
SECRET = "test-secret-0123456789abcdef"
CHIEF, DEPUTY = "chefredaktion@stadtmarketing-demo.de", "cvd@stadtmarketing-demo.de"
READERS = ["leser1@example.org", "leser2@example.org"]


def next_thursday(after: date) -> date:
    return after + timedelta(days=(3 - after.weekday()) % 7 or 7)


THURSDAY = next_thursday(START.date())


def at(hour: int, minute: int = 0, day: date = THURSDAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN)


# --- a feed server --------------------------------------------------------------------------------

class Feeds:
    """Feeds on 127.0.0.1: /artikel.xml with an ETag (answers 304 to If-None-Match), /kaputt.xml
    answering 500; it records each request's conditional header."""

    def __init__(self) -> None:
        self.body = b""
        self.etag = '"v1"'
        self.requests: list[tuple[str, str | None]] = []
        feeds = self

        class Answer(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                feeds.requests.append((self.path, self.headers.get("If-None-Match")))
                if self.path == "/kaputt.xml":
                    self.send_error(500, "Server kaputt")
                    return
                if self.headers.get("If-None-Match") == feeds.etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("ETag", feeds.etag)
                self.send_header("Content-Length", str(len(feeds.body)))
                self.end_headers()
                self.wfile.write(feeds.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, shift_days: int) -> None:
        """The demo site's feed, its three articles dated `shift_days` after the reference week."""
        self.body = demo.feed_xml(demo.shifted_feed(timedelta(days=shift_days)))
        self.etag = f'"v{len(self.requests) + 2}"'

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feeds():
    server = Feeds()
    yield server
    server.stop()


@pytest.fixture
def pilot(project, smtp, feeds, fake_clock, monkeypatch):
    """The demo config (autopilot on, two reviewers) sending over SMTP, its content dated for
    THURSDAY, two readers, one feed; the clock at 06:55 on THURSDAY."""
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    monkeypatch.setenv("NEWSLETTER_CHECK_SPAMASSASSIN", "0")
    monkeypatch.setenv("NEWSLETTER_CHECK_CONTRAST", "0")
    routine = tomllib.loads(ROUTINE_CONFIG)
    routine["autopilot"]["reviewers"] = [CHIEF, DEPUTY]
    routine["feeds"] = [{"url": f"{feeds.url}/artikel.xml", "kind": "article"}]
    project.configure(**routine, send={"transport": "smtp", "retry_delay": 0.01},
                      smtp={"host": "127.0.0.1", "port": smtp.port, "security": "none"})
    load_demo_content(project, THURSDAY - timedelta(days=2))
    feeds.publish((THURSDAY - demo.REFERENCE_DATE).days - 7)
    for address in READERS:
        assert project.run("subscribers", "add", address, "--consent-source", "Test").exit_code == 0
    fake_clock.set(at(6, 55))
    project.smtp, project.feeds, project.clock = smtp.handler, feeds, fake_clock
    return project


def run_due(project, when: datetime | None = None):
    if when is not None:
        project.clock.set(when)
    result = project.run("run-due")
    return result


def mails_to(project, address: str) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(raw, policy=policy.default) for raw in project.smtp.received_by(address)]


def subjects(project, address: str) -> list[str]:
    return [m["Subject"] for m in mails_to(project, address)]


def issue_row(project, slug: str | None = None) -> dict | None:
    db = project.db()
    rows = list(db.query("select * from issues where slug = ?", [slug or THURSDAY.isoformat()]))
    return rows[0] if rows else None


def review_link(project, reviewer: str, action: str = "approve") -> str:
    review = [m for m in mails_to(project, reviewer) if m["Subject"].startswith("[Freigabe]")][-1]
    label = "Freigeben" if action == "approve" else "Zurückstellen"
    return re.search(rf"{label}:\s+(https://\S+)", review.get_body(("plain",)).get_content())[1]


def approve_by_link(project, reviewer: str = CHIEF) -> httpx.Response:
    """GET (a page with a button), then POST, on a real `serve` process."""
    port = free_port()
    env = {**__import__("os").environ, "NEWSLETTER_NOW": project.clock.now().isoformat()}
    process = subprocess.Popen([sys.executable, "-m", "newsletter", "serve", "--port", str(port)], cwd=project.root,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        from test_serve_e2e import wait_for_health

        base = f"http://127.0.0.1:{port}"
        wait_for_health(process, base)
        path = review_link(project, reviewer).split("stadtmarketing-demo.de", 1)[1]
        page = httpx.get(base + path)
        assert page.status_code == 200 and '<form method="post">' in page.text and "Freigeben" in page.text
        assert issue_row(project)["approval"] is None  # a scanner's GET approves nothing
        return httpx.post(base + path)
    finally:
        process.terminate()
        process.wait(10)


# --- the week -------------------------------------------------------------------------------------

def test_a_week_on_autopilot(pilot):
    early = run_due(pilot)  # 06:55: the feed brings news; nothing else is due (last week was before the routine)
    assert early.exit_code == 0 and early.output.strip().endswith("artikel.xml: 3 new, 0 updated")
    assert issue_row(pilot) is None

    seven = run_due(pilot, at(7, 0))
    assert seven.exit_code == 0, seven.output
    assert "Feed" not in seven.output  # the feed has not changed (304), so it says nothing
    assert "Composed" in seven.output and "Review copy" in seven.output
    issue = issue_row(pilot)
    assert issue["status"] == "draft" and issue["composed_by"] == "autopilot"
    assert issue["number"] == f"{THURSDAY.isocalendar()[1]}/{THURSDAY.year}"
    for reviewer in (CHIEF, DEPUTY):
        [review] = mails_to(pilot, reviewer)
        assert review["Subject"] == f"[Freigabe] {issue['subject']}" and review["Auto-Submitted"] == "auto-generated"
        html = review.get_body(("html",)).get_content()
        assert "Vorschau zur Freigabe – dieser Kasten ist nicht Teil der Ausgabe." in html
        assert re.search(r"Prüfung: \d+ bestanden, \d+ Warnung(en)?, 0 Fehler", html)
        assert "/review/approve/" in html and "/review/hold/" in html
    assert pilot.smtp.received_by(READERS[0]) == []

    answer = approve_by_link(pilot)
    assert answer.status_code == 200 and "Freigegeben" in answer.text
    assert issue_row(pilot)["approval"] == "approved" and issue_row(pilot)["approval_by"] == CHIEF

    assert run_due(pilot, at(8, 55)).output == ""
    nine = run_due(pilot, at(9, 0))
    assert nine.exit_code == 0, nine.output
    assert "2 sent" in nine.output and issue_row(pilot)["status"] == "sent"
    for reader in READERS:
        [issue_mail] = mails_to(pilot, reader)
        assert issue_mail["Subject"] == issue["subject"]
    summary = [m for m in mails_to(pilot, CHIEF) if "versandt" in m["Subject"]]
    assert len(summary) == 1 and "Zugestellt: 2" in summary[0].get_body(("plain",)).get_content()

    later = run_due(pilot, at(9, 5))
    assert later.exit_code == 0 and later.output == ""
    assert len(pilot.smtp.messages) == 2 + 2 + 2  # two reviews, two issues, two summaries

    timeline = pilot.run("issues", "show", THURSDAY.isoformat()).output.split("timeline:")[1]
    kinds = [re.match(r"\S+ \S+ \S+\s+(.+?)( by |:|$)", line.strip())[1] for line in timeline.strip().splitlines()]
    assert kinds == ["composed", "checked", "review sent", "approved", "sent", "summary sent"]
    assert f"approved by {CHIEF}" in timeline and "sent by autopilot: 2 delivered, 0 failed, 0 deferred" in timeline


def test_not_approved_by_send_time_is_held_and_the_reviewers_are_told(pilot):
    run_due(pilot, at(7, 0))
    result = run_due(pilot, at(9, 0))
    assert result.exit_code == 0 and "Held" in result.output and "nicht freigegeben" in result.output
    row = issue_row(pilot)
    assert row["status"] == "draft" and row["approval"] == "held" and row["approval_note"] == "nicht freigegeben"
    assert pilot.smtp.received_by(READERS[0]) == []
    notice = [m for m in mails_to(pilot, DEPUTY) if "angehalten" in m["Subject"]]
    assert len(notice) == 1 and "nicht freigegeben" in notice[0]["Subject"]
    assert f"newsletter send {row['slug']}" in notice[0].get_body(("plain",)).get_content()
    assert run_due(pilot, at(9, 5)).output == ""  # held once, told once


def test_a_failing_check_at_send_time_holds_the_issue(pilot):
    run_due(pilot, at(7, 0))
    assert pilot.run("approve", "latest", "--by", DEPUTY).exit_code == 0
    pilot.set_config("check", "style_max", 1000)  # the issue's <style> is larger: html.style-size fails
    result = run_due(pilot, at(9, 0))
    assert "Held" in result.output and "html.style-size" in result.output
    assert issue_row(pilot)["approval"] == "held"
    assert pilot.smtp.received_by(READERS[0]) == []
    [notice] = [m for m in mails_to(pilot, CHIEF) if "angehalten" in m["Subject"]]
    assert "Prüfung fehlgeschlagen: html.style-size" in notice["Subject"]


def test_a_feed_that_is_down_leaves_the_issue_to_the_others_and_a_notice(pilot):
    pilot.configure(feeds=[*pilot.config()["feeds"], {"url": f"{pilot.feeds.url}/kaputt.xml", "kind": "job"}])
    result = run_due(pilot, at(7, 0))
    assert result.exit_code == 0, result.output
    assert "Warning: Feed http://127.0.0.1" in result.output and "HTTP 500" in result.output
    assert "3 new" in result.output and issue_row(pilot) is not None
    review = mails_to(pilot, CHIEF)[0].get_body(("plain",)).get_content()
    assert re.search(r"Hinweis: Der Feed http://127\.0\.0\.1:\d+/kaputt\.xml war nicht abrufbar", review)
    again = run_due(pilot, at(7, 5))
    assert "kaputt" not in again.output  # the same error is reported once, not every five minutes


def test_feeds_are_pulled_with_conditional_requests(pilot):
    run_due(pilot, at(6, 0))
    run_due(pilot, at(6, 5))
    feed_requests = [r for r in pilot.feeds.requests if r[0] == "/artikel.xml"]
    assert feed_requests[0][1] is None and feed_requests[1][1] == pilot.feeds.etag  # the second asks If-None-Match
    count = pilot.db().execute("select count(*) from articles").fetchone()[0]
    pilot.feeds.publish((THURSDAY - demo.REFERENCE_DATE).days - 5)  # the feed changes: new ETag, new dates
    run_due(pilot, at(6, 10))
    assert pilot.db().execute("select count(*) from articles").fetchone()[0] == count  # updated, not duplicated


def test_an_empty_week_makes_no_issue_and_tells_the_reviewers(pilot):
    pilot.set_config("autopilot", "compose_at", "Mon 07:00")
    pilot.set_config("autopilot", "send_at", "Mon 09:00")
    monday = THURSDAY + timedelta(days=11)  # long after every article of the demo and the feed
    run_due(pilot, at(6, 0, monday))
    result = run_due(pilot, at(7, 0, monday))
    assert result.exit_code == 0 and "Nothing new" in result.output
    assert pilot.db().execute("select count(*) from issues").fetchone()[0] == 0
    [notice] = mails_to(pilot, CHIEF)
    assert notice["Subject"].startswith("[Stadtmarketing-Brief] Keine Ausgabe am") and "keine neuen Artikel" in notice["Subject"]
    assert run_due(pilot, at(9, 0, monday)).output == ""


def test_two_run_due_at_once_compose_and_send_once(pilot):
    run_due(pilot)  # the routine's first run
    env = {**__import__("os").environ, "NEWSLETTER_NOW": at(7, 0).isoformat()}
    command = [sys.executable, "-m", "newsletter", "run-due"]
    runs = [subprocess.Popen(command, cwd=pilot.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    assert sum("Composed" in out for out, _ in outputs) == 1
    assert pilot.db().execute("select count(*) from issues").fetchone()[0] == 1
    assert len(mails_to(pilot, CHIEF)) == 1 and len(mails_to(pilot, DEPUTY)) == 1
    kinds = [row[0] for row in pilot.db().execute("select kind from issue_events order by id")]
    assert kinds == ["composed", "checked", "review sent"], kinds
    assert pilot.run("approve", "latest", "--by", DEPUTY).exit_code == 0
    env["NEWSLETTER_NOW"] = at(9, 0).isoformat()
    runs = [subprocess.Popen(command, cwd=pilot.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    assert [len(pilot.smtp.received_by(reader)) for reader in READERS] == [1, 1]
    assert len([m for m in mails_to(pilot, CHIEF) if "versandt" in m["Subject"]]) == 1
    kinds = [row[0] for row in pilot.db().execute("select kind from issue_events order by id")]
    assert kinds == ["composed", "checked", "review sent", "approved", "sent", "summary sent"], kinds


def test_four_eyes_refuse_the_composers_own_approval(pilot):
    run_due(pilot, at(7, 0))
    recomposed = pilot.run("compose", "--replace", "latest", "--subject", "Stadtmarketing Brief: Pop-up-Läden", "--by", CHIEF)
    assert recomposed.exit_code == 0, recomposed.output
    assert issue_row(pilot)["composed_by"] == CHIEF
    refused = pilot.run("approve", "latest", "--by", CHIEF)
    assert refused.exit_code == 1
    assert refused.output.strip().startswith(f"Error: {CHIEF} composed issue") and "four_eyes" in refused.output
    run_due(pilot, at(7, 30))  # the re-composed draft goes out for review again
    chief_review = [m for m in mails_to(pilot, CHIEF) if m["Subject"].startswith("[Freigabe]")][-1]
    assert "freigeben muss sie eine andere Person" in " ".join(chief_review.get_body(("plain",)).get_content().split())
    assert "/review/approve/" not in chief_review.get_body(("plain",)).get_content()
    assert pilot.run("approve", "latest", "--by", DEPUTY).exit_code == 0
    assert issue_row(pilot)["approval_by"] == DEPUTY


def test_the_composers_own_link_is_refused_by_serve(pilot):
    run_due(pilot, at(7, 0))
    old_link = review_link(pilot, CHIEF)
    assert pilot.run("compose", "--replace", "latest", "--subject", "Pop-up-Läden", "--by", CHIEF).exit_code == 0
    import warnings

    from newsletter.web.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    client = TestClient(create_app(pilot.settings()), base_url="https://www.stadtmarketing-demo.de")
    stale = client.post(old_link.split("stadtmarketing-demo.de", 1)[1])
    assert stale.status_code == 404 and "veraltet" in stale.text  # made for the content before the re-compose
    run_due(pilot, at(7, 30))
    deputy_link = review_link(pilot, DEPUTY).split("stadtmarketing-demo.de", 1)[1]
    chief_path = deputy_link.replace("/approve/1/", "/approve/0/")
    assert client.post(chief_path).status_code == 404  # another reviewer's token does not fit
    assert client.post(deputy_link).status_code == 200
    assert issue_row(pilot)["approval_by"] == DEPUTY


def test_a_recompose_after_approval_revokes_it(pilot):
    run_due(pilot, at(7, 0))
    assert pilot.run("approve", "latest", "--by", DEPUTY).exit_code == 0
    assert pilot.run("compose", "--replace", "latest", "--subject", "Neuer Betreff", "--by", "redaktion").exit_code == 0
    assert issue_row(pilot)["approval"] is None
    result = run_due(pilot, at(9, 0))
    assert "nicht freigegeben" in result.output and pilot.smtp.received_by(READERS[0]) == []
    timeline = pilot.run("issues", "show", "latest").output
    assert "approval revoked by redaktion: re-composed after approval" in timeline


def test_missed_steps_are_reported_not_caught_up_late(pilot):
    run_due(pilot)  # the routine ran before (06:55)
    late = run_due(pilot, at(9, 30))  # the machine was off from 06:55 to 09:30: compose was due at 07:00
    assert late.exit_code == 0 and "Missed this week's compose time" in late.output
    assert issue_row(pilot) is None
    [notice] = mails_to(pilot, CHIEF)
    assert "nicht erstellt" in notice["Subject"]
    assert run_due(pilot, at(9, 35)).output == ""  # told once


def test_a_send_missed_by_more_than_the_grace_is_not_sent_days_late(pilot):
    run_due(pilot, at(7, 0))
    assert pilot.run("approve", "latest", "--by", DEPUTY).exit_code == 0
    result = run_due(pilot, at(11, 1))  # off from 07:00 to 11:01; send was 09:00, grace 2h
    assert "Missed the send time" in result.output
    assert pilot.smtp.received_by(READERS[0]) == [] and issue_row(pilot)["status"] == "draft"
    assert any("nicht versandt" in s for s in subjects(pilot, CHIEF))
    assert run_due(pilot, at(9, 0, THURSDAY + timedelta(days=2))).output == ""  # and not on Saturday either


def test_within_the_grace_a_late_step_is_caught_up(pilot):
    run_due(pilot)
    result = run_due(pilot, at(8, 59))  # off from 06:55 to 08:59: compose is 1 h 59 min late
    assert "Composed" in result.output and issue_row(pilot) is not None


@pytest.mark.parametrize("sunday", [date(2027, 3, 28), date(2027, 10, 31)], ids=["spring", "autumn"])
def test_dst_sundays(pilot, sunday):
    """The routine on the Sundays the clocks change in Berlin: 07:00 is 07:00 local time, and a
    compose time inside the changed hour runs once (in spring an hour later, it does not exist)."""
    load_demo_content(pilot, sunday)
    pilot.set_config("autopilot", "compose_at", "Sun 02:30")
    pilot.set_config("autopilot", "send_at", "Sun 09:00")
    pilot.set_config("autopilot", "approval", "none")
    run_due(pilot, at(0, 0, sunday))
    midnight = datetime(sunday.year, sunday.month, sunday.day, 0, 0, tzinfo=BERLIN).astimezone(UTC)
    moments = [midnight + timedelta(minutes=15 * n) for n in range(1, 24)]  # every real quarter hour until ~05:45
    composed_at = []
    for moment in moments:
        pilot.clock.set(moment)
        if "Composed" in pilot.run("run-due").output:
            composed_at.append(moment.astimezone(BERLIN).strftime("%H:%M %Z"))
    assert composed_at == (["03:30 CEST"] if sunday.month == 3 else ["02:30 CEST"])
    sent = run_due(pilot, at(9, 0, sunday))
    assert "2 sent" in sent.output
    assert pilot.db().execute("select count(*) from issues").fetchone()[0] == 1


def test_without_autopilot_run_due_only_sends_scheduled_issues(pilot):
    data = pilot.config()
    del data["autopilot"], data["feeds"]
    pilot.config_path.write_text(tomli_w.dumps(data), encoding="utf-8")
    result = run_due(pilot, at(7, 0))
    assert result.exit_code == 0 and result.output == ""
    assert pilot.feeds.requests == [] and issue_row(pilot) is None


@pytest.mark.parametrize("key, value, message", [
    ("compose_at", "Donnerstag früh", 'compose_at = \'Donnerstag früh\' is not a weekday and time - write e.g. "Thu 07:00"'),
    ("grace", "lang", "grace = 'lang' is not a duration"),
    ("number", "{year}", "must count the issues with {n}"),
    ("reviewers", ["chefredaktion"], "is not an e-mail address"),
    ("send_at", "Thu 07:00", "send_at = 'Thu 07:00' is compose_at"),
])
def test_autopilot_settings_are_checked_when_they_load(pilot, key, value, message):
    pilot.set_config("autopilot", key, value)
    result = pilot.run("run-due")
    assert result.exit_code == 1 and message in result.output and len(result.output.strip().splitlines()) == 1
    assert "[autopilot]" in result.output


def test_the_demo_runs_the_routine_on_its_own_feed(tmp_path, monkeypatch, fake_clock):
    """`newsletter demo` turns the routine on, with a feed file of its own: run-due works offline."""
    from typer.testing import CliRunner

    from newsletter.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    fake_clock.set(at(12, 0, THURSDAY + timedelta(days=4)))  # a Monday: nothing of the routine is due
    runner = CliRunner()
    assert runner.invoke(app, ["demo"], catch_exceptions=False).exit_code == 0
    monkeypatch.chdir(tmp_path / "demo")
    first = runner.invoke(app, ["run-due"], catch_exceptions=False)
    assert first.exit_code == 0 and first.output == "Feed content/feed.xml: 3 new, 0 updated\n"
    assert runner.invoke(app, ["run-due"], catch_exceptions=False).output == ""  # unchanged file: nothing to say


def test_a_draft_composed_by_hand_before_compose_time_becomes_the_weeks_issue(pilot):
    """An editor composed the send day's issue at 06:00; the routine takes it instead of making a
    second issue with the same articles (that would mail every reader twice)."""
    run_due(pilot, at(6, 0))
    by_hand = pilot.run("compose", "--date", THURSDAY.isoformat(), "--by", DEPUTY)
    assert by_hand.exit_code == 0, by_hand.output
    seven = run_due(pilot, at(7, 0))
    assert seven.exit_code == 0, seven.output
    assert f"Took draft {THURSDAY.isoformat()} (composed by {DEPUTY})" in seven.output
    assert pilot.db().execute("select count(*) from issues").fetchone()[0] == 1
    assert len(mails_to(pilot, CHIEF)) == 1 and len(mails_to(pilot, DEPUTY)) == 1
    assert pilot.run("approve", "latest", "--by", CHIEF).exit_code == 0
    assert "2 sent" in run_due(pilot, at(9, 0)).output
    assert [len(pilot.smtp.received_by(reader)) for reader in READERS] == [1, 1]


def review_client(pilot):
    import warnings

    from newsletter.web.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    return TestClient(create_app(pilot.settings()), base_url="https://www.stadtmarketing-demo.de")


def test_a_review_link_acts_once_and_cannot_undo_a_later_hold(pilot):
    run_due(pilot, at(7, 0))
    client = review_client(pilot)
    approve = review_link(pilot, CHIEF).split("stadtmarketing-demo.de", 1)[1]
    assert client.post(approve).status_code == 200 and issue_row(pilot)["approval"] == "approved"
    replay = client.post(approve)
    assert replay.status_code == 409 and "bereits verwendet" in replay.text
    hold = review_link(pilot, DEPUTY, "hold").split("stadtmarketing-demo.de", 1)[1]
    assert client.post(hold).status_code == 200 and issue_row(pilot)["approval"] == "held"
    pilot.clock.advance(days=6)  # a week-old link, still within its lifetime
    assert client.get(approve).status_code == 409
    assert client.post(approve).status_code == 409
    assert client.post(hold).status_code == 409
    assert issue_row(pilot)["approval"] == "held" and issue_row(pilot)["approval_by"] == DEPUTY
    kinds = [row[0] for row in pilot.db().execute("select kind from issue_events order by id")]
    assert kinds.count("approved") == 1 and kinds.count("held") == 1


def test_approving_an_approved_issue_changes_nothing(pilot):
    run_due(pilot, at(7, 0))
    assert pilot.run("approve", "latest", "--by", DEPUTY).exit_code == 0
    again = pilot.run("approve", "latest", "--by", DEPUTY)
    assert again.exit_code == 0 and "was approved already" in again.output
    kinds = [row[0] for row in pilot.db().execute("select kind from issue_events order by id")]
    assert kinds.count("approved") == 1


@pytest.mark.parametrize("by", [f"Chefredaktion <{CHIEF}>", CHIEF.upper(), f'"Chef, Redaktion" <{CHIEF}>'])
def test_four_eyes_compare_people_by_address(pilot, by):
    run_due(pilot, at(7, 0))
    assert pilot.run("compose", "--replace", "latest", "--subject", "Pop-up-Läden", "--by", CHIEF).exit_code == 0
    refused = pilot.run("approve", "latest", "--by", by)
    assert refused.exit_code == 1 and "four_eyes" in refused.output
    assert issue_row(pilot)["approval"] is None


def test_the_hold_page_asks_for_a_reason_and_the_timeline_keeps_it(pilot):
    run_due(pilot, at(7, 0))
    client = review_client(pilot)
    hold = review_link(pilot, DEPUTY, "hold").split("stadtmarketing-demo.de", 1)[1]
    page = client.get(hold)
    assert page.status_code == 200 and '<textarea id="reason" name="reason"' in page.text
    assert '<label for="reason">' in page.text
    answer = client.post(hold, data={"reason": "Termin des Marktes\r\nprüfen"})
    assert answer.status_code == 200
    row = issue_row(pilot)
    assert (row["approval"], row["approval_note"]) == ("held", "Termin des Marktes prüfen")
    timeline = pilot.run("issues", "show", "latest").output
    assert f"held by {DEPUTY}: Termin des Marktes prüfen (Link in der Freigabe-Mail)" in timeline
    notice = run_due(pilot, at(9, 0))
    [mail] = [m for m in mails_to(pilot, CHIEF) if "angehalten" in m["Subject"]]
    assert mail["Subject"].endswith(f"angehalten: von {DEPUTY} zurückgestellt (Termin des Marktes prüfen)")
    assert "zurückgestellt: zurückgestellt" not in mail["Subject"] and notice.exit_code == 0


def test_the_summary_calls_4xx_delays_verzoegert(pilot):
    pilot.smtp.rcpt_faults[READERS[1]] = ["451 4.3.0 Try again later"] * 3
    run_due(pilot, at(7, 0))
    assert pilot.run("approve", "latest", "--by", DEPUTY).exit_code == 0
    run_due(pilot, at(9, 0))
    [summary] = [m for m in mails_to(pilot, CHIEF) if "versandt" in m["Subject"]]
    text = summary.get_body(("plain",)).get_content()
    assert "Verzögert" in text and "Zurückgestellt" not in text


def test_the_review_mail_text_part_uses_german_typography(pilot):
    run_due(pilot, at(7, 0))
    review = [m for m in mails_to(pilot, CHIEF) if m["Subject"].startswith("[Freigabe]")][-1]
    text = review.get_body(("plain",)).get_content()
    assert "VORSCHAU ZUR FREIGABE – dieser Kasten ist nicht Teil der Ausgabe." in text
    assert f"„{issue_row(pilot)['subject']}“" in text and " - dieser" not in text
    assert [line for line in text.splitlines() if len(line) > 78 and not re.fullmatch(r"\S*https://\S+", line.split(": ")[-1])] == []
