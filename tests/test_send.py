"""`newsletter send` against a real SMTP server on 127.0.0.1 with injected faults."""

from __future__ import annotations

import email
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
from conftest import BERLIN, NUMBER, SLUG, START, day
from smtp_server import Handler, Server, self_signed

from newsletter import tokens
from newsletter.audience import subscribers
from newsletter.dates import german_short
from newsletter.mail.message import list_id

SECRET = "test-secret-0123456789abcdef"
READERS = [
    ("erika@example.org", "Frau", "Dr.", "Erika", "Muster"),
    ("hans@example.org", "Herr", "", "Hans", "Beispiel"),
    ("kim@example.org", "", "", "Kim", "Probe"),
    ("lea@example.org", "Frau", "", "Lea", "Test"),
    ("max@example.org", "", "", "", ""),
]


@pytest.fixture(params=[True, False], ids=["pipelining", "one-command-at-a-time"])
def smtp(request):
    server = Server(Handler(pipelining=request.param)).start()
    yield server
    server.stop()


def add_readers(project, readers=READERS):
    db = project.store()
    for address, anrede, titel, vorname, nachname in readers:
        subscribers.add(db, address, anrede=anrede, titel=titel, vorname=vorname, nachname=nachname,
                        consent_source="Anmeldeformular Test")
    db.close()


@pytest.fixture
def sending(composed, smtp, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "smtp")
    monkeypatch.setenv("NEWSLETTER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("NEWSLETTER_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("NEWSLETTER_SMTP_SECURITY", "none")
    monkeypatch.setenv("NEWSLETTER_SEND_RETRY_DELAY", "0.01")
    monkeypatch.setenv("NEWSLETTER_CHECK_SPAMASSASSIN", "0")  # test_check.py covers it; it takes seconds
    add_readers(composed)
    composed.smtp = smtp
    return composed


def deliveries(project):
    return {r["email"]: r for r in project.db().query("select * from deliveries")}


def test_each_active_reader_gets_one_personalised_copy(sending):
    result = sending.run("send", SLUG, "--yes")
    assert result.exit_code == 0, result.output
    assert "5 sent, 0 deferred, 0 failed" in result.output and "is sent" in result.output
    handler = sending.smtp.handler
    assert sorted(r for _, rcpts, _ in handler.messages for r in rcpts) == sorted(r[0] for r in READERS)
    raw = handler.received_by("erika@example.org")[0]
    message = email.message_from_bytes(raw, policy=policy.default)
    html = message.get_body(("html",)).get_content()
    assert "Sehr geehrte Frau Dr. Muster," in html
    assert message["To"] == "erika@example.org"
    assert "Guten Tag Kim Probe," in email.message_from_bytes(handler.received_by("kim@example.org")[0],
                                                                policy=policy.default).get_body(("plain",)).get_content()
    url = message["List-Unsubscribe"].split(">")[0].lstrip("<")
    token = url.rsplit("/u/", 1)[1]
    assert "@" not in url
    sid = tokens.verify(SECRET.encode(), list_id(sending.settings()), token)
    assert sending.db()["subscribers"].get(sid)["email"] == "erika@example.org"
    assert f"/u/{token}" in html
    rows = deliveries(sending)
    assert {r["status"] for r in rows.values()} == {"sent"}
    assert all(r["message_id"] and r["last_code"] == 250 for r in rows.values())
    assert sending.db()["issues"].get(1)["status"] == "sent"
    # Running it again sends nothing twice.
    again = sending.run("send", SLUG, "--yes")
    assert again.exit_code == 0 and len(handler.messages) == 5


def test_only_active_readers_and_suppressed_skipped(sending):
    db = sending.db()
    db.execute("update subscribers set status = 'unsubscribed' where email = 'hans@example.org'")
    db.conn.commit()
    subscribers.add(sending.store(), "pending@example.org")  # no consent source: pending
    handler = sending.smtp.handler
    handler.rcpt_faults["max@example.org"] = ["451 4.3.0 Greylisted"] * 3  # deferred in the first run
    first = sending.run("send", "1", "--yes")
    assert "3 sent, 1 deferred" in first.output
    received = {r for _, rcpts, _ in handler.messages for r in rcpts}
    assert "hans@example.org" not in received and "pending@example.org" not in received
    assert received == {"erika@example.org", "kim@example.org", "lea@example.org"}
    # Queued while active, bounced before the retry: the next run skips him.
    db.execute("update subscribers set status = 'bounced' where email = 'max@example.org'")
    db.conn.commit()
    second = sending.run("send", "1", "--yes")
    assert second.exit_code == 0, second.output
    assert "3 sent, 0 deferred, 0 failed, 0 queued, 0 unconfirmed, 1 skipped" in second.output
    assert handler.received_by("max@example.org") == [] and len(handler.messages) == 3
    row = deliveries(sending)["max@example.org"]
    assert (row["status"], row["last_reply"]) == ("skipped", "subscriber is bounced")


def test_transient_replies_are_retried_with_backoff(sending, fake_clock):
    handler = sending.smtp.handler
    handler.rcpt_faults["hans@example.org"] = ["451 4.3.0 Try again later", "452 4.2.2 Mailbox full"]
    handler.rcpt_faults["lea@example.org"] = ["drop"]  # before the message: it cannot have arrived
    handler.rcpt_faults["kim@example.org"] = ["421 4.7.0 Too many messages on this connection"]
    result = sending.run("send", "1", "--yes")
    assert result.exit_code == 0, result.output
    rows = deliveries(sending)
    assert rows["hans@example.org"]["status"] == "sent" and rows["hans@example.org"]["attempts"] == 3
    assert rows["lea@example.org"]["status"] == "sent" and rows["lea@example.org"]["attempts"] == 2
    assert len(handler.received_by("lea@example.org")) == 1
    assert rows["kim@example.org"]["status"] == "sent" and rows["kim@example.org"]["attempts"] == 2
    # retry_delay 0.01 s, doubled per attempt; one connection takes the readers in order
    assert fake_clock.sleeps == [0.01, 0.02, 0.01, 0.01]  # hans twice, then kim, then lea


def test_an_unanswered_final_dot_is_unconfirmed_and_never_resent_on_its_own(sending, monkeypatch):
    """The server takes the whole message and never answers the final dot in time: the message
    may have arrived, so it is neither retried in this run nor sent by the next one."""
    monkeypatch.setenv("NEWSLETTER_SMTP_TIMEOUT", "1")
    monkeypatch.setenv("NEWSLETTER_SEND_MAX_ATTEMPTS", "2")
    handler = sending.smtp.handler
    handler.stall = 3.0
    handler.data_faults["lea@example.org"] = ["stall"]
    first = sending.run("send", "1", "--yes")
    assert first.exit_code == 1, first.output
    error = [line for line in first.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "no answer within 1 s" in error[0] and "lea@example.org" in error[0]
    assert "unconfirmed" in error[0] and "--resend-unconfirmed" in error[0]
    assert "1 unconfirmed" in first.output
    rows = deliveries(sending)
    assert rows["lea@example.org"]["status"] == "sending" and rows["lea@example.org"]["attempts"] == 1
    assert "may have arrived" in rows["lea@example.org"]["last_reply"]
    assert rows["max@example.org"]["status"] == "queued"  # the run stopped after the stall
    second = sending.run("send", "1", "--yes")
    assert "Unconfirmed (an earlier run ended before the server's answer): lea@example.org" in second.output
    assert deliveries(sending)["max@example.org"]["status"] == "sent"
    shown = sending.run("status", "1").output
    assert "1 unconfirmed" in shown and "unconfirmed lea@example.org" in shown
    assert handler.arrived["lea@example.org"] == 1  # one whole copy reached the server, in two runs
    assert all(handler.arrived[r[0]] == 1 for r in READERS)
    resent = sending.run("send", "1", "--yes", "--resend-unconfirmed")
    assert resent.exit_code == 0 and "is sent" in resent.output
    assert handler.arrived["lea@example.org"] == 2  # the second copy only on request


def test_a_connection_lost_after_the_final_dot_is_unconfirmed(sending):
    handler = sending.smtp.handler
    handler.data_faults["kim@example.org"] = ["drop"]
    result = sending.run("send", "1", "--yes")
    assert result.exit_code == 1 and "gave no answer to the message to kim@example.org" in result.output
    assert "connection lost" in result.output
    rows = deliveries(sending)
    assert rows["kim@example.org"]["status"] == "sending" and rows["kim@example.org"]["attempts"] == 1
    again = sending.run("send", "1", "--yes")
    assert "Unconfirmed" in again.output and "kim@example.org" in again.output
    assert deliveries(sending)["kim@example.org"]["attempts"] == 1  # not tried again
    assert handler.arrived["kim@example.org"] == 1


def test_a_stall_before_the_message_stops_the_run_after_one_timeout(sending, monkeypatch):
    """A server that stalls at RCPT costs one timeout, not max_attempts timeouts per reader."""
    monkeypatch.setenv("NEWSLETTER_SMTP_TIMEOUT", "1")
    monkeypatch.setenv("NEWSLETTER_SEND_MAX_ATTEMPTS", "3")
    handler = sending.smtp.handler
    handler.stall = 3.0
    handler.rcpt_faults["hans@example.org"] = ["stall"]
    first = sending.run("send", "1", "--yes")
    assert first.exit_code == 1 and "stalled while taking the message to hans@example.org" in first.output
    rows = deliveries(sending)
    assert rows["hans@example.org"]["status"] == "deferred" and rows["hans@example.org"]["attempts"] == 1
    assert [rows[a]["status"] for a in ("kim@example.org", "lea@example.org", "max@example.org")] == ["queued"] * 3
    assert "--resend-unconfirmed" not in first.output
    second = sending.run("send", "1", "--yes")
    assert second.exit_code == 0 and "is sent" in second.output
    assert all(len(handler.received_by(r[0])) == 1 for r in READERS)


def test_sent_bytes_meet_the_email_rules(sending):
    sending.run("send", "1", "--yes")
    for _, _, raw in sending.smtp.handler.messages:
        head, body = raw.split(b"\r\n\r\n", 1)
        assert b"\n" not in raw.replace(b"\r\n", b"")
        assert max(len(line) for line in body.split(b"\r\n")) <= 76
        assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in head + b"\r\n"
        unfolded = head.replace(b"\r\n ", b" ")
        [unsub] = [line for line in unfolded.split(b"\r\n") if line.startswith(b"List-Unsubscribe:")]
        assert unsub.startswith(b"List-Unsubscribe: <https://www.stadtmarketing-demo.de/u/") and b"=?" not in unsub
        assert b"\r\nReturn-Path:" not in b"\r\n" + head and b"\r\nBcc:" not in b"\r\n" + head
        assert max(len(line) for line in head.split(b"\r\n")) <= 78  # with the readers' real tokens
        message = email.message_from_bytes(raw, policy=policy.default)
        assert message["Message-ID"].endswith("@stadtmarketing-demo.de>")
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    ids = [email.message_from_bytes(raw)["Message-ID"] for *_, raw in sending.smtp.handler.messages]
    assert len(set(ids)) == len(ids) == 5


def test_deferred_after_max_attempts_then_next_run_continues(sending):
    handler = sending.smtp.handler
    handler.rcpt_faults["hans@example.org"] = ["451 4.3.0 Greylisted"] * 3
    first = sending.run("send", "1", "--yes")
    assert "4 sent, 1 deferred" in first.output and f"run 'newsletter send {SLUG}' again" in first.output
    status = sending.run("status", "1")
    assert "deferred hans@example.org  451 4.3.0 Greylisted  (3 attempts)" in status.output
    assert sending.db()["issues"].get(1)["status"] == "sending"
    second = sending.run("send", "1", "--yes")
    assert "5 sent" in second.output and "is sent" in second.output
    assert len(handler.received_by("hans@example.org")) == 1


def test_permanent_failures_and_unknown_user_bounces(sending):
    handler = sending.smtp.handler
    handler.rcpt_faults["hans@example.org"] = ["550 5.1.1 User unknown"]
    handler.data_faults["kim@example.org"] = ["554 5.7.1 Message rejected as spam"]
    result = sending.run("send", "1", "--yes")
    assert "3 sent, 0 deferred, 2 failed" in result.output
    db = sending.db()
    status = {r["email"]: r["status"] for r in db["subscribers"].rows}
    assert status["hans@example.org"] == "bounced" and status["kim@example.org"] == "active"
    shown = sending.run("status", "1").output
    assert "550 5.1.1 User unknown" in shown and "554 5.7.1 Message rejected as spam" in shown


def test_parallel_connections_on_a_slow_server(sending):
    handler = sending.smtp.handler
    handler.delay = 0.05
    handler.gate = 4  # the first messages wait in DATA until four are there at once
    extra = [(f"leser{i}@example.org", "", "", "", "") for i in range(20)]
    add_readers(sending, extra)
    result = sending.run("send", "1", "--yes", "--connections", "4")
    assert result.exit_code == 0 and "25 sent" in result.output
    assert len(handler.messages) == 25
    assert handler.peak == 4  # four transactions at once, and never more


def test_limit_and_rate(sending, fake_clock):
    first = sending.run("send", "1", "--yes", "--limit", "2", "--rate", "10")
    assert "2 sent" in first.output and "3 queued" in first.output
    assert fake_clock.sleeps == [pytest.approx(0.1)]  # the second message waits its 0.1 s slot
    sending.run("send", "1", "--yes")
    assert len(sending.smtp.handler.messages) == 5


def test_test_copy_and_dry_run_record_nothing(sending):
    test = sending.run("send", "1", "--test", "redaktion@example.de")
    assert test.exit_code == 0, test.output
    [(_, rcpts, raw)] = sending.smtp.handler.messages
    assert rcpts == ["redaktion@example.de"]
    assert email.message_from_bytes(raw, policy=policy.default)["Subject"].startswith("[TEST] ")
    dry = sending.run("send", "1", "--dry-run")
    assert "built 5 messages" in dry.output and "nothing sent" in dry.output
    assert deliveries(sending) == {} and len(sending.smtp.handler.messages) == 1
    assert sending.db()["issues"].get(1)["status"] == "draft"


def test_refuses_without_secret(sending, monkeypatch):
    monkeypatch.delenv("NEWSLETTER_SECRET")
    result = sending.run("send", "1", "--yes")
    assert result.exit_code == 1 and "NEWSLETTER_SECRET is not set" in result.output


def test_unreachable_server_stops_with_one_line(sending, monkeypatch):
    from smtp_server import free_port

    monkeypatch.setenv("NEWSLETTER_SMTP_PORT", str(free_port()))
    result = sending.run("send", "1", "--yes")
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: Cannot connect to SMTP server 127.0.0.1:")
    assert len(result.output.strip().splitlines()) == 1
    assert_untouched(sending)


def assert_untouched(project) -> None:
    """A run that never reached a server left readers, attempts and the issue as they were."""
    assert deliveries(project) == {}
    assert project.db()["issues"].get(1)["status"] == "draft"


def test_wrong_password_stops_and_next_run_continues(composed, monkeypatch, tmp_path):
    server = Server(Handler(), auth=("redaktion", "richtig")).start()
    try:
        for name, value in (("SECRET", SECRET), ("TRANSPORT", "smtp"), ("SMTP_HOST", "127.0.0.1"),
                            ("SMTP_PORT", str(server.port)), ("SMTP_SECURITY", "none"),
                            ("SMTP_USER", "redaktion"), ("SMTP_PASSWORD", "falsch")):
            monkeypatch.setenv(f"NEWSLETTER_{name}", value)
        add_readers(composed)
        refused = composed.run("send", "1", "--yes")
        assert refused.exit_code == 1
        assert "SMTP login to 127.0.0.1" in refused.output and "NEWSLETTER_SMTP_PASSWORD" in refused.output
        assert_untouched(composed)
        monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", "richtig")
        ok = composed.run("send", "1", "--yes")
        assert "5 sent" in ok.output and len(server.handler.messages) == 5
    finally:
        server.stop()


def test_starttls_with_self_signed_certificate_needs_its_ca(composed, monkeypatch, tmp_path):
    cert = self_signed(tmp_path)
    server = Server(Handler(), tls_cert=cert).start()
    try:
        for name, value in (("SECRET", SECRET), ("TRANSPORT", "smtp"), ("SMTP_HOST", "127.0.0.1"),
                            ("SMTP_PORT", str(server.port)), ("SMTP_SECURITY", "starttls")):
            monkeypatch.setenv(f"NEWSLETTER_{name}", value)
        add_readers(composed)
        refused = composed.run("send", "1", "--yes")
        assert refused.exit_code == 1 and "cannot be verified" in refused.output and "ca_file" in refused.output
        assert server.handler.messages == []
        assert_untouched(composed)
        monkeypatch.setenv("NEWSLETTER_SMTP_CA_FILE", str(cert[0]))
        ok = composed.run("send", "1", "--yes")
        assert ok.exit_code == 0, ok.output
        assert len(server.handler.messages) == 5
    finally:
        server.stop()


def test_a_certificate_for_another_name_is_named_as_the_cause(composed, monkeypatch, tmp_path):
    cert = self_signed(tmp_path, names="DNS:localhost")  # the relay is configured by its IP
    server = Server(Handler(), tls_cert=cert).start()
    try:
        for name, value in (("SECRET", SECRET), ("TRANSPORT", "smtp"), ("SMTP_HOST", "127.0.0.1"),
                            ("SMTP_PORT", str(server.port)), ("SMTP_SECURITY", "starttls"),
                            ("SMTP_CA_FILE", str(cert[0]))):
            monkeypatch.setenv(f"NEWSLETTER_{name}", value)
        add_readers(composed)
        refused = composed.run("send", "1", "--yes")
        assert refused.exit_code == 1 and len(refused.output.strip().splitlines()) == 1
        assert "is not made out for '127.0.0.1'" in refused.output and "set [smtp] host" in refused.output
        assert "ca_file" not in refused.output
        monkeypatch.setenv("NEWSLETTER_SMTP_HOST", "localhost")
        assert "5 sent" in composed.run("send", "1", "--yes").output
    finally:
        server.stop()


def test_server_without_starttls_is_refused_when_starttls_required(sending, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SMTP_SECURITY", "starttls")
    result = sending.run("send", "1", "--yes")
    assert result.exit_code == 1 and "does not offer STARTTLS" in result.output


def test_dkim_signature_covers_the_one_click_headers_and_verifies(sending, tmp_path):
    import dkim

    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                            check=True, capture_output=True).stdout
    import base64

    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    sending.configure(send={"dkim_key": str(key), "dkim_selector": "nl2026",
                            "feedback_id": "issue:newsletter:demo:SMBrief", "verp": True})
    assert sending.run("send", "1", "--yes").exit_code == 0
    sender, _, raw = sending.smtp.handler.messages[0]
    assert sender.startswith("bounces+") and sender.endswith("@stadtmarketing-demo.de")
    signature = raw.split(b"\r\n\r\n", 1)[0].split(b"DKIM-Signature:", 1)[1]
    signed = signature.split(b"h=", 1)[1].split(b";", 1)[0].replace(b"\r\n", b"").replace(b" ", b"").lower()
    for name in (b"from", b"to", b"subject", b"date", b"message-id", b"list-id", b"list-unsubscribe",
                 b"list-unsubscribe-post", b"feedback-id"):
        assert name in signed.split(b":"), name
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)
    # Over-signed: a second From, Subject, To or one-click header added in transit breaks it.
    for name in (b"from", b"subject", b"date", b"to", b"list-unsubscribe", b"list-unsubscribe-post"):
        assert signed.split(b":").count(name) == 2, name
    for added in (b"From: Bank <support@bank.example>\r\n", b"Subject: Dringend\r\n",
                  b"List-Unsubscribe: <https://evil.example/u>\r\n"):
        forged = raw.replace(b"\r\n\r\n", b"\r\n" + added + b"\r\n", 1)
        assert not dkim.verify(forged, dnsfunc=lambda name, timeout=5: record), added


def test_ehlo_names_this_machine_or_the_configured_name(sending, monkeypatch):
    import socket

    assert sending.run("send", "1", "--yes", "--limit", "1").exit_code == 0
    assert sending.smtp.handler.helo == [socket.getfqdn()]
    monkeypatch.setenv("NEWSLETTER_SMTP_HELO", "mailout.stadtmarketing-demo.de")
    assert sending.run("send", "1", "--yes", "--limit", "1").exit_code == 0
    assert sending.smtp.handler.helo[-1] == "mailout.stadtmarketing-demo.de"


def test_file_transport_is_the_default(composed, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    add_readers(composed)
    result = composed.run("send", "1", "--yes")
    assert result.exit_code == 0, result.output
    files = sorted((composed.root / "outbox").glob("*.eml"))
    assert len(files) == 5
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in files[0].read_bytes()


def local_time(minutes: int, german: bool = False) -> str:
    """The suite's moment moved by `minutes`, as an editor types it: CI runs the suite at 01:30
    on the night clocks change and at 23:30 on a leap day, so times are never hard-coded."""
    moment = (START + timedelta(minutes=minutes)).astimezone(BERLIN)
    return moment.strftime("%d.%m.%Y %H:%M" if german else "%Y-%m-%d %H:%M")


def test_schedule_and_run_due(sending, fake_clock):
    silent = sending.run("run-due")
    assert silent.exit_code == 0 and silent.output == ""
    scheduled = sending.run("schedule", "1", "--at", "2099-11-24 08:00", "--yes")
    assert "scheduled for 2099-11-24 08:00 CET" in scheduled.output
    assert sending.db()["issues"].get(1)["scheduled_at"] == "2099-11-24T07:00:00+00:00"
    assert sending.run("run-due").output == ""  # not due yet
    assert sending.run("unschedule", "1").exit_code == 0
    assert sending.run("run-due").output == ""
    sending.run("schedule", "1", "--at", local_time(90, german=True))
    assert sending.run("run-due").output == ""
    fake_clock.advance(hours=2)  # half an hour late: due
    due = sending.run("run-due")
    assert due.exit_code == 0 and "5 sent" in due.output
    assert sending.run("run-due").output == ""
    assert sending.run("schedule", "1", "--at", "2030-01-01 08:00", "--yes").exit_code == 1  # sent: frozen


def test_a_time_in_the_past_is_refused_and_german_times_are_taken(sending, fake_clock):
    """A typo in the year would send at once: refused with one line, nothing scheduled."""
    refused = sending.run("schedule", "1", "--at", "2025-01-01 08:00")
    assert refused.exit_code == 1 and len(refused.output.strip().splitlines()) == 1
    assert "is in the past" in refused.output and "newsletter send" in refused.output
    assert sending.db()["issues"].get(1)["status"] == "draft"
    earlier_today = sending.run("schedule", "1", "--at", local_time(-1))
    assert earlier_today.exit_code == 1 and "in the past" in earlier_today.output
    far = sending.run("schedule", "1", "--at", "10.12.2062 08:00")  # no terminal to ask
    assert far.exit_code == 2 and "more than 60 days ahead" in far.output and "--yes" in far.output
    assert sending.db()["issues"].get(1)["status"] == "draft"
    german = sending.run("schedule", "1", "--at", f"{german_short(day(7))} 08:00")
    assert german.exit_code == 0, german.output
    assert sending.db()["issues"].get(1)["scheduled_at"].startswith(day(7).isoformat())
    assert sending.run("schedule", "1", "--at", "31.02.2027 08:00").exit_code == 1


def test_a_second_process_cannot_send_the_same_issue(sending, fake_clock):
    from newsletter.store import issue_lock
    from newsletter.store.issues import get_issue

    assert sending.run("schedule", "1", "--at", local_time(30)).exit_code == 0
    fake_clock.advance(hours=1)  # due now
    issue = get_issue(sending.store(), "1")
    with issue_lock(sending.settings().db_path, issue):
        result = sending.run("send", "1", "--yes")
        assert result.exit_code == 1 and "being sent by another process" in result.output
        due = sending.run("run-due")  # cron's run: leaves the issue to the process holding the lock
        assert due.exit_code == 0 and due.output == ""
        assert sending.smtp.handler.messages == []
        assert sending.db()["issues"].get(1)["status"] == "scheduled"
    after = sending.run("run-due")
    assert after.exit_code == 0 and "5 sent" in after.output
    assert len(sending.smtp.handler.messages) == 5


def test_kill_9_mid_send_then_resume_sends_everyone_exactly_once(composed, tmp_path, monkeypatch):
    """A real subprocess killed with SIGKILL mid-send; the same command again finishes the job."""
    log, portfile = tmp_path / "received.jsonl", tmp_path / "port"
    server = subprocess.Popen([sys.executable, str(Path(__file__).parent / "smtp_server.py"),
                               str(portfile), str(log), "0.03"])
    try:
        for _ in range(100):
            if portfile.exists() and portfile.read_text():
                break
            time.sleep(0.05)
        readers = [(f"leser{i:03d}@example.org", "", "", "", "") for i in range(60)]
        add_readers(composed, readers)
        env = {**os.environ, "NEWSLETTER_CONFIG": str(composed.config_path), "NEWSLETTER_SECRET": SECRET,
               "NEWSLETTER_TRANSPORT": "smtp", "NEWSLETTER_SMTP_HOST": "127.0.0.1",
               "NEWSLETTER_SMTP_PORT": portfile.read_text(), "NEWSLETTER_SMTP_SECURITY": "none",
               "NEWSLETTER_CHECK_SPAMASSASSIN": "0"}
        command = [sys.executable, "-m", "newsletter", "send", "1", "--yes", "--connections", "2"]
        victim = subprocess.Popen(command, env=env, cwd=composed.root,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 20):
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        before = len(log.read_text().splitlines())
        assert 20 <= before < 60, "the kill must land mid-send"
        resumed = subprocess.run(command, env=env, cwd=composed.root, capture_output=True, text=True, timeout=60)
        assert resumed.returncode == 0, resumed.stderr
        unconfirmed = [line.split(": ", 1)[1].split(" - ")[0] for line in resumed.stderr.splitlines()
                       if line.startswith("Unconfirmed")]
        assert len(unconfirmed) <= 2  # at most one per connection
        copies: dict[str, int] = {}
        for line in log.read_text().splitlines():
            for rcpt in json.loads(line)["to"]:
                copies[rcpt] = copies.get(rcpt, 0) + 1
        for address, *_ in readers:
            if address in unconfirmed:
                assert copies.get(address, 0) <= 1
            else:
                assert copies.get(address) == 1, address
        if unconfirmed:
            final = subprocess.run(command + ["--resend-unconfirmed"], env=env, cwd=composed.root,
                                   capture_output=True, text=True, timeout=60)
            assert "is sent" in final.stdout
    finally:
        server.kill()
        server.wait()


def test_progress_bar_at_a_terminal_and_plain_lines_without_one(composed):
    """At a terminal (a real pseudo-terminal here) the send shows a bar with position, rate and
    ETA; from cron (no terminal) only plain lines, no control characters."""
    import pty

    add_readers(composed)
    env = {**os.environ, "NEWSLETTER_CONFIG": str(composed.config_path), "NEWSLETTER_SECRET": SECRET,
           "NEWSLETTER_CHECK_SPAMASSASSIN": "0", "COLUMNS": "120"}
    command = [sys.executable, "-m", "newsletter", "send", "1", "--yes"]
    main, child = pty.openpty()
    proc = subprocess.Popen(command, env=env, cwd=composed.root, stdin=child, stdout=child, stderr=child)
    os.close(child)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(main)
        assert proc.wait(timeout=60) == 0
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert re.search(r"Sending \(\d+/s, ETA \d\d:\d\d\)", shown), shown
    assert "5/5" in shown and "100%" in shown, shown
    assert f"Issue {SLUG}: 5 sent" in shown

    db = composed.db()
    with db.conn:  # send again, this time without a terminal
        db.execute("update deliveries set status = 'queued'")
    plain = subprocess.run(command, env=env, cwd=composed.root, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0 and "Sending" not in plain.stderr and "\r" not in plain.stderr + plain.stdout
    assert f"Issue {SLUG}: 5 sent" in plain.stdout and "(5 attempted" in plain.stdout


def _break_subject(project, subject="AW: Stadtmarketing Brief") -> None:
    db = project.db()
    with db.conn:
        db.execute("update issues set subject = ? where id = 1", [subject])


def test_send_runs_the_preflight_checks_and_refuses_on_a_failure(sending):
    _break_subject(sending)
    refused = sending.run("send", "1", "--yes")
    assert refused.exit_code == 1
    assert refused.output.strip() == (
        f"Error: Issue {SLUG} fails 1 preflight check (subject.prefix) - see 'newsletter check "
        f"{SLUG}', fix the issue, or send anyway with --force")
    assert sending.smtp.handler.messages == [] and deliveries(sending) == {}
    assert sending.db()["issues"].get(1)["status"] == "draft"
    forced = sending.run("send", "1", "--yes", "--force")
    assert forced.exit_code == 0 and "5 sent" in forced.output
    assert sending.run("send", "1", "--dry-run").exit_code == 0  # a dry run never refuses


def test_schedule_checks_now_and_run_due_checks_again(sending, fake_clock):
    _break_subject(sending)
    assert sending.run("schedule", "1", "--at", local_time(30)).exit_code == 1
    assert sending.db()["issues"].get(1)["status"] == "draft"
    _break_subject(sending, f"Stadtmarketing Brief {NUMBER}")
    assert sending.run("schedule", "1", "--at", local_time(30)).exit_code == 0
    fake_clock.advance(hours=1)
    _break_subject(sending)  # broken after it was scheduled: cron refuses, loudly, and keeps it
    due = sending.run("run-due")
    assert due.exit_code == 1 and "fails 1 preflight check (subject.prefix)" in due.output
    assert sending.db()["issues"].get(1)["status"] == "scheduled" and sending.smtp.handler.messages == []
    _break_subject(sending, f"Stadtmarketing Brief {NUMBER}")
    assert "5 sent" in sending.run("run-due").output


def test_an_issue_of_articles_that_all_went_out_before_is_refused(sending):
    assert sending.run("send", "1", "--yes").exit_code == 0
    ids = [str(r["item_id"]) for r in sending.db().query(
        "select item_id from issue_items where issue_id = 1 and kind = 'article'")]
    only = [arg for i in ids for arg in ("--only", i)]
    assert sending.run("compose", "--date", day(1).isoformat(), *only).exit_code == 0
    check = sending.run("check", "2", "--no-spamassassin")
    assert check.exit_code == 1 and f"all {len(ids)} articles already went out in issue {SLUG}" in check.output
    refused = sending.run("send", "2", "--yes")
    assert refused.exit_code == 1 and "(items.repeat)" in refused.output and "--force" in refused.output
    assert len(sending.smtp.handler.messages) == 5
    forced = sending.run("send", "2", "--yes", "--force")
    assert forced.exit_code == 0 and "5 sent" in forced.output


def test_the_repeat_check_is_asked_even_when_the_last_check_passed(sending):
    """Issue 2 passed its check while issue 1 (same articles) was unsent; then 1 went out."""
    ids = [str(r["item_id"]) for r in sending.db().query(
        "select item_id from issue_items where issue_id = 1 and kind = 'article'")]
    only = [arg for i in ids for arg in ("--only", i)]
    assert sending.run("compose", "--date", day(1).isoformat(), *only).exit_code == 0
    assert sending.run("check", "2", "--no-spamassassin").exit_code == 0
    assert sending.run("send", "1", "--yes").exit_code == 0
    refused = sending.run("send", "2", "--yes")
    assert refused.exit_code == 1 and "(items.repeat)" in refused.output


def test_without_a_terminal_and_without_yes_nothing_is_sent(sending):
    """`newsletter send latest < /dev/null` used to mail everyone without asking."""
    result = sending.run("send", "latest", input="")
    assert result.exit_code == 2
    assert result.output.strip() == (f"Error: Not sending issue {SLUG} without a confirmation: there is no "
                                     "terminal to ask - pass --yes to send from cron or a script")
    assert sending.smtp.handler.messages == [] and deliveries(sending) == {}


def test_the_question_at_a_terminal_names_issue_subject_readers_and_transport(sending):
    import pty

    env = {**os.environ, "NEWSLETTER_CONFIG": str(sending.config_path), "COLUMNS": "200"}

    def ask(answer: bytes) -> str:
        main, child = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "newsletter", "send", "latest"], env=env, cwd=sending.root,
                                stdin=child, stdout=child, stderr=child)
        os.close(child)
        chunks, answered = [], False
        try:
            while True:
                try:
                    chunk = os.read(main, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                if not answered and b"[y/N]" in b"".join(chunks):
                    os.write(main, answer)
                    answered = True
        finally:
            os.close(main)
            proc.wait(timeout=60)
        return b"".join(chunks).decode("utf-8", "replace")

    subject = sending.db()["issues"].get(1)["subject"]
    shown = ask(b"n\n")
    port = sending.smtp.port
    assert f"Send issue {SLUG} (Nr. {NUMBER}) „{subject}“ to 5 readers via smtp to 127.0.0.1:{port}? [y/N]" \
        in shown.replace("\r\n", " ").replace("\n", " "), shown
    assert "Aborted" in shown and sending.smtp.handler.messages == []
    assert "5 sent" in ask(b"y\n") and len(sending.smtp.handler.messages) == 5


@pytest.fixture
def approval_required(sending):
    sending.configure(autopilot={"compose_at": "Mon 07:00", "send_at": "Mon 09:00",
                                 "reviewers": ["chefredaktion@stadtmarketing-demo.de"]})
    return sending


def test_with_approval_required_an_unapproved_issue_is_not_sent_by_hand(approval_required):
    project = approval_required
    refused = project.run("send", "1", "--yes")
    assert refused.exit_code == 1 and len(refused.output.strip().splitlines()) == 1
    assert 'is not approved ([autopilot] approval = "required")' in refused.output and "--force" in refused.output
    assert project.smtp.handler.messages == [] and deliveries(project) == {}
    assert project.run("schedule", "1", "--at", local_time(60)).exit_code == 1
    assert project.run("approve", "1", "--by", "chefredaktion@stadtmarketing-demo.de").exit_code == 0
    assert project.run("hold", "1", "--by", "cvd@stadtmarketing-demo.de", "--reason", "Termin prüfen").exit_code == 0
    held = project.run("send", "1", "--yes")
    assert held.exit_code == 1 and "is held by cvd@stadtmarketing-demo.de (Termin prüfen)" in held.output
    forced = project.run("send", "1", "--yes", "--force")
    assert forced.exit_code == 0 and "5 sent" in forced.output
    timeline = project.run("issues", "show", "1").output.split("timeline:")[1]
    assert "forced: checks skipped, the issue is held by cvd@stadtmarketing-demo.de (Termin prüfen)" in timeline


def test_with_approval_required_an_approved_issue_goes_out(approval_required):
    project = approval_required
    assert project.run("approve", "1", "--by", "chefredaktion@stadtmarketing-demo.de").exit_code == 0
    result = project.run("send", "1", "--yes")
    assert result.exit_code == 0 and "5 sent" in result.output


def test_the_text_part_as_received_keeps_78_columns_but_for_a_url_alone(sending):
    """'Newsletter abbestellen: <url>' made 90 columns once the token was spliced in, and the ad's
    '(Advertiser) <short link>' 79; job-ad links lost their indent."""
    long_reader = [("christiane.mustermann-beispiel@stadtverwaltung-musterstadt.de", "Frau", "Prof. Dr.",
                    "Christiane", "Mustermann-Beispiel")]
    add_readers(sending, long_reader)
    assert sending.run("send", "1", "--yes").exit_code == 0
    for _, _, raw in sending.smtp.handler.messages:
        text = email.message_from_bytes(raw, policy=policy.default).get_body(("plain",)).get_content()
        long = [line for line in text.splitlines() if len(line) > 78 and not re.fullmatch(r"\s*https://\S+", line)]
        assert long == [], long
    text = email.message_from_bytes(sending.smtp.handler.received_by(long_reader[0][0])[0],
                                    policy=policy.default).get_body(("plain",)).get_content()
    jobs = text.split("STELLENMARKT", 1)[1].split("-" * 78, 2)[1]
    links = [line for line in jobs.splitlines() if "https://" in line]
    assert links and all(line.startswith("  https://") for line in links), links
