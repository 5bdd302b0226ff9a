"""`newsletter bounces import` and `newsletter unsubscribes import`: hand-written DSNs (Postfix,
Exim, Office 365, Gmail), real ones made by Postfix, an ARF complaint, an out-of-office reply
and garbage, read from a single .eml, an mbox, a Maildir and an IMAP server over TLS on
127.0.0.1, checked in the store.
"""

from __future__ import annotations

import mailbox
import re
import socketserver
import ssl
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from conftest import START
from hypothesis import example, given, settings
from hypothesis import strategies as st
from smtp_server import free_port, self_signed

from newsletter import clock, tokens
from newsletter.audience import subscribers
from newsletter.audience.dsn import Failure, read_report
from newsletter.mail.message import list_id

SECRET = "test-secret-0123456789abcdef"
FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
# Each reader and the Message-ID of the issue they were sent (as in the returned headers).
READERS = {
    "anna.schmidt@example.net": "<1795503729.a1b2c3d4e5f60718293a@stadtmarketing-demo.de>",
    "jonas.probe@kunde-beispiel.de": "<1795503730.0f1e2d3c4b5a69788796@stadtmarketing-demo.de>",
    "max.mustermann@kreis-beispielstadt.de": "<1795503731.9c8b7a6f5e4d3c2b1a09@stadtmarketing-demo.de>",
    "lena@weiterleitung-example.de": "<1795503732.5a4b3c2d1e0f9a8b7c6d@stadtmarketing-demo.de>",
    "bernd.voll@example.org": "<1795503733.77e6d5c4b3a291807f6e@stadtmarketing-demo.de>",
    "clara.muster@mailprovider-example.com": "<1795503734.3c4d5e6f708192a3b4c5@stadtmarketing-demo.de>",
    "mara.voll@kunde-beispiel.de": "<1795503740.000000000000000000aa@stadtmarketing-demo.de>",
    "erika.muster@example.org": "<1795503741.000000000000000000bb@stadtmarketing-demo.de>",
    "tom.unbekannt@example.com": "<1795503742.000000000000000000cc@stadtmarketing-demo.de>",
    "petra.voll@postfach.example.com": "<1795503743.000000000000000000dd@stadtmarketing-demo.de>",
    "karl.voll@postfach.example.com": "<1795503744.000000000000000000ee@stadtmarketing-demo.de>",
    "jana.quota@quota.example.com": "<1795503745.000000000000000000ff@stadtmarketing-demo.de>",
}
ALL_BOUNCES = ["arf-abuse.eml", "exim-delayed.eml", "exim-user-unknown.eml", "garbage.bin",
               "gmail-no-such-user.eml", "office365-recipient-not-found.eml", "out-of-office.eml",
               "postfix-mailbox-full-delayed.eml", "postfix-user-unknown.eml", "qmail-bounce.eml",
               "reader-reply.eml"]
OTHER_FORMATS = ["dovecot-quota-rejected.eml", "forwarded-postfix-bounce.eml", "postfix-real-552-delayed.eml",
                 "postfix-real-552-mailbox-full.eml", "postfix-real-error-mailbox-full.eml",
                 "postfix-real-mailbox-full-delayed.eml", "postfix-real-mailbox-full-expired.eml",
                 "postfix-real-user-unknown.eml"]


@pytest.fixture
def readers(project, monkeypatch):
    """Every reader the fixtures are about, active, each with a sent delivery of one issue."""
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    db, store = project.db(), project.store()
    issue = db["issues"].insert({"slug": "2026-11-24", "status": "sent", "issue_date": "2026-11-24"}).last_pk
    for address, message_id in READERS.items():
        row, _ = subscribers.add(store, address, consent_source="Anmeldeformular Test")
        db["deliveries"].insert({"issue_id": issue, "subscriber_id": row["id"], "email": address, "status": "sent",
                                 "attempts": 1, "last_code": 250, "last_reply": "2.0.0 Ok", "message_id": message_id})
    db.conn.commit()
    db.close()
    return project


def fixture(name: str, *replacements: tuple[str, str]) -> bytes:
    raw = (FIXTURES / name).read_bytes()
    for old, new in replacements:
        assert old.encode() in raw, old
        raw = raw.replace(old.encode(), new.encode())
    return raw


def token(project, address: str, purpose: str = "unsubscribe", secret: str = SECRET) -> str:
    return tokens.make(secret.encode(), list_id(project.settings()), subscriber(project, address)["id"], purpose)


def subscriber(project, address: str) -> dict:
    return next(project.db()["subscribers"].rows_where("email = ?", [address]))


def status(project, address: str) -> str:
    return subscriber(project, address)["status"]


def events(project) -> list[dict]:
    return list(project.db().query("select * from bounce_events order by id"))


def delivery(project, address: str) -> dict:
    return next(project.db()["deliveries"].rows_where("email = ?", [address]))


def write_mbox(path: Path, mails: list[bytes]) -> Path:
    box = mailbox.mbox(path)
    for raw in mails:
        box.add(raw)
    box.close()
    return path


def run_import(project, *args):
    result = project.run("bounces", "import", *args)
    assert result.exit_code == 0, result.output
    return result


def summary(result) -> str:
    return result.stdout.splitlines()[0]


def active_except(project, *changed: str) -> None:
    """Every reader not in `changed` is still active."""
    for address in READERS:
        if address not in changed:
            assert status(project, address) == "active", address


# --- one bounce each ---------------------------------------------------------------------------

def test_postfix_dsn_in_an_eml_bounces_the_reader_and_fails_the_delivery(readers):
    path = FIXTURES / "postfix-user-unknown.eml"
    result = run_import(readers, path)
    assert summary(result) == ("1 mails: hard 1, soft 0, complaints 0, marked bounced 1, marked complained 0, "
                               "ignored 0, unparseable 0, already imported 0")
    assert status(readers, "anna.schmidt@example.net") == "bounced"
    active_except(readers, "anna.schmidt@example.net")
    [event] = events(readers)
    assert event["subscriber_id"] == subscriber(readers, "anna.schmidt@example.net")["id"]
    assert (event["kind"], event["status"], event["email"]) == ("hard", "5.1.1", "anna.schmidt@example.net")
    assert event["diagnostic"].startswith("smtp; 550 5.1.1 <anna.schmidt@example.net>: Recipient address rejected")
    assert event["source"] == str(path)
    assert event["message_id"] == "<20261124070211.4Pq7Wd2Vx1z9KmN@mail.stadtmarketing-demo.de>"
    assert event["received_at"] == "2026-11-24T07:02:11+00:00"
    row = delivery(readers, "anna.schmidt@example.net")
    assert (row["status"], row["last_code"]) == ("failed", 550)
    assert row["last_reply"].startswith("bounce 5.1.1: 550 5.1.1 <anna.schmidt@example.net>")
    assert delivery(readers, "jonas.probe@kunde-beispiel.de")["status"] == "sent"
    shown = readers.run("status", "2026-11-24")  # `newsletter status` shows the failure with the reply
    assert shown.exit_code == 0 and shown.stdout.splitlines() == [
        "Issue 2026-11-24 (sent): 0 queued, 0 unconfirmed, 11 sent, 0 deferred, 1 failed, 0 skipped",
        "  failed   anna.schmidt@example.net  550 bounce 5.1.1: 550 5.1.1 <anna.schmidt@example.net>: "
        "Recipient address rejected: User unknown in virtual mailbox table  (1 attempts)",
        "Bounces and complaints that came back (1):",
        "  hard bounce  anna.schmidt@example.net  550 5.1.1  smtp; 550 5.1.1 <anna.schmidt@example.net>: "
        "Recipient address rejected: User unknown in virtual mailbox table",
    ]
    assert event["code"] == 550


def test_exim_plain_text_bounce_gives_recipient_and_code(readers):
    result = run_import(readers, FIXTURES / "exim-user-unknown.eml")
    assert "hard 1" in summary(result) and "marked bounced 1" in summary(result)
    assert status(readers, "jonas.probe@kunde-beispiel.de") == "bounced"
    active_except(readers, "jonas.probe@kunde-beispiel.de")
    [event] = events(readers)
    assert event["status"] == "5.1.1"
    assert "550 5.1.1 <jonas.probe@kunde-beispiel.de>: Recipient address rejected" in event["diagnostic"]
    assert delivery(readers, "jonas.probe@kunde-beispiel.de")["status"] == "failed"


def test_exim_delay_warning_is_a_soft_bounce(readers):
    result = run_import(readers, FIXTURES / "exim-delayed.eml")
    assert "hard 0, soft 1" in summary(result) and "marked bounced 0" in summary(result)
    [event] = events(readers)
    assert (event["kind"], event["status"], event["email"]) == ("soft", "4.2.2", "mara.voll@kunde-beispiel.de")
    assert status(readers, "mara.voll@kunde-beispiel.de") == "active"


def test_office365_ndr_with_crlf_line_ends(readers, tmp_path):
    crlf = fixture("office365-recipient-not-found.eml").replace(b"\n", b"\r\n")
    path = readers.write("ndr.eml", crlf)
    result = run_import(readers, path)
    assert "hard 1" in summary(result)
    assert status(readers, "max.mustermann@kreis-beispielstadt.de") == "bounced"
    [event] = events(readers)
    assert event["status"] == "5.1.10" and "RESOLVER.ADR.RecipientNotFound" in event["diagnostic"]
    assert event["received_at"] == "2026-11-24T07:05:12+00:00"
    row = delivery(readers, "max.mustermann@kreis-beispielstadt.de")
    assert (row["status"], row["last_code"]) == ("failed", 550)


def test_gmail_bounce_is_matched_by_the_verp_token_not_the_forwarded_address(readers):
    verp = token(readers, "lena@weiterleitung-example.de", "bounce")
    path = readers.write("gmail.eml", fixture("gmail-no-such-user.eml", ("VERP_TOKEN", verp)))
    db = readers.db()  # without the Message-ID in the log, only the VERP token names the reader
    db.execute("update deliveries set message_id = null")
    db.conn.commit()
    result = run_import(readers, path)
    assert "hard 1" in summary(result)
    assert status(readers, "lena@weiterleitung-example.de") == "bounced"
    [event] = events(readers)
    assert event["email"] == "lena@weiterleitung-example.de"
    assert event["diagnostic"].startswith("smtp; 550-5.1.1 The email account that you tried to reach does not exist")


def test_verp_token_made_with_another_secret_is_not_trusted(readers):
    forged = token(readers, "lena@weiterleitung-example.de", "bounce", secret="another-secret-0123456789")
    path = readers.write("gmail.eml", fixture("gmail-no-such-user.eml", ("VERP_TOKEN", forged),
                                              ("X-Original-Message-ID: <1795503732", "X-Original-Message-ID: <0"),
                                              ("Message-ID: <1795503732", "Message-ID: <0")))
    result = run_import(readers, path)
    assert "hard 0" in summary(result) and "ignored 1" in summary(result)
    assert (f"ignored: {path}: bounce for lena.beispiel@gmail.com, not a subscriber "
            "(its VERP token is not valid: another NEWSLETTER_SECRET or list?)") in result.stdout
    assert events(readers) == []
    active_except(readers)


def test_returned_message_id_names_the_reader_when_the_address_is_unknown(readers):
    """A forwarded address in Final-Recipient, no VERP: our Message-ID in the returned
    message ties the bounce to the reader it was sent to."""
    result = run_import(readers, FIXTURES / "gmail-no-such-user.eml")
    assert "hard 1" in summary(result)
    assert status(readers, "lena@weiterleitung-example.de") == "bounced"
    assert delivery(readers, "lena@weiterleitung-example.de")["status"] == "failed"


DIAGNOSTIC = ("Diagnostic-Code: smtp; 550 5.1.1 <anna.schmidt@example.net>: Recipient address\n"
              "    rejected: User unknown in virtual mailbox table")


@pytest.mark.parametrize("action,status_code,diagnostic,kind", [
    ("failed", "5.1.1", "550 5.1.1 User unknown", "hard"),
    ("failed", "5.2.1", "550 5.2.1 Mailbox disabled", "hard"),
    ("failed", "5.7.1", "554 5.7.1 Service unavailable; Client host [203.0.113.10] blocked using zen.spamhaus.org",
     "soft"),
    ("failed", "5.7.26", "550 5.7.26 Unauthenticated email is not accepted (DMARC)", "soft"),
    ("failed", "5.2.2", "552 5.2.2 Mailbox over quota", "soft"),
    ("failed", "5.0.0", "552 Mailbox full", "soft"),  # generic 5.0.0: the server's words decide
    ("failed", "5.0.0", "550 Requested action not taken: quota exceeded", "soft"),
    ("failed", "5.0.0", "550 Message size exceeds fixed maximum message size", "soft"),
    ("failed", "5.0.0", "550 Requested action not taken: mailbox unavailable", "hard"),
    ("failed", "", "554 delivery error: no such user here", "hard"),
    ("failed", "", "554 Transaction failed", "soft"),
    ("failed", "5.0.0", "554 5.7.1 <anna.schmidt@example.net>: Relay access denied", "soft"),  # the server's code
    ("failed", "5.0.0", "554 Too many hops, mail loop detected", "soft"),
    ("failed", "", "554 This account has been disabled or discontinued", "hard"),
    ("failed", "4.4.1", "Connection timed out", "soft"),
    ("delayed", "4.4.1", "Connection timed out", "soft"),
    ("delivered", "2.0.0", "250 2.0.0 Ok: queued", None),
])
def test_kind_follows_action_and_status(readers, action, status_code, diagnostic, kind):
    raw = fixture("postfix-user-unknown.eml", ("Action: failed", f"Action: {action}"),
                  ("Status: 5.1.1", f"Status: {status_code}"),
                  (DIAGNOSTIC, f"Diagnostic-Code: smtp; {diagnostic}"))
    result = run_import(readers, readers.write("dsn.eml", raw))
    if kind is None:
        assert "ignored 1" in summary(result)
        assert "delivery report (Action: delivered), not a bounce" in result.stdout
        assert events(readers) == []
        return
    assert [e["kind"] for e in events(readers)] == [kind]
    assert status(readers, "anna.schmidt@example.net") == ("bounced" if kind == "hard" else "active")
    assert delivery(readers, "anna.schmidt@example.net")["status"] == ("failed" if kind == "hard" else "sent")


@pytest.mark.parametrize("action,status_field,kind", [
    ("failed", "550", "hard"),
    ("failure", "550 Requested action not taken: mailbox unavailable", "hard"),
    ("failed", "452", "soft"),
])
def test_three_digit_status_is_read_as_the_basic_code(action, status_field, kind):
    """Some MTAs write an SMTP reply where the RFC 3463 code belongs ("Status: 550")."""
    raw = fixture("postfix-user-unknown.eml", ("Action: failed", f"Action: {action}"),
                  ("Status: 5.1.1", f"Status: {status_field}"), (DIAGNOSTIC + "\n", ""))
    [failure] = read_report(raw).failures
    assert (failure.action, failure.kind, failure.status, failure.diagnostic) == ("failed", kind, "", status_field)


def test_status_comment_is_the_diagnosis_and_action_error_is_a_failure():
    """Sun's MTA explains a bare 5.0.0 in the Status field; OpenSMTPD writes "Action: error"."""
    raw = fixture("postfix-user-unknown.eml", ("Action: failed", "Action: error"),
                  ("Status: 5.1.1", "Status: 5.0.0 (recipient reached disk quota)"), (DIAGNOSTIC + "\n", ""))
    [failure] = read_report(raw).failures
    assert (failure.action, failure.kind, failure.status, failure.diagnostic) == \
        ("failed", "soft", "5.0.0", "5.0.0 (recipient reached disk quota)")


def test_three_digit_status_fails_the_delivery_with_its_code(readers):
    raw = fixture("postfix-user-unknown.eml", ("Status: 5.1.1", "Status: 550"), (DIAGNOSTIC + "\n", ""))
    run_import(readers, readers.write("dsn.eml", raw))
    assert status(readers, "anna.schmidt@example.net") == "bounced"
    row = delivery(readers, "anna.schmidt@example.net")
    assert (row["status"], row["last_code"], row["last_reply"]) == ("failed", 550, "bounce -: 550")


def test_dovecot_quota_rejection_is_a_soft_bounce_not_an_auto_reply(readers):
    """Dovecot refuses a message for a full mailbox with a disposition notification marked
    Auto-Submitted: auto-replied (rejected): a soft bounce of that reader."""
    result = run_import(readers, FIXTURES / "dovecot-quota-rejected.eml")
    assert "hard 0, soft 1" in summary(result) and "ignored 0" in summary(result)
    [event] = events(readers)
    assert (event["email"], event["kind"], event["status"]) == ("mara.voll@kunde-beispiel.de", "soft", "")
    assert event["diagnostic"] == ("Your message to <mara.voll@kunde-beispiel.de> was automatically rejected: "
                                   "Quota exceeded (mailbox for user is full)")
    assert event["original_message_id"] == READERS["mara.voll@kunde-beispiel.de"]
    assert status(readers, "mara.voll@kunde-beispiel.de") == "active"


def test_bounce_forwarded_as_an_attachment_is_read_as_that_bounce(readers):
    """The editors forwarded a bounce from their own mailbox (Thunderbird, as attachment)."""
    path = FIXTURES / "forwarded-postfix-bounce.eml"
    result = run_import(readers, path)
    assert "hard 1" in summary(result) and "marked bounced 1" in summary(result)
    assert status(readers, "tom.unbekannt@example.com") == "bounced"
    assert delivery(readers, "tom.unbekannt@example.com")["status"] == "failed"
    [event] = events(readers)
    assert event["message_id"] == "<6b1f0e2a-9c4d-4e7f-a1b2-3c4d5e6f7a8b@stadtmarketing-demo.de>"  # the forward
    assert event["received_at"] == "2026-11-29T11:40:25+00:00"  # when Postfix wrote the bounce
    assert "already imported 1" in summary(run_import(readers, path))


def test_forwarded_mail_that_is_no_bounce_stays_unparseable():
    raw = fixture("forwarded-postfix-bounce.eml", ("Action: failed", "Action: delivered"))
    report = read_report(raw)
    assert report.kind == "unparseable" and "Subject: WG: Undelivered Mail Returned to Sender" in report.reason


def test_read_receipt_is_no_rejection():
    raw = fixture("dovecot-quota-rejected.eml",
                  ("automatic-action/MDN-sent-automatically; deleted", "manual-action/MDN-sent-manually; displayed"))
    assert read_report(raw).kind == "ignored"


QMAIL_ORIGINAL = "Message-ID: <1795503736.aa00bb11cc22dd33ee44@stadtmarketing-demo.de>"


def test_qmail_text_bounce_is_read_by_flufl_bounce_and_matched_by_the_quoted_message(readers):
    """No delivery status: flufl.bounce's qmail detector finds the address, qmail's own words
    (#5.1.1) make it hard, and the Message-ID in the quoted copy names the reader."""
    erika = READERS["erika.muster@example.org"]
    path = readers.write("qmail.eml", fixture("qmail-bounce.eml", (QMAIL_ORIGINAL, f"Message-ID: {erika}")))
    result = run_import(readers, path)
    assert "hard 1" in summary(result) and "marked bounced 1" in summary(result)
    assert status(readers, "erika.muster@example.org") == "bounced"
    [event] = events(readers)
    assert (event["kind"], event["status"], event["original_message_id"]) == ("hard", "5.1.1", erika)
    assert event["diagnostic"] == ("detected by flufl.bounce: <kurt.alt@altes-system-example.de>: "
                                   "Sorry, no mailbox here by that name. (#5.1.1)")


@pytest.mark.parametrize("reason,kind,status_code", [
    ("Sorry, no mailbox here by that name. (#5.1.1)", "hard", "5.1.1"),
    ("The users mailfolder is over the allowed quota (size). (#5.2.2)", "soft", "5.2.2"),
    ("This account is over quota.", "soft", ""),         # permanent to flufl.bounce, but a full mailbox
    ("Sorry, I couldn't find any host by that name. (#4.1.2)", "soft", "4.1.2"),
    ("This user doesn't have an account here.", "hard", ""),
])
def test_heuristic_bounce_is_hard_only_when_the_notice_says_the_address_is_dead(reason, kind, status_code):
    raw = fixture("qmail-bounce.eml", ("Sorry, no mailbox here by that name. (#5.1.1)", reason))
    [failure] = read_report(raw).failures
    assert (failure.address, failure.kind, failure.status) == ("kurt.alt@altes-system-example.de", kind, status_code)


def test_mail_system_notice_in_no_known_format_stays_unparseable():
    raw = fixture("qmail-bounce.eml", ("<kurt.alt@altes-system-example.de>:\n", "Kurt:\n"))
    report = read_report(raw)
    assert report.kind == "unparseable"
    assert report.reason.startswith("looks like a bounce but is in no format this importer reads (From: MAILER-DAEMON@")


def test_automatic_reply_is_not_searched_for_bounce_phrases():
    """An out-of-office note is never taken apart by flufl.bounce's heuristics."""
    qmail_notice = fixture("qmail-bounce.eml").split(b"\n\n", 1)[1]
    raw = fixture("out-of-office.eml").split(b"\n\n", 1)[0].replace(b"quoted-printable", b"8bit") + b"\n\n" + qmail_notice
    assert read_report(raw).kind == "ignored"
    assert read_report(raw.replace(b"Auto-Submitted: auto-replied\n", b"")).kind == "ignored"  # by its Subject

# --- real Postfix output (fixtures/bounces/README.md says how it was made) -----------------------

@pytest.mark.parametrize("name,address,action,kind,status_code,diagnostic", [
    ("postfix-real-user-unknown.eml", "tom.unbekannt@example.com", "failed", "hard", "5.1.1",
     "X-Postfix; user unknown"),
    ("postfix-real-error-mailbox-full.eml", "jana.quota@quota.example.com", "failed", "soft", "5.0.0",
     "X-Postfix; mailbox full"),
    ("postfix-real-mailbox-full-delayed.eml", "petra.voll@postfach.example.com", "delayed", "soft", "4.2.2",
     "smtp; 452 4.2.2 <petra.voll@postfach.example.com>: Mailbox full"),
    ("postfix-real-mailbox-full-expired.eml", "petra.voll@postfach.example.com", "failed", "soft", "4.2.2",
     "smtp; 452 4.2.2 <petra.voll@postfach.example.com>: Mailbox full"),
    ("postfix-real-552-delayed.eml", "karl.voll@postfach.example.com", "delayed", "soft", "4.2.2",
     "smtp; 452 4.2.2 <karl.voll@postfach.example.com>: Mailbox full"),
    ("postfix-real-552-mailbox-full.eml", "karl.voll@postfach.example.com", "failed", "soft", "5.0.0",
     "smtp; 552 Mailbox full"),
])
def test_real_postfix_bounces(name, address, action, kind, status_code, diagnostic):
    report = read_report(fixture(name))
    assert report.kind == "bounce" and report.original_id == READERS[address]
    assert report.failures == [Failure(address, address, action, kind, status_code, diagnostic)]


def test_generic_mailbox_full_after_warnings_is_one_soft_bounce(readers, tmp_path):
    """Postfix warned that karl's mailbox was full (4.2.2), then the server answered "552
    Mailbox full" without an enhanced code and Postfix bounced it as 5.0.0: a full mailbox, not
    a dead address, so karl stays a reader; both mails are about one message."""
    mails = [fixture("postfix-real-552-delayed.eml"), fixture("postfix-real-552-mailbox-full.eml")]
    result = run_import(readers, write_mbox(tmp_path / "karl.mbox", mails))
    assert "hard 0, soft 2" in summary(result) and "marked bounced 0" in summary(result)
    assert {e["original_message_id"] for e in events(readers)} == {READERS["karl.voll@postfach.example.com"]}
    assert status(readers, "karl.voll@postfach.example.com") == "active"
    assert delivery(readers, "karl.voll@postfach.example.com")["status"] == "sent"


def test_real_postfix_user_unknown_bounces_the_reader(readers):
    result = run_import(readers, FIXTURES / "postfix-real-user-unknown.eml")
    assert "hard 1" in summary(result) and "marked bounced 1" in summary(result)
    assert status(readers, "tom.unbekannt@example.com") == "bounced"
    assert delivery(readers, "tom.unbekannt@example.com")["status"] == "failed"
    active_except(readers, "tom.unbekannt@example.com")


# --- soft bounces ------------------------------------------------------------------------------

BERND = READERS["bernd.voll@example.org"]


def delayed(day: int, original: str | None = None) -> bytes:
    """The Postfix 4.2.2 warning for bernd, dated `day` days after 1 Dec 2026, about the message
    with the Message-ID `original` (default: another message each day; '' for none)."""
    date = format_datetime(datetime(2026, 12, 1, 11, 2, 40, tzinfo=UTC) + timedelta(days=day))
    original = f"<day{day}.{BERND[1:]}" if original is None else original
    return fixture("postfix-mailbox-full-delayed.eml",
                   ("Date: Tue, 24 Nov 2026 12:02:40 +0100 (CET)", f"Date: {date}"),
                   ("Message-Id: <20261124110240", f"Message-Id: <day{day}.20261124110240"),
                   (f"Message-ID: {BERND}\n", f"Message-ID: {original}\n" if original else ""))


def exim_delayed(day: int) -> bytes:
    """Exim's text warning about mara's one message (no returned headers), repeated daily."""
    date = format_datetime(datetime(2026, 11, 25, 7, 10, 2, tzinfo=UTC) + timedelta(days=day))
    return fixture("exim-delayed.eml", ("Date: Wed, 25 Nov 2026 08:10:02 +0100", f"Date: {date}"),
                   ("Message-Id: <E1tFUaa", f"Message-Id: <day{day}.E1tFUaa"),
                   ("delayed 24 hours", f"delayed {24 * (day + 1)} hours"))


@pytest.mark.parametrize("days,bounced", [
    ((0, 10, 20), True),
    ((20, 0, 30), True),     # the mailbox need not be in date order; 0..30 is within 30 days
    ((0, 10), False),
    ((0, 31, 60), False),    # three, but never three within 30 days
    ((0, 25, 55), False),
], ids=["three-in-20-days", "unsorted-in-30-days", "two", "three-over-60-days", "three-over-55-days"])
def test_soft_bounces_within_the_window_mark_bounced(readers, tmp_path, days, bounced):
    result = run_import(readers, write_mbox(tmp_path / "soft.mbox", [delayed(d) for d in days]))
    assert f"soft {len(days)}" in summary(result)
    assert f"marked bounced {int(bounced)}" in summary(result)
    assert status(readers, "bernd.voll@example.org") == ("bounced" if bounced else "active")
    assert delivery(readers, "bernd.voll@example.org")["status"] == "sent"  # soft bounces leave the log alone


@pytest.mark.parametrize("address,warnings", [
    ("bernd.voll@example.org", [delayed(day, BERND) for day in (0, 1, 2)]),
    ("mara.voll@kunde-beispiel.de", [exim_delayed(day) for day in (0, 1, 2)]),
], ids=["postfix-returned-headers", "exim-queue-id"])
def test_repeated_delay_warnings_about_one_message_count_once(readers, tmp_path, address, warnings):
    """An MTA warns daily while it retries one message: one full mailbox is one soft bounce."""
    result = run_import(readers, write_mbox(tmp_path / "soft.mbox", warnings))
    assert "soft 3" in summary(result) and "marked bounced 0" in summary(result)
    assert len(events(readers)) == 3  # each warning is recorded
    assert status(readers, address) == "active"
    again = run_import(readers, write_mbox(tmp_path / "more.mbox", [warnings[0].replace(b"<day0.", b"<day3.")]))
    assert "soft 1" in summary(again) and status(readers, address) == "active"


def test_soft_bounces_of_three_messages_within_the_window_mark_bounced(readers, tmp_path):
    first, second, third = (f"<{n}.{BERND[1:]}" for n in ("first", "second", "third"))
    mails = [delayed(0, first), delayed(1, first), delayed(2, first), delayed(10, second), delayed(11, second)]
    run_import(readers, write_mbox(tmp_path / "a.mbox", mails))
    assert status(readers, "bernd.voll@example.org") == "active"  # five warnings, two messages
    run_import(readers, write_mbox(tmp_path / "b.mbox", [delayed(29, third)]))
    assert status(readers, "bernd.voll@example.org") == "bounced"
    stored = {e["original_message_id"] for e in events(readers)}
    assert stored == {first, second, third}


def test_distinct_messages_must_fall_within_one_window(readers, tmp_path):
    first, second = (f"<{n}.{BERND[1:]}" for n in ("first", "second"))
    mails = [delayed(0, first), delayed(20, first), delayed(25, second), delayed(55, BERND)]
    run_import(readers, write_mbox(tmp_path / "a.mbox", mails))
    assert status(readers, "bernd.voll@example.org") == "active"  # three messages, never within 30 days
    run_import(readers, write_mbox(tmp_path / "b.mbox", [delayed(22, f"<third.{BERND[1:]}")]))
    assert status(readers, "bernd.voll@example.org") == "bounced"  # 20..25: first, third, second


def test_bounce_without_the_original_message_id_counts_as_its_own_message(readers, tmp_path):
    run_import(readers, write_mbox(tmp_path / "a.mbox", [delayed(day, "") for day in (0, 1, 2)]))
    assert [e["original_message_id"] for e in events(readers)] == [None, None, None]
    assert status(readers, "bernd.voll@example.org") == "bounced"


def test_soft_bounces_recorded_before_the_upgrade_still_count_once_each(readers, tmp_path):
    """Events from before m006 have no original_message_id: each counts as its own message."""
    db = readers.db()
    bernd = subscriber(readers, "bernd.voll@example.org")["id"]
    for day in (0, 1):
        db["bounce_events"].insert({"subscriber_id": bernd, "email": "bernd.voll@example.org", "kind": "soft",
                                    "message_id": f"<old{day}@mx>", "received_at": f"2026-12-0{day + 1}T10:00:00+00:00",
                                    "created_at": "2026-12-03T10:00:00+00:00"})
    db.conn.commit()
    run_import(readers, write_mbox(tmp_path / "a.mbox", [delayed(2, BERND)]))
    assert status(readers, "bernd.voll@example.org") == "bounced"


def test_m006_adds_the_original_message_to_an_existing_database(tmp_path):
    import sqlite3

    import sqlite_utils

    from newsletter.store import open_db
    from newsletter.store.schema import migrations

    path = tmp_path / "old.db"
    old = sqlite_utils.Database(sqlite3.connect(path))
    migrations.apply(old, stop_before="m006_bounce_original_message")
    old["bounce_events"].insert({"kind": "soft", "message_id": "<a@mx>", "created_at": "2026-12-01T10:00:00+00:00"})
    old.conn.commit()
    old.conn.close()
    open_db(path).close()
    db = sqlite_utils.Database(path)
    assert [(r["message_id"], r["original_message_id"]) for r in db["bounce_events"].rows] == [("<a@mx>", None)]
    assert ["subscriber_id", "kind", "original_message_id"] in [i.columns for i in db["bounce_events"].indexes]


def test_soft_limit_and_window_come_from_the_config(readers, tmp_path):
    readers.configure(bounces={"soft_limit": 2, "soft_window_days": 5})
    run_import(readers, write_mbox(tmp_path / "a.mbox", [delayed(0), delayed(6)]))
    assert status(readers, "bernd.voll@example.org") == "active"
    run_import(readers, write_mbox(tmp_path / "b.mbox", [delayed(9)]))
    assert status(readers, "bernd.voll@example.org") == "bounced"


# --- complaints --------------------------------------------------------------------------------

CLARA = "clara.muster@mailprovider-example.com"


@pytest.mark.parametrize("how", ["original-rcpt-to", "to-of-the-original", "verp", "unsubscribe-token"])
def test_arf_complaint_marks_complained(readers, how):
    redact = [("Original-Rcpt-To: <clara.muster@mailprovider-example.com>\n", ""),
              ("To: clara.muster@mailprovider-example.com", "To: redacted@mailprovider-example.com")]
    replacements = {
        "original-rcpt-to": [],
        "to-of-the-original": redact[:1],
        "verp": redact + [("Original-Mail-From: <newsletter@",
                           f"Original-Mail-From: <bounces+{token(readers, CLARA, 'bounce')}@")],
        "unsubscribe-token": redact + [("UNSUBSCRIBE_TOKEN", token(readers, CLARA))],
    }[how]
    db = readers.db()  # only the report's own fields may name the reader here
    db.execute("update deliveries set message_id = null")
    db.conn.commit()
    result = run_import(readers, readers.write("arf.eml", fixture("arf-abuse.eml", *replacements)))
    assert "complaints 1" in summary(result) and "marked complained 1" in summary(result)
    assert status(readers, "clara.muster@mailprovider-example.com") == "complained"
    active_except(readers, "clara.muster@mailprovider-example.com")
    [event] = events(readers)
    assert (event["kind"], event["status"]) == ("complaint", "abuse")
    assert event["diagnostic"] == "MailproviderFBL/2.1 from Feedback Loop <feedbackloop@mailprovider-example.com>"


def test_feedback_report_that_is_not_abuse_is_ignored(readers):
    path = readers.write("arf.eml", fixture("arf-abuse.eml", ("Feedback-Type: abuse", "Feedback-Type: not-spam")))
    result = run_import(readers, path)
    assert f"ignored: {path}: feedback report of type 'not-spam', not a complaint" in result.stdout
    assert events(readers) == [] and status(readers, "clara.muster@mailprovider-example.com") == "active"


# --- statuses ----------------------------------------------------------------------------------

@pytest.mark.parametrize("before,mail,after", [
    ("unsubscribed", "hard", "unsubscribed"),
    ("unsubscribed", "complaint", "unsubscribed"),
    ("bounced", "complaint", "complained"),
    ("complained", "hard", "complained"),
    ("pending", "hard", "bounced"),
])
def test_suppressed_readers_never_come_back_and_unsubscribed_stays(readers, before, mail, after):
    address = "clara.muster@mailprovider-example.com"
    raw = fixture("arf-abuse.eml") if mail == "complaint" else fixture(
        "postfix-user-unknown.eml", ("anna.schmidt@example.net", address))
    db = readers.db()
    db.execute("update subscribers set status = ?, unsubscribed_at = ? where email = ?",
               [before, "2026-11-01T10:00:00+00:00" if before == "unsubscribed" else None, address])
    db.conn.commit()
    run_import(readers, readers.write("mail.eml", raw))
    row = subscriber(readers, address)
    assert row["status"] == after
    assert [e["kind"] for e in events(readers)] == [mail]  # recorded all the same
    if before == "unsubscribed":
        assert row["unsubscribed_at"] == "2026-11-01T10:00:00+00:00"


# --- mailboxes, reports and idempotency --------------------------------------------------------

EXPECTED_ALL = ("11 mails: hard 4, soft 2, complaints 1, marked bounced 4, marked complained 1, "
                "ignored 2, unparseable 2, already imported 0")


def test_mbox_with_every_kind_of_mail_and_reimport_counts_nothing_twice(readers, tmp_path):
    path = write_mbox(tmp_path / "bounces.mbox", [fixture(name) for name in ALL_BOUNCES])
    result = run_import(readers, path)
    assert summary(result) == EXPECTED_ALL
    lines = result.stdout.splitlines()[1:]
    where = {name: f"{path} message {i}" for i, name in enumerate(ALL_BOUNCES, start=1)}
    assert len(lines) == 4
    reasons = {line.split(": ", 2)[1].split(" (line")[0]: line.split(": ", 2)[0:3:2] for line in lines}
    assert reasons[where["out-of-office.eml"]] == ["ignored", "automatic reply (Auto-Submitted: auto-replied), "
                                                               "not a bounce"]
    assert reasons[where["qmail-bounce.eml"]] == ["ignored", "bounce for kurt.alt@altes-system-example.de, "
                                                             "not a subscriber"]
    assert reasons[where["garbage.bin"]] == ["unparseable", "not a mail (no header lines)"]
    assert reasons[where["reader-reply.eml"]] == ["unparseable", "neither a delivery status notification nor a "
                                                                 "complaint report (From: Hans Leser "
                                                                 "<h.leser@example.com>, Subject: AW: Stadtmarketing "
                                                                 "Brief 11/2026)"]
    bounced = {"anna.schmidt@example.net", "jonas.probe@kunde-beispiel.de",
               "max.mustermann@kreis-beispielstadt.de", "lena@weiterleitung-example.de"}
    for address in bounced:
        assert status(readers, address) == "bounced"
    assert status(readers, "clara.muster@mailprovider-example.com") == "complained"
    active_except(readers, *bounced, "clara.muster@mailprovider-example.com")
    stored = events(readers)
    assert len(stored) == 7
    assert all(re.fullmatch(re.escape(str(path)) + r" message \d+ \(line \d+\)", e["source"]) for e in stored)

    again = run_import(readers, path)
    assert summary(again) == ("11 mails: hard 0, soft 0, complaints 0, marked bounced 0, marked complained 0, "
                              "ignored 2, unparseable 2, already imported 7")
    assert events(readers) == stored


def test_line_numbers_point_at_the_mail_in_the_mbox(readers, tmp_path):
    path = write_mbox(tmp_path / "b.mbox", [fixture("postfix-user-unknown.eml"), fixture("reader-reply.eml")])
    result = run_import(readers, path)
    line = int(re.search(r"message 2 \(line (\d+)\)", result.stdout).group(1))
    assert path.read_bytes().splitlines()[line - 1].startswith(b"From ")
    assert path.read_bytes().splitlines()[line].startswith(b"Return-Path: <h.leser@example.com>")


def test_maildir_new_and_cur_and_mails_without_message_id(readers, tmp_path):
    box = mailbox.Maildir(tmp_path / "Maildir")
    no_id = fixture("exim-user-unknown.eml", ("Message-Id: <E1tF7Qk-0003aB-2x@mx.kunde-beispiel.de>\n", ""))
    box.add(fixture("postfix-user-unknown.eml"))
    seen = mailbox.MaildirMessage(no_id)
    seen.set_subdir("cur")
    seen.add_flag("S")
    box.add(seen)
    box.add(fixture("out-of-office.eml"))
    box.close()
    result = run_import(readers, tmp_path / "Maildir")
    assert summary(result).startswith("3 mails: hard 2,") and "ignored 1" in summary(result)
    sources = {e["source"] for e in events(readers)}
    assert any("/Maildir/cur/" in s and s.endswith(":2,S") for s in sources)
    assert any("/Maildir/new/" in s for s in sources)
    hashed = [e["message_id"] for e in events(readers) if e["email"] == "jonas.probe@kunde-beispiel.de"]
    assert len(hashed) == 1 and re.fullmatch(r"sha256:[0-9a-f]{64}", hashed[0])
    again = run_import(readers, tmp_path / "Maildir")
    assert "hard 0" in summary(again) and "already imported 2" in summary(again)
    assert len(events(readers)) == 2


def test_a_mail_is_applied_whole_or_not_at_all(readers, tmp_path):
    """A database error while the second mail is applied (after its event row was written)
    leaves the first mail applied and nothing of the second; the next run completes it."""
    db = readers.db()
    anna = subscriber(readers, "anna.schmidt@example.net")["id"]
    db.execute(f"create trigger fail_anna before update on deliveries when new.subscriber_id = {anna}"
               " begin select raise(abort, 'simulated disk failure'); end")
    db.conn.commit()
    path = write_mbox(tmp_path / "b.mbox", [fixture("exim-user-unknown.eml"), fixture("postfix-user-unknown.eml")])
    failed = readers.run("bounces", "import", path)
    assert failed.exit_code == 1
    assert failed.output.count("\n") == 1 and "simulated disk failure" in failed.output
    assert status(readers, "jonas.probe@kunde-beispiel.de") == "bounced"
    assert status(readers, "anna.schmidt@example.net") == "active"
    assert [e["email"] for e in events(readers)] == ["jonas.probe@kunde-beispiel.de"]
    db.execute("drop trigger fail_anna")
    db.conn.commit()
    result = run_import(readers, path)
    assert "hard 1" in summary(result) and "already imported 1" in summary(result)
    assert status(readers, "anna.schmidt@example.net") == "bounced"


def test_empty_mbox_is_fine(readers, tmp_path):
    result = run_import(readers, readers.write("empty.mbox", b""))
    assert summary(result).startswith("0 mails: hard 0")


@pytest.mark.parametrize("make,needle", [
    (lambda p: p / "missing.mbox", "does not exist"),
    (lambda p: (p / "folder").mkdir() or p / "folder", "is a folder but not a Maildir"),
    (lambda p: p / "garbage.bin", "neither an mbox"),
])
def test_unusable_path_is_one_line_and_exit_1(readers, tmp_path, make, needle):
    (tmp_path / "garbage.bin").write_bytes(fixture("garbage.bin"))
    path = make(tmp_path)
    for command in ("bounces", "unsubscribes"):
        result = readers.run(command, "import", path)
        assert result.exit_code == 1, result.output
        assert needle in result.output and " - " in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_path_and_imap_together_or_neither_is_a_usage_error(readers):
    assert readers.run("bounces", "import").exit_code == 2
    assert readers.run("bounces", "import", FIXTURES / "arf-abuse.eml", "--imap", "imaps://u@h/INBOX").exit_code == 2


def test_refuses_without_secret(readers, monkeypatch):
    monkeypatch.delenv("NEWSLETTER_SECRET")
    result = readers.run("bounces", "import", FIXTURES / "postfix-user-unknown.eml")
    assert result.exit_code == 1 and "NEWSLETTER_SECRET is not set" in result.output
    assert events(readers) == []


@pytest.mark.parametrize("name,failure,original_id,queue_id", [
    ("postfix-mailbox-full-delayed.eml",
     Failure("bernd.voll@example.org", "bernd.voll@example.org", "delayed", "soft", "4.2.2",
             "smtp; 452 4.2.2 <bernd.voll@example.org>: Mailbox full"),
     READERS["bernd.voll@example.org"], None),
    ("exim-delayed.eml",
     Failure("mara.voll@kunde-beispiel.de", "", "delayed", "soft", "4.2.2",
             "host mail-intern.kunde-beispiel.de [198.51.100.17] Delay reason: SMTP error from remote mail server "
             "after RCPT TO:<mara.voll@kunde-beispiel.de>: 452 4.2.2 <mara.voll@kunde-beispiel.de>: Mailbox full"),
     None, "exim:1tF7Qm-0003aD-3y@mx.kunde-beispiel.de"),
    ("exim-user-unknown.eml",
     Failure("jonas.probe@kunde-beispiel.de", "", "failed", "hard", "5.1.1",
             "host mail-intern.kunde-beispiel.de [198.51.100.17] SMTP error from remote mail server after "
             "RCPT TO:<jonas.probe@kunde-beispiel.de>: 550 5.1.1 <jonas.probe@kunde-beispiel.de>: "
             "Recipient address rejected: User unknown in local recipient table"),
     READERS["jonas.probe@kunde-beispiel.de"], None),
])
def test_read_report_gives_recipients_and_the_returned_message(name, failure, original_id, queue_id):
    """The neutral report of one mail, before any database: dsn.read_report alone."""
    report = read_report(fixture(name))
    assert (report.kind, report.failures) == ("bounce", [failure])
    assert (report.original_id, report.queue_id) == (original_id, queue_id)


def test_exim_queue_id_needs_the_identifier_line():
    raw = fixture("exim-delayed.eml", ("The message identifier is:     1tF7Qm-0003aD-3y\n", ""))
    report = read_report(raw)
    assert report.failures and (report.original_id, report.queue_id) == (None, None)


HOSTILE = [b"\n", b"\n\n", b";", b"<", b">", b"\x00", b"\xff", b"=?utf-8?q?", b"?=", b"=?x\xff?q?a?=", b"--",
           b"charset=\"a\x00b\"", b"Content-Type: message/delivery-status\n", b"boundary=", b"Status: 5.", b"rfc822;"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ALL_BOUNCES + OTHER_FORMATS),
       st.lists(st.tuples(st.integers(min_value=0, max_value=6000),
                          st.sampled_from(HOSTILE) | st.binary(max_size=20)), max_size=6))
@example("reader-reply.eml", [(0, b"Subject: =?iso-885\xff9-1?q?x?=\n")])
@example("out-of-office.eml", [(0, b'Content-Type: text/plain; charset="iso\x00"\n\n')])
def test_any_damaged_mail_reads_as_some_report(name, edits):
    raw = fixture(name)
    for position, fragment in edits:
        raw = raw[:position] + fragment + raw[position:]
    report = read_report(raw)
    assert report.kind in ("bounce", "complaint", "ignored", "unparseable")
    assert report.mail_id


# --- IMAP --------------------------------------------------------------------------------------

class ImapServer(socketserver.ThreadingTCPServer):
    """Just enough IMAP4rev1 over TLS for imaplib: LOGIN, EXAMINE/SELECT, UID SEARCH/FETCH, LOGOUT.
    `commands` records what the client sent (to check it never changes the mailbox)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, cert: tuple[Path, Path], mails: list[bytes], password: str) -> None:
        super().__init__(("127.0.0.1", 0), ImapHandler)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(str(cert[0]), str(cert[1]))
        self.mails, self.password, self.commands = mails, password, []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def handle_error(self, request, client_address) -> None:
        pass  # a client that refuses our certificate is part of the tests

    @property
    def port(self) -> int:
        return self.server_address[1]


class ImapHandler(socketserver.StreamRequestHandler):
    def setup(self) -> None:
        self.request = self.server.context.wrap_socket(self.request, server_side=True)
        super().setup()

    def handle(self) -> None:
        self.wfile.write(b"* OK IMAP4rev1 test server ready\r\n")
        for line in self.rfile:
            tag, command, *rest = line.decode().rstrip("\r\n").split(" ", 2)
            self.server.commands.append(f"{command} {rest[0] if rest else ''}".strip())
            if not self.answer(tag, command.upper(), rest[0] if rest else ""):
                return

    def answer(self, tag: str, command: str, args: str) -> bool:
        mails, out = self.server.mails, self.wfile
        if command == "CAPABILITY":
            out.write(b"* CAPABILITY IMAP4rev1\r\n")
        elif command == "LOGIN":
            if args.split(" ", 1)[1].strip('"') != self.server.password:
                out.write(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n".encode())
                return True
        elif command in ("EXAMINE", "SELECT"):
            if args.strip('"') != "Bounces":
                out.write(f"{tag} NO Mailbox doesn't exist: {args}\r\n".encode())
                return True
            out.write(f"* {len(mails)} EXISTS\r\n* OK [UIDVALIDITY 7] UIDs valid\r\n".encode())
        elif command == "UID" and args.startswith("SEARCH"):
            out.write(("* SEARCH " + " ".join(str(100 + i) for i in range(len(mails))) + "\r\n").encode())
        elif command == "UID" and args.startswith("FETCH"):
            for uid in args.split(" ")[1].split(","):
                raw = mails[int(uid) - 100]
                out.write(f"* {int(uid) - 99} FETCH (UID {uid} BODY[] {{{len(raw)}}}\r\n".encode() + raw + b")\r\n")
        elif command == "LOGOUT":
            out.write(f"* BYE\r\n{tag} OK LOGOUT completed\r\n".encode())
            return False
        out.write(f"{tag} OK {command} completed\r\n".encode())
        return True


@pytest.fixture
def imap(readers, tmp_path, monkeypatch):
    cert = self_signed(tmp_path)
    server = ImapServer(cert, [fixture("postfix-user-unknown.eml"), fixture("out-of-office.eml"),
                               fixture("arf-abuse.eml")], "geheim!")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))  # trust the self-signed certificate
    monkeypatch.setenv("NEWSLETTER_IMAP_PASSWORD", "geheim!")
    yield server
    server.shutdown()
    server.server_close()


def test_imap_folder_is_read_without_changing_it(imap, readers):
    url = f"imaps://bounces%40stadtmarketing-demo.de@127.0.0.1:{imap.port}/Bounces"
    result = run_import(readers, "--imap", url)
    assert summary(result).startswith("3 mails: hard 1, soft 0, complaints 1,") and "ignored 1" in summary(result)
    assert f"ignored: {url} UID 101: automatic reply" in result.stdout
    assert status(readers, "anna.schmidt@example.net") == "bounced"
    assert status(readers, "clara.muster@mailprovider-example.com") == "complained"
    sent = " ".join(imap.commands)
    assert "EXAMINE Bounces" in sent and "BODY.PEEK[]" in sent
    assert not re.search(r"\b(SELECT|STORE|EXPUNGE|COPY|MOVE)\b", sent)
    again = run_import(readers, "--imap", f"127.0.0.1:{imap.port}", "--imap-user", "bounces", "--imap-folder", "Bounces")
    assert "already imported 2" in summary(again)


@pytest.mark.parametrize("args,env,needle", [
    (["--imap-folder", "Nope"], {}, "IMAP folder 'Nope' cannot be opened"),
    ([], {"NEWSLETTER_IMAP_PASSWORD": "falsch"}, "IMAP login as bounces at 127.0.0.1 failed"),
    ([], {"SSL_CERT_FILE": ""}, "cannot be verified"),
])
def test_imap_errors_are_one_line(imap, readers, monkeypatch, args, env, needle):
    for name, value in env.items():
        monkeypatch.setenv(name, value) if value else monkeypatch.delenv(name)
    result = readers.run("bounces", "import", "--imap", f"imaps://bounces@127.0.0.1:{imap.port}/Bounces", *args)
    assert result.exit_code == 1, result.output
    assert needle in result.output and len(result.output.strip().splitlines()) == 1
    assert events(readers) == []


def test_imap_unreachable_is_one_line(readers, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_IMAP_PASSWORD", "geheim")
    port = free_port()  # nothing listens there
    for command in ("bounces", "unsubscribes"):
        result = readers.run(command, "import", "--imap", f"imaps://bounces@127.0.0.1:{port}/INBOX")
        assert result.exit_code == 1
        assert result.output == (f"Error: Cannot connect to IMAP server 127.0.0.1:{port}: Connection refused - "
                                 "check host, port and that the server runs\n")


@pytest.mark.parametrize("url,needle", [
    ("imap://bounces@127.0.0.1/INBOX", "only imaps:// (IMAP over TLS, port 993) is supported"),
    ("imaps://bounces:geheim@127.0.0.1/INBOX", "contains a password - remove it and set NEWSLETTER_IMAP_PASSWORD"),
    ("imaps://127.0.0.1/INBOX", "no user name"),
    ("imaps://bounces@127.0.0.1:zz/INBOX", "the port is not a number"),
])
def test_imap_address_mistakes(readers, monkeypatch, url, needle):
    monkeypatch.setenv("NEWSLETTER_IMAP_PASSWORD", "geheim")
    result = readers.run("bounces", "import", "--imap", url)
    assert result.exit_code == 1 and needle in result.output


def test_imap_needs_the_password_in_the_environment(readers):
    result = readers.run("bounces", "import", "--imap", "imaps://bounces@127.0.0.1/INBOX")
    assert result.exit_code == 1 and "NEWSLETTER_IMAP_PASSWORD is not set" in result.output


# --- unsubscribe requests ------------------------------------------------------------------------

def request(subject: str, date: str = "Mon, 20 Oct 2025 09:15:01 +0200") -> bytes:
    return fixture("unsubscribe-request.eml", ("Subject: SUBJECT", f"Subject: {subject}"),
                   ("Date: Tue, 24 Nov 2026 09:15:01 +0100", f"Date: {date}"))


def test_unsubscribe_requests_by_mail(readers, tmp_path):
    erika, anna = token(readers, "erika.muster@example.org"), token(readers, "anna.schmidt@example.net")
    lena = token(readers, "lena@weiterleitung-example.de")
    bernd_bounce = token(readers, "bernd.voll@example.org", "bounce")
    mails = [
        request(erika),
        request(f"Re: {anna}", date="Tue, 21 Oct 2025 10:00:00 +0000"),
        request(f"=?utf-8?q?AW=3A_Abmeldung_{lena.replace('-', '=2D').replace('_', '=5F')}?="),
        request("Bitte abmelden"),
        request(anna[:-3] + "xyz"),
        request(bernd_bounce),
    ]
    path = write_mbox(tmp_path / "unsubscribe.mbox", mails)
    result = readers.run("unsubscribes", "import", path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "6 mails: unsubscribed 3, already unsubscribed or suppressed 0, invalid 3"
    assert re.fullmatch(r"invalid: .* message 4 \(line \d+\): no unsubscribe token in the subject "
                        r"\(From: Erika Muster <erika.muster@example.org>, Subject: Bitte abmelden\)", lines[1])
    assert "message 5" in lines[2] and "the token in the subject is not valid" in lines[2]
    assert "message 6" in lines[3] and "the token in the subject is not valid" in lines[3]
    for address in ("erika.muster@example.org", "anna.schmidt@example.net", "lena@weiterleitung-example.de"):
        assert status(readers, address) == "unsubscribed"
    active_except(readers, "erika.muster@example.org", "anna.schmidt@example.net", "lena@weiterleitung-example.de")
    assert subscriber(readers, "anna.schmidt@example.net")["unsubscribed_at"] == "2025-10-21T10:00:00+00:00"
    assert subscriber(readers, "erika.muster@example.org")["unsubscribed_at"] == "2025-10-20T07:15:01+00:00"

    before = list(readers.db()["subscribers"].rows)
    again = readers.run("unsubscribes", "import", path)
    assert again.stdout.splitlines()[0] == "6 mails: unsubscribed 0, already unsubscribed or suppressed 3, invalid 3"
    assert list(readers.db()["subscribers"].rows) == before


def test_unsubscribe_request_never_revives_or_relabels_a_suppressed_reader(readers):
    db = readers.db()
    db.execute("update subscribers set status = 'bounced' where email = 'erika.muster@example.org'")
    db.conn.commit()
    path = readers.write("u.eml", request(token(readers, "erika.muster@example.org"),
                                           date="Thu, 01 Jan 2099 00:00:00 +0000"))
    result = readers.run("unsubscribes", "import", path)
    assert "already unsubscribed or suppressed 1" in result.stdout
    assert status(readers, "erika.muster@example.org") == "bounced"


def test_unsubscribe_date_in_the_future_is_not_believed(readers):
    tomorrow = START + timedelta(days=1)
    path = readers.write("u.eml", request(token(readers, "erika.muster@example.org"), date=format_datetime(tomorrow)))
    readers.run("unsubscribes", "import", path)
    row = subscriber(readers, "erika.muster@example.org")
    assert row["status"] == "unsubscribed" and row["unsubscribed_at"] == clock.stamp()
    assert row["unsubscribed_at"] == row["updated_at"]


def test_commands_have_help_with_an_example(project):
    for command in ("bounces", "unsubscribes"):
        result = project.run(command, "import", "--help")
        assert result.exit_code == 0 and "Example: newsletter" in result.stdout and "--imap" in result.stdout


def test_t_onlines_exim_text_bounce_is_a_hard_bounce_with_its_code(readers):
    """flufl.bounce's simple_08: Exim's older text form, the reply below the address list and
    not indented ("SMTP error from remote server after RCPT command: ... 550 user unknown"),
    was counted soft and stored no code or diagnostic."""
    raw = (FIXTURES / "flufl" / "simple_08.txt").read_bytes().replace(b"userx@example.de", b"anna.schmidt@example.net")
    run_import(readers, readers.write("t-online.eml", raw))
    assert status(readers, "anna.schmidt@example.net") == "bounced"
    [event] = events(readers)
    assert (event["kind"], event["code"]) == ("hard", 550)
    assert event["diagnostic"].endswith("550 user unknown") and "header of the original" not in event["diagnostic"]


@pytest.mark.parametrize("words", ["Empfänger unbekannt", "Benutzer unbekannt", "Diese Adresse existiert nicht",
                                   "Das Postfach ist nicht vorhanden"])
def test_german_words_for_an_unknown_address_are_hard_without_a_code(readers, words):
    raw = (FIXTURES / "flufl" / "simple_08.txt").read_bytes()
    raw = raw.replace(b"userx@example.de", b"anna.schmidt@example.net")
    raw = raw.replace(b"550 user unknown", words.encode("latin-1")).replace(
        b"X-Virus-Scanned", b"Content-Type: text/plain; charset=iso-8859-1\nX-Virus-Scanned")
    run_import(readers, readers.write("de.eml", raw))
    [event] = events(readers)
    assert event["kind"] == "hard", (words, event["diagnostic"])


def test_status_and_report_say_why_readers_bounced(readers):
    run_import(readers, FIXTURES / "postfix-user-unknown.eml")
    report = readers.run("report", "2026-11-24")
    assert report.exit_code == 0, report.output
    assert "bounced    1 hard: 550 5.1.1  smtp; 550 5.1.1 <anna.schmidt@example.net>" in report.output
    shown = readers.run("status", "2026-11-24").output
    assert "hard bounce  anna.schmidt@example.net  550 5.1.1" in shown
