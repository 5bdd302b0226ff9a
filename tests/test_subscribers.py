"""`newsletter subscribers`: address normalisation, consent, suppression, CSV import/export."""

from __future__ import annotations

import csv
import io
import json
import socket
import stat

import pytest

from newsletter.audience import subscribers
from newsletter.cli.subscribers import subscribers_app
from newsletter.compose.personal import salutation
from newsletter.mail import addresses
from newsletter.store.subscribers import SUPPRESSED, active_subscribers


def stored(project) -> list[dict]:
    return list(project.db()["subscribers"].rows_where(order_by="id"))


def one(project) -> dict:
    rows = stored(project)
    assert len(rows) == 1, rows
    return rows[0]


def set_status(project, email: str, status: str) -> None:
    db = project.db()
    db.execute("update subscribers set status = ? where email = ?", [status, email])
    db.conn.commit()


def add_delivery(project, subscriber_id: int) -> None:
    db = project.db()
    issue = db["issues"].insert({"slug": "2026-11-24", "status": "sent", "issue_date": "2026-11-24"}).last_pk
    db["deliveries"].insert({"issue_id": issue, "subscriber_id": subscriber_id, "email": "x", "status": "sent"})
    db.conn.commit()


# --- addresses -----------------------------------------------------------------------------

def test_same_address_in_other_case_is_the_same_subscriber(project):
    first = project.run("subscribers", "add", "Erika@Example.ORG")
    assert first.exit_code == 0, first.output
    again = project.run("subscribers", "add", "erika@example.org")
    assert again.exit_code == 0, again.output
    assert "Unchanged" in again.stdout
    assert one(project)["email"] == "Erika@example.org"  # local part as typed, domain lower-case


def test_idn_domain_is_stored_as_punycode(project):
    project.run("subscribers", "add", "max@bücher.de")
    assert one(project)["email"] == "max@xn--bcher-kva.de"
    assert "Unchanged" in project.run("subscribers", "add", "max@XN--BCHER-KVA.de").stdout
    assert project.run("subscribers", "list").stdout == "max@xn--bcher-kva.de\n"


def test_surrounding_whitespace_is_stripped(project):
    project.run("subscribers", "add", "  erika@example.org \t")
    assert one(project)["email"] == "erika@example.org"


@pytest.mark.parametrize("address,needle", [
    ("a@b", "not a valid e-mail address"),
    ("kein-at-zeichen.de", "not a valid e-mail address"),
    ("a@@example.org", "not a valid e-mail address"),
    ("a b@example.org", "not a valid e-mail address"),
    ("erika@example.org\r\nBcc: opfer@example.org", "control character"),
    ("jörg@example.de", "SMTPUTF8"),
    ("   ", "empty"),
])
def test_invalid_address_is_one_line_error(project, address, needle):
    result = project.run("subscribers", "add", address)
    assert result.exit_code == 1
    assert needle in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert " - " in result.output  # the fix follows the problem
    assert stored(project) == []


def test_no_dns_lookup_even_with_the_network_down(project, monkeypatch):
    # The resolver swallows a failing lookup, so raising alone would let a DNS check slip
    # through: every attempt is recorded, and there must be none.
    attempts = []

    def offline(name):
        def refuse(*args, **kwargs):
            attempts.append((name, args))
            raise OSError("network is down")
        return refuse

    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
        monkeypatch.setattr(socket, name, offline(name))
    for name in ("connect", "connect_ex", "send", "sendto", "sendall"):
        monkeypatch.setattr(socket.socket, name, offline(f"socket.{name}"))
    addresses._checked_domain.cache_clear()  # a domain checked by an earlier test is not checked again
    assert subscribers.normalise_email("max@bücher.de") == "max@xn--bcher-kva.de"
    result = project.run("subscribers", "import", project.write("s.csv", "email\nredaktion@example.de\n"))
    assert result.exit_code == 0, result.output
    assert "1 added" in result.stdout
    assert attempts == []


# --- consent and suppression ---------------------------------------------------------------

def test_consent_source_makes_active_without_it_pending(project):
    project.run("subscribers", "add", "a@example.org", "--consent-source", "Messe 2026")
    project.run("subscribers", "add", "b@example.org")
    a, b = stored(project)
    assert (a["status"], a["source"]) == ("active", "Messe 2026") and a["confirmed_at"]
    assert (b["status"], b["source"], b["confirmed_at"]) == ("pending", None, None)


def test_pending_subscriber_becomes_active_with_consent(project):
    project.run("subscribers", "add", "a@example.org")
    result = project.run("subscribers", "add", "a@example.org", "--consent-source", "Double-Opt-In")
    assert "Updated a@example.org (active)" in result.stdout
    row = one(project)
    assert (row["status"], row["source"]) == ("active", "Double-Opt-In") and row["confirmed_at"]


def test_name_fields_update_an_existing_subscriber(project):
    project.run("subscribers", "add", "a@example.org", "--nachname", "Muster", "--consent-source", "Formular")
    project.run("subscribers", "add", "a@example.org", "--anrede", "Fr.", "--titel", "Dr.",
                "--nachname", "Muster-Beispiel\r\nBcc: x@example.org")
    row = one(project)
    assert (row["anrede"], row["titel"], row["nachname"]) == ("Frau", "Dr.", "Muster-Beispiel Bcc: x@example.org")
    assert (row["status"], row["source"]) == ("active", "Formular")


@pytest.mark.parametrize("status", SUPPRESSED)
def test_suppressed_subscriber_is_never_reactivated(project, status):
    project.run("subscribers", "add", "a@example.org", "--nachname", "Alt")
    set_status(project, "a@example.org", status)
    before = one(project)
    added = project.run("subscribers", "add", "A@example.org", "--nachname", "Neu", "--consent-source", "Formular")
    assert added.exit_code == 0
    assert "stays suppressed" in added.stderr
    imported = project.run("subscribers", "import", "--consent-source", "Messe",
                           project.write("s.csv", "email,nachname\na@EXAMPLE.org,Neu\n"))
    assert "0 added, 0 updated, 0 unchanged, 1 suppressed, 0 invalid" in imported.stdout
    assert one(project) == before


# --- CSV import ----------------------------------------------------------------------------

def test_import_reports_invalid_rows_with_spreadsheet_numbers(project):
    text = (
        "Email,Vorname,Nachname\n"
        "erika@example.org,Erika,Muster\n"
        "kaputt@,Kai,Kaputt\n"
        ",Ohne,Adresse\n"
        "\n"
        '"max@example.org","Max","Mehr\nzeilig"\n'
        "max@EXAMPLE.org,Max,Später\n"
        "zuviel@example.org,a,b,c\n"
    )
    result = project.run("subscribers", "import", project.write("liste.csv", text))
    assert result.exit_code == 0, result.output
    assert "2 added, 0 updated, 0 unchanged, 0 suppressed, 4 invalid" in result.stdout
    errors = result.stderr.splitlines()
    assert errors[0].startswith("liste.csv row 3, field email: 'kaputt@' is not a valid e-mail address")
    assert errors[1] == "liste.csv row 4, field email: missing"
    # The same address twice is not merged in silence: both rows are named, the first one stays.
    assert errors[2] == ("liste.csv row 7, field email: max@example.org is already in row 6 - "
                         "remove one of the two rows")
    assert errors[3].startswith("liste.csv row 8, field -: more values than header columns")
    rows = {r["email"].lower(): r for r in stored(project)}
    assert rows["max@example.org"]["nachname"] == "Mehr zeilig"
    assert all(r["status"] == "pending" for r in rows.values())


def test_import_with_bom_semicolons_and_english_headers(project):
    text = ("email;salutation;title;first_name;last_name\n"
            "erika@example.org;Frau;Dr.;Erika;Müller\n"
            "max@bücher.de;Hr.;;Max;Mustermann\n")
    result = project.run("subscribers", "import", "--consent-source", "Messe 2026",
                         project.write("s.csv", b"\xef\xbb\xbf" + text.encode()))
    assert result.exit_code == 0, result.output
    assert "2 added" in result.stdout
    erika, max_ = stored(project)
    assert (erika["anrede"], erika["titel"], erika["vorname"], erika["nachname"]) == ("Frau", "Dr.", "Erika", "Müller")
    assert (max_["email"], max_["anrede"], max_["status"]) == ("max@xn--bcher-kva.de", "Herr", "active")
    assert salutation(erika) == "Sehr geehrte Frau Dr. Müller"


def test_import_tab_separated_then_again_then_edited(project):
    path = project.write("s.tsv", "EMAIL\tNachname\nerika@example.org\tMuster\n")
    assert "1 added" in project.run("subscribers", "import", path).stdout
    assert "0 added, 0 updated, 1 unchanged" in project.run("subscribers", "import", path).stdout
    project.write("s.tsv", "EMAIL\tNachname\nerika@example.org\tBeispiel\n")
    assert "0 added, 1 updated" in project.run("subscribers", "import", path).stdout
    assert one(project)["nachname"] == "Beispiel"


def test_a_german_excel_csv_is_recognised_and_read_with_its_encoding(project):
    text = "email;nachname;name\nerika@example.org;Müller;„Erika“ – 5 €\n"
    path = project.write("excel.csv", text.encode("cp1252"))
    result = project.run("subscribers", "import", path)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "not UTF-8 but Windows-1252" in result.output and "line 2" in result.output
    assert "--encoding cp1252" in result.output and "iconv" not in result.output
    assert stored(project) == []
    result = project.run("subscribers", "import", path, "--encoding", "cp1252")
    assert result.exit_code == 0 and "1 added" in result.stdout
    assert (one(project)["nachname"], one(project)["name"]) == ("Müller", "„Erika“ – 5 €")  # nothing lost


def test_an_undecodable_csv_is_refused_with_the_fix(project):
    data = b"email,nachname\nerika@example.org,M\x81\x8dller\n"  # no text in any encoding we know
    result = project.run("subscribers", "import", project.write("kaputt.csv", data))
    assert result.exit_code == 1
    assert "not UTF-8" in result.output and "line 2" in result.output and "--encoding" in result.output
    assert project.run("subscribers", "import", "kaputt.csv", "--encoding", "nonsense").exit_code == 1


@pytest.mark.parametrize("name,text", [("no-email.csv", "name,vorname\nErika,Erika\n"), ("empty.csv", "")])
def test_import_without_email_column_is_refused(project, name, text):
    result = project.run("subscribers", "import", project.write(name, text))
    assert result.exit_code == 1
    assert "no 'email' column" in result.output


def test_import_of_a_missing_file(project):
    result = project.run("subscribers", "import", "nope.csv")
    assert result.exit_code == 1
    assert "nope.csv does not exist - check the path" in result.output


# --- list, remove, export ------------------------------------------------------------------

def test_list_by_status_and_as_json(project):
    project.run("subscribers", "add", "b@example.org", "--consent-source", "Formular")
    project.run("subscribers", "add", "a@example.org", "--consent-source", "Formular")
    project.run("subscribers", "add", "c@example.org")
    assert project.run("subscribers", "list").stdout == "a@example.org\nb@example.org\nc@example.org\n"
    assert project.run("subscribers", "list", "--status", "pending").stdout == "c@example.org\n"
    rows = json.loads(project.run("subscribers", "list", "--status", "active", "--json").stdout)
    assert [(r["email"], r["status"]) for r in rows] == [("a@example.org", "active"), ("b@example.org", "active")]


def test_list_unknown_status_is_a_usage_error(project):
    result = project.run("subscribers", "list", "--status", "abgemeldet")
    assert result.exit_code == 2
    words = " ".join(result.output.replace("│", " ").split())  # the error box wraps lines
    assert "pending, active, unsubscribed, bounced, complained" in words


def test_remove_deletes_a_subscriber_without_deliveries(project):
    project.run("subscribers", "add", "a@example.org")
    result = project.run("subscribers", "remove", "A@Example.org")
    assert result.exit_code == 0, result.output
    assert "Deleted a@example.org" in result.stdout
    assert stored(project) == []


def test_remove_unknown_address_names_the_fix(project):
    result = project.run("subscribers", "remove", "nobody@example.org")
    assert result.exit_code == 1
    assert "No subscriber nobody@example.org - see 'newsletter subscribers list'" in result.output


def test_remove_keeps_a_subscriber_with_deliveries_as_unsubscribed(project):
    project.run("subscribers", "add", "a@example.org", "--consent-source", "Formular")
    add_delivery(project, one(project)["id"])
    result = project.run("subscribers", "remove", "a@example.org")
    assert "Unsubscribed a@example.org" in result.stdout
    row = one(project)
    assert row["status"] == "unsubscribed" and row["unsubscribed_at"]
    assert "stays suppressed" in project.run("subscribers", "add", "a@example.org", "--consent-source", "x").stderr
    assert "already unsubscribed" in project.run("subscribers", "remove", "a@example.org").stdout
    assert one(project)["status"] == "unsubscribed"


def test_export_round_trip_keeps_names_and_suppression(project, tmp_path):
    project.run("subscribers", "add", "erika@example.org", "--anrede", "Frau", "--titel", "Dr.",
                "--vorname", "Erika", "--nachname", "Müller, geb. \"Muster\"", "--consent-source", "Messe")
    project.run("subscribers", "add", "weg@example.org", "--consent-source", "Messe")
    set_status(project, "weg@example.org", "bounced")
    result = project.run("subscribers", "export", "-o", "export.csv")
    assert result.exit_code == 0, result.output
    path = project.root / "export.csv"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="utf-8")
    assert project.run("subscribers", "export").stdout == text
    header = next(csv.reader(io.StringIO(text)))
    assert header == ["email", "name", "anrede", "titel", "vorname", "nachname", "status", "source",
                      "created_at", "confirmed_at"]

    other = tmp_path / "other.db"
    assert project.run("--db", other, "init").exit_code == 0
    imported = project.run("--db", other, "subscribers", "import", path, "--consent-source", "Umzug")
    assert "1 added, 0 updated, 0 unchanged, 1 suppressed, 0 invalid" in imported.stdout
    rows = json.loads(project.run("--db", other, "subscribers", "list", "--json").stdout)
    names = ("email", "anrede", "titel", "vorname", "nachname", "status")
    assert [{k: r[k] for k in names} for r in rows] == [
        {"email": "erika@example.org", "anrede": "Frau", "titel": "Dr.", "vorname": "Erika",
         "nachname": 'Müller, geb. "Muster"', "status": "active"},
        {"email": "weg@example.org", "anrede": None, "titel": None, "vorname": None,
         "nachname": None, "status": "bounced"},
    ]


def test_active_reads_in_batches_by_id(project):
    """Active readers come `batch` rows per query, as they are consumed: a million readers never
    sit in memory at once."""
    db = project.store()
    for i in range(7):
        subscribers.add(db, f"leser{i}@example.org", consent_source="Formular" if i != 3 else None)
    asked: list[int] = []
    query = db.query

    def counting(sql, params=()):
        rows = query(sql, params)
        asked.append(len(rows))
        return rows

    db.query = counting
    readers = active_subscribers(db, batch=2)
    first = next(readers)
    assert asked == [2]  # one batch read for the first reader, not all of them
    got = [first, *readers]
    assert [r["email"] for r in got] == [f"leser{i}@example.org" for i in (0, 1, 2, 4, 5, 6)]
    assert asked == [2, 2, 2, 0] and max(asked) <= 2
    assert set(got[0]) == {"id", "email", "name", "anrede", "titel", "vorname", "nachname"}


def test_every_subscribers_command_has_help_with_an_example(project):
    for cmd in subscribers_app.registered_commands:
        assert "Example:" in (cmd.callback.__doc__ or ""), cmd.name
    result = project.run("subscribers", "remove", "--help")
    assert "suppression list" in result.stdout


# --- salutations ---------------------------------------------------------------------------

@pytest.mark.parametrize("row,expected", [
    ({"anrede": "Frau", "titel": "Dr.", "nachname": "Müller"}, "Sehr geehrte Frau Dr. Müller"),
    ({"anrede": "Frau", "nachname": "Müller"}, "Sehr geehrte Frau Müller"),
    ({"anrede": "Herr", "nachname": "Schmidt"}, "Sehr geehrter Herr Schmidt"),
    ({"anrede": "Herr", "titel": "Prof. Dr.", "vorname": "Max", "nachname": "Schmidt"},
     "Sehr geehrter Herr Prof. Dr. Schmidt"),
    ({"anrede": "Hr.", "nachname": "Schmidt"}, "Sehr geehrter Herr Schmidt"),
    ({"anrede": "Fr.", "nachname": "Müller"}, "Sehr geehrte Frau Müller"),
    ({"anrede": "FRAU", "nachname": "Müller"}, "Sehr geehrte Frau Müller"),
    ({"anrede": " herr ", "nachname": " Schmidt "}, "Sehr geehrter Herr Schmidt"),
    ({"anrede": "divers", "vorname": "Alex", "nachname": "Beispiel"}, "Guten Tag Alex Beispiel"),
    ({"anrede": "", "vorname": "Alex", "nachname": "Beispiel"}, "Guten Tag Alex Beispiel"),
    ({"vorname": "Alex", "nachname": "Beispiel"}, "Guten Tag Alex Beispiel"),
    ({"anrede": "Frau", "vorname": "Erika"}, "Guten Tag"),
    ({"anrede": "divers", "nachname": "Beispiel"}, "Guten Tag"),
    ({"anrede": None, "titel": None, "vorname": None, "nachname": None}, "Guten Tag"),
    ({}, "Guten Tag"),
])
def test_salutation(row, expected):
    assert salutation(row) == expected


def test_subscriber_ids_are_never_reused_so_old_unsubscribe_links_stay_dead(project, tmp_path):
    """A database from before m005 is rebuilt with AUTOINCREMENT, its rows and references intact."""
    import sqlite3

    import sqlite_utils

    from newsletter.store import open_db
    from newsletter.store.schema import migrations

    path = tmp_path / "old.db"
    old = sqlite_utils.Database(sqlite3.connect(path))
    migrations.apply(old, stop_before="m005_subscriber_ids_never_reused")
    old["subscribers"].insert_all([{"email": "a@example.org", "status": "active"},
                                   {"email": "b@example.org", "status": "active"}])
    old["issues"].insert({"slug": "2026-11-24", "status": "sent", "issue_date": "2026-11-24"})
    old["deliveries"].insert({"issue_id": 1, "subscriber_id": 2, "email": "b@example.org", "status": "sent"})
    old.conn.commit()
    old.conn.close()

    open_db(path).close()
    db = sqlite_utils.Database(path)
    assert [r["email"] for r in db["subscribers"].rows] == ["a@example.org", "b@example.org"]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert {r[0] for r in db.execute("select name from sqlite_master where tbl_name = 'subscribers' and type = 'index'")} \
        >= {"idx_subscribers_email", "idx_subscribers_status"}
    with db.conn:
        db.execute("delete from deliveries")
        db.execute("delete from subscribers where id = 2")
    added, _ = subscribers.add(open_db(path), "c@example.org", consent_source="Test")
    assert added["id"] == 3  # not 2: the link that named reader 2 names nobody
