"""What a user can get wrong and the product must survive: bad settings, a sending thread that
dies, a database that is missing or read-only, a slow server, dates out of range, help texts."""

from __future__ import annotations

import http.server
import os
import stat
import threading
import time

import pytest
from conftest import SLUG

from newsletter.audience import subscribers
from newsletter.delivery import send as delivery
from newsletter.delivery.transports import Outcome, Result
from newsletter.errors import InputError
from newsletter.store.issues import get_issue

SECRET = "test-secret-0123456789abcdef"


def one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def readers(composed, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    db = composed.store()
    for i in range(5):
        subscribers.add(db, f"leser{i}@example.org", consent_source="Test")
    db.close()
    return composed


def untouched(project) -> None:
    """Nothing was marked: no delivery rows, the issue still a draft."""
    import sqlite_utils

    db = sqlite_utils.Database(project.root / "data" / "newsletter.db")
    assert list(db["deliveries"].rows) == []
    assert db["issues"].get(1)["status"] == "draft"


# --- settings are checked when they load -------------------------------------------------------

@pytest.mark.parametrize("name,value,needle", [
    ("NEWSLETTER_SMTP_SECURITY", "bogus", "NEWSLETTER_SMTP_SECURITY = 'bogus' - use one of starttls, tls, none"),
    ("NEWSLETTER_TRANSPORT", "carrier-pigeon", "use one of file, smtp, console"),
    ("NEWSLETTER_SMTP_PORT", "70000", "out of range - use a value from 1 to 65535"),
    ("NEWSLETTER_SEND_CONNECTIONS", "0", "out of range"),
    ("NEWSLETTER_SMTP_PORT", "zwei", "is not a whole number"),
    ("NEWSLETTER_BASE_URL", "http://www.example.de", "must be an absolute https:// URL"),
    ("NEWSLETTER_TIMEZONE", "Mars/Olympus", "is not a known timezone"),
    ("NEWSLETTER_CHECK_SPAMASSASSIN", "vielleicht", "is not a yes/no value"),
])
def test_a_bad_setting_stops_send_before_anything_is_marked(readers, monkeypatch, name, value, needle):
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "smtp")
    monkeypatch.setenv(name, value)
    result = readers.run("send", "1", "--yes")
    assert result.exit_code == 1 and needle in one_line(result)
    untouched(readers)


def test_a_bad_setting_in_the_file_names_the_file_and_key(project):
    project.set_config("send", "max_attempts", 0)
    result = project.run("issues", "list")
    assert result.exit_code == 1
    assert f"{project.config_path}: [send] max_attempts = 0 is out of range" in one_line(result)


# --- a sending thread that dies ends the run with its error ------------------------------------

class Dies:
    """A transport that fails the way `how` says, after `after` messages."""

    def __init__(self, how: str, after: int = 0) -> None:
        self.how, self.after, self.sent, self.opened = how, after, 0, False

    @property
    def is_open(self) -> bool:
        return self.opened

    def open(self) -> None:
        if self.how == "open":
            from newsletter.errors import TransportError

            raise TransportError("Cannot connect to SMTP server relay:587 (refused) - check the host")
        self.opened = True

    def send(self, sender, recipient, data, before_data=None):
        if self.sent >= self.after:
            if self.how == "bug":
                raise KeyError("a bug in a transport")
            if self.how == "reconnect":
                self.opened = False
                self.how = "open"
                return Result(Outcome.RETRY, None, "connection lost")
        if before_data is not None:
            before_data()
        self.sent += 1
        return Result(Outcome.SENT, 250, "ok")

    def close(self) -> None:
        pass


def run_send(project, factory, connections=2):
    settings = project.settings()
    settings.send.connections = connections
    settings.send.retry_delay = 0
    with project.store() as db:
        return delivery.deliver(db, settings, get_issue(db, 1), delivery.SendOptions(), transport_factory=factory)


def test_a_transport_that_cannot_connect_stops_the_run_and_marks_nothing(readers):
    from newsletter.errors import TransportError

    with pytest.raises(TransportError, match="Cannot connect"):
        run_send(readers, lambda: Dies("open"))
    untouched(readers)


def test_a_bug_in_a_thread_ends_the_run_with_its_error_and_the_next_run_continues(readers):
    from newsletter.errors import NewsletterError

    with pytest.raises(NewsletterError, match=r"A sending thread failed \(KeyError"):
        run_send(readers, lambda: Dies("bug", after=1))
    summary = run_send(readers, lambda: Dies("never"))
    assert summary.counts["sent"] + summary.counts["sending"] == 5 and summary.counts["queued"] == 0


def test_a_thread_whose_transport_cannot_be_made_stops_the_feeder(readers):
    made = []

    def factory():
        made.append(1)
        if len(made) > 1:
            raise RuntimeError("no second connection")
        return Dies("never")

    outcome = []

    def run() -> None:
        try:
            run_send(readers, factory, connections=2)
        except Exception as e:  # noqa: BLE001 - the test looks at it below
            outcome.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the feeder waited for a thread that is gone"
    assert outcome and "no second connection" in str(outcome[0])


def test_a_reconnect_that_fails_leaves_the_row_queued_without_an_attempt(readers):
    from newsletter.errors import SendStopped, TransportError

    with pytest.raises(SendStopped) as stopped:
        run_send(readers, lambda: Dies("reconnect", after=2), connections=1)
    assert isinstance(stopped.value.__cause__, TransportError)
    assert stopped.value.summary.counts["sent"] == 2
    rows = {r["email"]: r for r in readers.db()["deliveries"].rows}
    assert sum(r["status"] == "sent" for r in rows.values()) == 2
    assert all(r["attempts"] <= 1 for r in rows.values())
    assert not [r for r in rows.values() if r["status"] == "sending"]


def test_the_cli_exits_non_zero_when_a_thread_dies(readers, monkeypatch):
    monkeypatch.setattr("newsletter.delivery.transports.files.FileTransport.send",
                        lambda self, *a: (_ for _ in ()).throw(KeyError("kaputt")))
    result = readers.run("send", "1", "--yes")
    assert result.exit_code == 1 and "A sending thread failed (KeyError" in one_line(result)


# --- the database ------------------------------------------------------------------------------

def test_only_init_and_demo_create_a_database(project, tmp_path):
    typo = tmp_path / "tippfehler.db"
    for args in (["import", project.write("a.json", "[]")], ["issues", "list"], ["subscribers", "list"],
                 ["compose"], ["check", "1"]):
        result = project.run("--db", typo, *args)
        assert result.exit_code == 1, args
        assert f"No database at {typo} (from --db)" in one_line(result) and "newsletter init" in result.output
    assert not typo.exists()
    assert project.run("--db", typo, "init").exit_code == 0 and typo.exists()


def test_a_read_only_database_is_one_line_and_works_again_once_fixed(composed, monkeypatch):
    """SQLite makes -wal and -shm with the database's own mode: a read-only database used to
    leave a read-only -shm behind that kept failing after the database was fixed."""
    from newsletter.store import db as store_db

    path = composed.settings().db_path
    shm = path.with_name(path.name + "-shm")
    if os.geteuid() == 0:  # root may write anything: judge by the mode bits, as for any other user
        monkeypatch.setattr(store_db.os, "access", lambda p, mode: not mode & os.W_OK
                            or bool(stat.S_IMODE(os.stat(p).st_mode) & 0o200))
    os.chmod(path, 0o444)
    shm.touch()
    os.chmod(shm, 0o444)
    result = composed.run("compose", "--replace", "1")
    assert result.exit_code == 1 and "read-only" in one_line(result) and f"chmod u+w {path}" in result.output
    os.chmod(path, 0o644)  # what the message says to do
    assert composed.run("compose", "--replace", "1").exit_code == 0
    assert not shm.exists() or stat.S_IMODE(shm.stat().st_mode) & 0o200  # mended, or gone with the last close


# --- dates and spans out of range --------------------------------------------------------------

@pytest.mark.parametrize("args,needle", [
    (["compose", "--date", "0001-01-05"], "--date '0001-01-05' is outside 1900..2999"),
    (["compose", "--since", "999999d"], "--since '999999d' reaches back before 1900"),
    (["articles", "list", "--since", "99999999w"], "reaches back before 1900"),
    (["compose", "--date", "9999-12-31"], "outside 1900..2999"),
])
def test_dates_out_of_range_are_one_line(content, args, needle):
    result = content.run(*args)
    assert result.exit_code == 1 and needle in one_line(result)


# --- a server that drips its answer ------------------------------------------------------------

class Dripping(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        for _ in range(100):
            self.wfile.write(b" ")
            self.wfile.flush()
            time.sleep(0.2)

    def log_message(self, *args):
        pass


def test_a_url_import_has_one_deadline_for_the_whole_download(project):
    from newsletter.content import ingest

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Dripping)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.monotonic()  # real time: the deadline guards against a real slow peer
        with pytest.raises(InputError) as failure:  # each byte comes well within a per-read timeout
            ingest._fetch(f"http://127.0.0.1:{server.server_address[1]}/feed.json", deadline=1.0)
        assert time.monotonic() - started < 5  # the server would drip for 20 s
        assert "(no complete answer within 1 s)" in str(failure.value) and "download the file" in str(failure.value)
    finally:
        server.shutdown()


# --- help ----------------------------------------------------------------------------------------

def test_help_shows_no_type_noise_and_names_the_settings(project):
    send_help = project.run("send", "--help").output
    assert "<bool>" not in send_help and "BOOLEAN" not in send_help
    serve_help = project.run("serve", "--help").output
    assert "[serve] host, 127.0.0.1" in serve_help and "[serve] port, 8080" in serve_help
    assert "[publication] base_url" in serve_help


def test_send_to_nobody_leaves_the_issue_a_draft(composed, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    result = composed.run("send", SLUG, "--yes")
    assert result.exit_code == 0 and "no active subscribers" in result.output
    assert composed.db()["issues"].get(1)["status"] == "draft"


def test_opening_while_another_process_closes_its_last_connection_never_fails(project):
    """Closing the last connection removes -wal and -shm; an open that looked at the -shm just
    then took the vanished file for a read-only one and failed (a loop of 300 opens each)."""
    import threading

    from newsletter.errors import StoreError
    from newsletter.store import open_db

    path = project.settings().db_path
    errors: list[str] = []

    def churn() -> None:
        for _ in range(300):
            try:
                db = open_db(path)
                db.value("select count(*) from articles")
                db.close()
            except StoreError as e:
                errors.append(str(e))

    threads = [threading.Thread(target=churn) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
