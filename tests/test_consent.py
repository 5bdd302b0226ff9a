"""Proof of consent and the GDPR commands through the CLI: proof, forget, purge-pending,
consent rows from add/import, `confirmations send`, and the timed confirmation tokens."""

from __future__ import annotations

import email
import json
import re
import sqlite3
from datetime import timedelta
from email import policy

import pytest
from conftest import SLUG, START

from newsletter import clock, tokens
from newsletter.audience import subscribers
from newsletter.audience.confirmations import LEGACY_SOURCE
from newsletter.mail.message import list_id

LONG_AGO = (START - timedelta(days=300)).isoformat(timespec="seconds")

SECRET = "test-secret-0123456789abcdef"
KEY = SECRET.encode()


def rows(project, table: str) -> list[dict]:
    return list(project.db()[table].rows_where(order_by="rowid"))


def outbox(project) -> list[email.message.EmailMessage]:
    folder = project.root / "outbox"
    files = sorted(folder.glob("*.eml")) if folder.is_dir() else []
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in files]


def age(project, table: str, column: str, stamp: str, where: str = "1") -> None:
    db = project.db()
    db.execute(f"update {table} set {column} = ? where {where}", [stamp])
    db.conn.commit()


# --- consent rows from add and import ---------------------------------------------------------------

def test_add_records_consent_with_its_source(project):
    project.run("subscribers", "add", "a@example.org", "--consent-source", "Messe 2026")
    project.run("subscribers", "add", "b@example.org")
    a, b = rows(project, "consents")
    assert (a["source"], bool(a["confirmed_at"]), b["source"], b["confirmed_at"]) == \
        ("Messe 2026", True, "newsletter subscribers add", None)
    project.run("subscribers", "add", "b@example.org", "--consent-source", "Telefon 2026-03-01")
    later = rows(project, "consents")[-1]
    assert (later["subscriber_id"], later["source"]) == (b["subscriber_id"], "Telefon 2026-03-01") and later["confirmed_at"]


def test_import_records_a_consent_row_per_new_reader(project):
    csv = project.write("messe.csv", "email;nachname\na@example.org;Alt\nb@example.org;Neu\n")
    project.run("subscribers", "add", "a@example.org", "--consent-source", "Formular")
    result = project.run("subscribers", "import", csv, "--consent-source", "Messe 2026, Formular")
    assert "1 added, 1 updated" in result.stdout
    proofs = rows(project, "consents")
    assert [p["source"] for p in proofs] == ["Formular", "Messe 2026, Formular"] and proofs[1]["confirmed_at"]
    project.run("subscribers", "import", project.write("ohne.csv", "email\nc@example.org\n"))
    last = rows(project, "consents")[-1]
    assert (last["source"], last["confirmed_at"]) == ("Import ohne.csv", None)
    assert subscribers.find(project.store(), "c@example.org")["status"] == "pending"


# --- proof -----------------------------------------------------------------------------------------

def test_proof_prints_subscriber_and_all_consent_rows(project):
    project.run("subscribers", "add", "Erika@example.org", "--nachname", "Muster")
    project.run("subscribers", "add", "erika@example.org", "--consent-source", "Double-Opt-In per Telefon")
    result = project.run("subscribers", "proof", "ERIKA@example.org")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["subscriber"]["email"] == "Erika@example.org" and record["subscriber"]["status"] == "active"
    assert [c["source"] for c in record["consents"]] == ["newsletter subscribers add", "Double-Opt-In per Telefon"]
    assert set(record["consents"][0]) >= {"signed_up_at", "consent_text", "consent_version", "consent_hash",
                                          "ip", "user_agent", "confirm_sent_at", "confirmed_at", "confirm_ip"}


def test_proof_of_unknown_address_is_one_line_exit_1(project):
    result = project.run("subscribers", "proof", "niemand@example.org")
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "No subscriber niemand@example.org" in result.output


# --- forget ----------------------------------------------------------------------------------------

def without_secure_delete(monkeypatch) -> None:
    """Every new SQLite connection starts with secure_delete off (Debian's SQLite turns it on by
    default), so only the product's own pragma can overwrite deleted rows."""
    connect = sqlite3.connect

    def connect_insecurely(*args, **kwargs):
        conn = connect(*args, **kwargs)
        conn.execute("PRAGMA secure_delete = OFF")
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect_insecurely)


def test_forget_erases_everything_but_a_hash(composed, monkeypatch):
    project = composed
    without_secure_delete(monkeypatch)
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    project.run("subscribers", "add", "erika@example.org", "--nachname", "Zwiebelmeyer", "--consent-source", "Formular")
    project.run("subscribers", "add", "hans@example.org", "--consent-source", "Formular")
    assert project.run("send", SLUG, "--yes").exit_code == 0
    db = project.db()
    db["bounce_events"].insert({"subscriber_id": 1, "email": "erika@example.org", "kind": "soft", "created_at": "x"})
    db.conn.commit()
    result = project.run("subscribers", "forget", "ERIKA@example.org")
    assert result.exit_code == 0, result.output
    assert "Erased ERIKA@example.org (1 consent records, 1 delivery rows)" in result.stdout
    assert [r["email"] for r in rows(project, "subscribers")] == ["hans@example.org"]
    assert [r["email"] for r in rows(project, "deliveries")] == ["hans@example.org"]
    assert len(rows(project, "consents")) == 1 and rows(project, "bounce_events") == []
    [entry] = rows(project, "suppressions")
    assert entry["email_hash"] == subscribers.email_hash("erika@example.org") and entry["reason"] == "erased"
    files = b"".join(p.read_bytes() for p in project.root.glob("data/newsletter.db*")).lower()
    assert b"erika@example.org" not in files and b"zwiebelmeyer" not in files  # overwritten, not just unlinked


def test_an_erased_address_is_never_added_again(project):
    project.run("subscribers", "add", "erika@example.org", "--consent-source", "Formular")
    project.run("subscribers", "forget", "erika@example.org")
    added = project.run("subscribers", "add", "Erika@Example.org", "--consent-source", "Formular")
    assert added.exit_code == 0 and "was erased ('subscribers forget') and stays suppressed" in added.stderr
    imported = project.run("subscribers", "import", project.write("s.csv", "email\nERIKA@example.org\nneu@example.org\n"),
                           "--consent-source", "Messe")
    assert "1 added, 0 updated, 0 unchanged, 1 suppressed, 0 invalid" in imported.stdout
    assert [r["email"] for r in rows(project, "subscribers")] == ["neu@example.org"]
    proof = project.run("subscribers", "proof", "erika@example.org")
    assert proof.exit_code == 1 and "was erased" in proof.output


def test_forget_of_an_unknown_address_still_suppresses_it(project):
    result = project.run("subscribers", "forget", "fremd@example.org")
    assert result.exit_code == 0 and "never added or mailed" in result.stdout
    assert "stays suppressed" in project.run("subscribers", "add", "fremd@example.org").stderr
    assert rows(project, "subscribers") == []


# --- purge-pending ---------------------------------------------------------------------------------

def test_purge_pending_deletes_only_old_unconfirmed_sign_ups(project):
    for address in ("alt@example.org", "neu@example.org", "alt-aktiv@example.org"):
        project.run("subscribers", "add", address, *(["--consent-source", "Formular"] if "aktiv" in address else []))
    old = LONG_AGO
    age(project, "subscribers", "created_at", old, "email like 'alt%'")
    age(project, "consents", "signed_up_at", old, "subscriber_id in (select id from subscribers where email like 'alt%')")
    result = project.run("subscribers", "purge-pending", "--older-than", "7d")
    assert result.exit_code == 0 and result.stdout == "1 unconfirmed sign-ups deleted\n"
    assert [r["email"] for r in rows(project, "subscribers")] == ["neu@example.org", "alt-aktiv@example.org"]
    assert {c["subscriber_id"] for c in rows(project, "consents")} == {r["id"] for r in rows(project, "subscribers")}
    assert project.run("subscribers", "purge-pending", "--older-than", "48h").stdout.startswith("0 ")


def test_a_recent_sign_up_keeps_an_old_pending_reader(project):
    project.run("subscribers", "add", "a@example.org")
    age(project, "subscribers", "created_at", LONG_AGO)
    assert project.run("subscribers", "purge-pending").stdout.startswith("0 ")  # the consent row is from today


@pytest.mark.parametrize("value", ["7", "7w", "0d", "-1d", "sieben"])
def test_purge_pending_bad_age_is_a_usage_error(project, value):
    result = project.run("subscribers", "purge-pending", "--older-than", value)
    assert result.exit_code == 2 and "7d or 48h" in result.output


# --- confirmations send ----------------------------------------------------------------------------

def test_confirmations_send_mails_pending_readers_once(project, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    project.run("subscribers", "import", project.write("s.csv", "email\na@example.org\nb@example.org\n"))
    project.run("subscribers", "add", "aktiv@example.org", "--consent-source", "Formular")
    result = project.run("confirmations", "send")
    assert result.exit_code == 0 and result.stdout == "2 confirmation mails sent\n"
    assert sorted(m["To"] for m in outbox(project)) == ["a@example.org", "b@example.org"]
    proof = rows(project, "consents")[0]
    assert proof["confirm_sent_at"] and proof["consent_text"] == project.settings().serve.consent_text
    assert project.run("confirmations", "send").stdout == "0 confirmation mails sent\n"
    assert project.run("confirmations", "send", "--resend").stdout.startswith("0 ")  # links still valid
    age(project, "consents", "confirm_sent_at", LONG_AGO, "id = 1")
    assert project.run("confirmations", "send", "--resend").stdout.startswith("1 ")
    link = re.search(r"/confirm/(\S+)", outbox(project)[-1].get_body(("plain",)).get_content())[1]
    assert tokens.verify_timed(KEY, list_id(project.settings()), link, 3600).ref_id == 1


def test_confirmations_send_covers_readers_from_before_consent_rows(project, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    db = project.db()
    db["subscribers"].insert({"email": "alt@example.org", "status": "pending", "created_at": "2025-05-01T08:00:00+00:00"})
    db.conn.commit()
    assert project.run("confirmations", "send").stdout.startswith("1 ")
    [proof] = rows(project, "consents")
    assert (proof["source"], proof["signed_up_at"]) == (LEGACY_SOURCE, "2025-05-01T08:00:00+00:00")


def test_confirmations_send_needs_the_secret(project):
    project.run("subscribers", "add", "a@example.org")
    result = project.run("confirmations", "send")
    assert result.exit_code == 1 and "NEWSLETTER_SECRET" in result.output
    assert len(result.output.strip().splitlines()) == 1 and outbox(project) == []


class LockedAfterSending:
    """A transport that takes the mail, whereupon another process locks the database (as a busy
    sign-up day does): nothing can be written after the mail has left."""

    is_open = True

    def __init__(self, db, path) -> None:
        self.db, self.path, self.sent, self.blocker = db, path, [], None

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, sender, recipient, data, before_data=None):
        from newsletter.delivery.transports import Outcome, Result

        self.sent.append(recipient)
        self.db.execute("PRAGMA busy_timeout = 0")
        self.blocker = sqlite3.connect(self.path, isolation_level=None)
        self.blocker.execute("BEGIN IMMEDIATE")
        return Result(Outcome.SENT, 250, "2.0.0 queued")


def test_a_locked_database_after_the_mail_left_never_mails_the_person_again(project, monkeypatch):
    """The mark is written before the mail goes out, so the two cannot disagree."""
    from newsletter.audience.confirmations import send_confirmation
    from newsletter.errors import StoreError

    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    project.run("subscribers", "add", "a@example.org")
    db = project.store()
    transport = LockedAfterSending(db, project.settings().db_path)
    try:
        send_confirmation(db, project.settings(), KEY, 1, transport)
    except StoreError:
        pass  # what the old order did: the mail was out, the mark could not be written
    finally:
        if transport.blocker is not None:
            transport.blocker.execute("ROLLBACK")
        db.close()
    assert transport.sent == ["a@example.org"]
    assert rows(project, "consents")[0]["confirm_sent_at"]
    assert project.run("confirmations", "send").stdout == "0 confirmation mails sent\n"
    assert outbox(project) == []


def test_a_refused_confirmation_mail_gives_the_mark_back(project, monkeypatch, smtp):
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    for name, value in (("TRANSPORT", "smtp"), ("SMTP_HOST", "127.0.0.1"), ("SMTP_PORT", str(smtp.port)),
                        ("SMTP_SECURITY", "none")):
        monkeypatch.setenv(f"NEWSLETTER_{name}", value)
    project.run("subscribers", "add", "a@example.org")
    smtp.handler.rcpt_faults["a@example.org"] = ["452 4.2.2 Mailbox full"]
    refused = project.run("confirmations", "send")
    assert "a@example.org" in refused.output and "452" in refused.output
    proof = rows(project, "consents")[0]
    assert proof["confirm_sent_at"] is None and proof["consent_text"] is None
    assert project.run("confirmations", "send").stdout.startswith("1 ")
    assert len(smtp.handler.received_by("a@example.org")) == 1


def test_two_confirmation_runs_at_once_mail_each_person_once(project, monkeypatch):
    import threading

    from newsletter.audience.confirmations import send_confirmations
    from newsletter.delivery.transports.memory import MemoryTransport

    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    addresses = "".join(f"leser{i}@example.org\n" for i in range(30))
    project.run("subscribers", "import", project.write("s.csv", "email\n" + addresses))
    for _ in range(10):
        age(project, "consents", "confirm_sent_at", None)
        transports = [MemoryTransport(), MemoryTransport()]
        def run(transport) -> None:
            with project.store() as db:
                send_confirmations(db, project.settings(), transport=transport)

        runs = [threading.Thread(target=run, args=(t,)) for t in transports]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
        mailed = sorted(recipient for t in transports for _, recipient, _ in t.sent)
        assert mailed == sorted(f"leser{i}@example.org" for i in range(30))


# --- timed tokens ----------------------------------------------------------------------------------

def test_timed_tokens_expire_and_cannot_be_redated():
    issued = int(clock.timestamp()) - 100
    token = tokens.make_timed(KEY, "Liste <l.example.org>", 42, issued)
    ok = tokens.verify_timed(KEY, "Liste <l.example.org>", token, 3600)
    assert (ok.ref_id, ok.issued_at, ok.expired) == (42, issued, False)
    assert tokens.verify_timed(KEY, "Liste <l.example.org>", token, 50).expired
    ref, _, mac = token.split(".")
    later = tokens.make_timed(KEY, "x", 0, int(clock.timestamp())).split(".")[1]
    for forged in (f"{ref}.{later}.{mac}", token + "x", token.replace(ref, "1b", 1), "42", "a.b.c.d", ""):
        assert tokens.verify_timed(KEY, "Liste <l.example.org>", forged, 3600) is None, forged
    assert tokens.verify_timed(b"another-secret-0123456789", "Liste <l.example.org>", token, 3600) is None
    assert tokens.verify_timed(KEY, "Andere <a.example.org>", token, 3600) is None
    assert tokens.verify(KEY, "Liste <l.example.org>", token) is None  # never an unsubscribe token
