"""`newsletter serve`'s app through Starlette's TestClient: sign-up, confirm, unsubscribe,
archive, health, security headers and hostile input. Mails go to the real file transport."""

from __future__ import annotations

import email
import re
import warnings
from email import policy

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from newsletter import clock, tokens
from newsletter.audience import subscribers
from newsletter.delivery.transports.memory import MemoryTransport
from newsletter.errors import ConfigError
from newsletter.mail.message import list_id
from newsletter.web.app import create_app
from newsletter.web.pages import CSP

with warnings.catch_warnings():  # Starlette 1.x nudges towards httpx2; httpx is what is installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


SECRET = "test-secret-0123456789abcdef"
KEY = SECRET.encode()
FORM = {"email": "erika@example.org", "name": "Erika Muster", "consent": "ja"}
MAIL_HEADERS = {"Date", "Message-ID", "From", "To", "Subject", "Auto-Submitted", "MIME-Version", "Content-Type"}


@pytest.fixture
def site(project, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    project.db().close()
    project.client = lambda **kw: TestClient(create_app(project.settings()), **kw)
    project.http = project.client()
    return project


def mails(project) -> list[email.message.EmailMessage]:
    outbox = project.root / "outbox"
    files = sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns) if outbox.is_dir() else []
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in files]


def confirm_path(message) -> str:
    text = message.get_body(("plain",)).get_content()
    return re.search(r"https://www\.stadtmarketing-demo\.de(/confirm/\S+)", text)[1]


def subscriber(project, address="erika@example.org") -> dict | None:
    return subscribers.find(project.store(), address)


def consents(project) -> list[dict]:
    return list(project.db()["consents"].rows_where(order_by="id"))


def signed_up(site, form=FORM) -> str:
    """Sign up and return the path of the confirmation link that was mailed."""
    assert site.http.post("/subscribe", data=form).status_code == 200
    return confirm_path(mails(site)[-1])


def assert_security_headers(response) -> None:
    h = response.headers
    assert h["content-security-policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in h["content-security-policy"] and "form-action 'self'" in h["content-security-policy"]
    assert (h["x-content-type-options"], h["referrer-policy"], h["x-frame-options"]) == ("nosniff", "no-referrer", "DENY")


# --- sign-up -------------------------------------------------------------------------------------

def test_form_is_german_accessible_and_self_contained(site):
    r = site.http.get("/subscribe")
    assert r.status_code == 200
    assert_security_headers(r)
    page = r.text
    assert '<html lang="de">' in page and "Newsletter abonnieren" in page
    for field in ("email", "name"):
        assert f'<label for="{field}">' in page and f'id="{field}" name="{field}"' in page
    assert 'type="checkbox" name="consent"' in page and site.settings().serve.consent_text in page
    assert 'name="website"' in page and 'aria-hidden="true"' in page  # the honeypot
    assert not re.search(r"<(script|link|img|iframe)\b|src=", page)  # no external assets, no script


def test_sign_up_stores_pending_reader_with_proof_and_mails_a_confirmation(site):
    r = site.http.post("/subscribe", data=FORM, headers={"user-agent": "Testbrowser/1.0"})
    assert r.status_code == 200 and "Bestätigungslink" in r.text
    row = subscriber(site)
    assert (row["status"], row["name"], row["confirmed_at"]) == ("pending", "Erika Muster", None)
    [proof] = consents(site)
    serve = site.settings().serve
    assert proof["source"] == "https://www.stadtmarketing-demo.de/subscribe"
    assert (proof["consent_text"], proof["consent_version"]) == (serve.consent_text, serve.consent_version)
    assert len(proof["consent_hash"]) == 64 and proof["confirm_sent_at"] and not proof["confirmed_at"]
    assert (proof["ip"], proof["user_agent"]) == (None, None)  # store_ip is off by default
    [mail] = mails(site)
    assert set(mail.keys()) == MAIL_HEADERS
    assert (mail["To"], mail["From"].addresses[0].addr_spec) == ("erika@example.org", "newsletter@stadtmarketing-demo.de")
    assert mail["Subject"] == "Bitte bestätigen Sie Ihre Anmeldung: Stadtmarketing-Brief"
    assert mail["Message-ID"].endswith("@stadtmarketing-demo.de>")
    assert "List-Unsubscribe" not in mail  # not a newsletter: no list headers, no advertising
    text, page = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
    assert "Anzeige" not in text + page and "Stellenmarkt" not in text + page
    assert confirm_path(mail) in page and "48 Stunden" in text and serve.consent_text in " ".join(text.split())
    raw = next((site.root / "outbox").glob("*.eml")).read_bytes()
    assert all(len(line) <= 78 for line in raw.split(b"\r\n")) and b"\n" not in raw.replace(b"\r\n", b"")


@pytest.mark.parametrize("state", ["pending", "active", "unsubscribed", "bounced", "erased"])
def test_answer_never_tells_whether_an_address_is_known(site, state):
    fresh = site.http.post("/subscribe", data={**FORM, "email": "neu@example.org"})
    site.http.post("/subscribe", data=FORM)
    db = site.db()
    if state == "erased":
        site.run("subscribers", "forget", "erika@example.org")
    elif state != "pending":
        db.execute("update subscribers set status = ? where email = ?", [state, FORM["email"]])
        db.conn.commit()
    db.execute("update consents set signed_up_at = '2000-01-01T00:00:00+00:00',"
               " confirm_sent_at = '2000-01-01T00:00:00+00:00'")  # outside the per-address throttle
    db.conn.commit()
    before = len(mails(site))
    again = site.client().post("/subscribe", data=FORM)
    assert (again.status_code, again.text) == (fresh.status_code, fresh.text)
    assert len(mails(site)) == before + (1 if state == "pending" else 0)
    row = subscriber(site)
    assert (row or {}).get("status", "erased") == state


def test_a_pending_address_is_mailed_at_most_once_per_rate_window(site):
    site.http.post("/subscribe", data=FORM)
    other = site.client(client=("203.0.113.9", 50000))
    assert other.post("/subscribe", data=FORM).status_code == 200
    assert len(mails(site)) == 1 and len(consents(site)) == 1


def test_store_ip_keeps_addresses_and_user_agent(site):
    site.set_config("serve", "store_ip", True)
    client = site.client(client=("198.51.100.7", 40000))
    client.post("/subscribe", data=FORM, headers={"user-agent": "Testbrowser/1.0"})
    assert client.post(confirm_path(mails(site)[0])).status_code == 200
    [proof] = consents(site)
    assert (proof["ip"], proof["user_agent"], proof["confirm_ip"]) == ("198.51.100.7", "Testbrowser/1.0", "198.51.100.7")


def test_json_sign_up(site):
    r = site.http.post("/subscribe", json={"email": "erika@example.org", "consent": True})
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert subscriber(site)["status"] == "pending" and len(mails(site)) == 1
    bad = site.http.post("/subscribe", json={"email": "kaputt", "consent": False})
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"email", "consent"}
    assert site.http.post("/subscribe", content=b"[1, 2]", headers={"content-type": "application/json"}).status_code == 400


CONSENT_MISSING = "Bitte bestätigen Sie die Einwilligung mit dem Häkchen."  # texts.j2, errors.consent
EMAIL_INVALID = "Bitte geben Sie eine gültige E-Mail-Adresse an (z. B. name@example.de)."  # errors.email


@pytest.mark.parametrize("form,field,message", [
    ({"email": "erika@example.org", "name": "Erika"}, "consent", CONSENT_MISSING),
    ({"email": "erika@", "consent": "ja"}, "email", EMAIL_INVALID),
    ({"consent": "ja"}, "email", EMAIL_INVALID),
])
def test_missing_consent_or_bad_address_is_400_with_the_form_again(site, form, field, message):
    r = site.http.post("/subscribe", data=form)
    assert r.status_code == 400 and 'role="alert"' in r.text
    # Only the one error, in its own words ("Einwilligung" alone is in every form's consent text).
    alert = re.search(r'role="alert">(.*?)</div>', r.text, re.S)[1]
    assert re.findall(r"<li>(.*?)</li>", alert) == [message]
    inputs = {re.search(r'name="(\w+)"', tag)[1]: tag for tag in re.findall(r"<input\b[^>]*>", r.text)}
    assert [name for name, tag in inputs.items() if 'aria-invalid="true"' in tag] == [field]
    assert f'value="{form["email"]}"' in r.text if "email" in form else True  # the input is kept
    assert subscriber(site) is None and mails(site) == []
    assert_security_headers(r)


def test_honeypot_answers_like_success_and_does_nothing(site):
    r = site.http.post("/subscribe", data={**FORM, "website": "https://spam.example"})
    assert r.status_code == 200 and "Bestätigungslink" in r.text
    assert subscriber(site) is None and mails(site) == []


def test_a_flood_from_one_address_gets_429(site):
    limit = site.settings().serve.rate_limit
    answers = [site.http.post("/subscribe", data={**FORM, "email": f"leser{i}@example.org"}).status_code
               for i in range(limit + 3)]
    assert answers == [200] * limit + [429] * 3
    r = site.http.post("/subscribe", data=FORM)
    assert r.status_code == 429 and "erneut" in r.text and r.headers["retry-after"] == "600"
    assert_security_headers(r)
    other = site.client(client=("203.0.113.10", 50000)).post("/subscribe", data=FORM)
    assert other.status_code == 200
    assert len(mails(site)) == limit + 1


@pytest.mark.parametrize("form", [
    {**FORM, "name": "Erika\r\nBcc: opfer@example.org"},
    {**FORM, "email": "erika@example.org\r\nBcc: opfer@example.org"},
    {**FORM, "name": "x" * 201},
    {**FORM, "email": "a" * 300 + "@example.org"},
])
def test_header_injection_and_overlong_fields_are_refused(site, form):
    r = site.http.post("/subscribe", data=form)
    assert r.status_code == 400
    assert "\r\nBcc" not in r.text and "x" * 201 not in r.text
    assert site.db()["subscribers"].count == 0 and mails(site) == []


def test_html_in_fields_is_escaped(site):
    r = site.http.post("/subscribe", data={"email": '"><script>alert(1)</script>', "name": "<b>Fett</b>"})
    assert r.status_code == 400
    assert "<script>" not in r.text and "<b>" not in r.text
    assert "&lt;script&gt;" in r.text and "&lt;b&gt;Fett&lt;/b&gt;" in r.text


def test_oversized_and_multipart_bodies(site):
    assert site.http.post("/subscribe", data={**FORM, "name": "x" * 20_000}).status_code == 413
    r = site.http.post("/subscribe", data=FORM, files={"upload": ("a.txt", b"data")})
    assert r.status_code == 400 and subscriber(site) is None
    assert site.http.post("/subscribe", files={k: (None, v) for k, v in FORM.items()}).status_code == 200
    assert subscriber(site)["status"] == "pending"


@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(address=st.one_of(st.emails(), st.text(max_size=80), st.builds(lambda a, b: a + b, st.emails(), st.text(max_size=20))),
       name=st.text(max_size=120))
def test_any_text_in_the_form_never_fails_or_injects_headers(site, address, name):
    memory = MemoryTransport()
    settings = site.settings()
    settings.serve.rate_limit = 0
    client = TestClient(create_app(settings, transport_factory=lambda: memory))
    r = client.post("/subscribe", data={"email": address, "name": name, "consent": "ja"})
    assert r.status_code in (200, 400)
    assert r.headers["content-security-policy"] == CSP
    for _, recipient, raw in memory.sent:
        head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
        names = [line.split(":", 1)[0] for line in head.split("\r\n") if not line[:1].isspace()]
        assert sorted(names) == sorted(MAIL_HEADERS)
        assert f"\r\nTo: {recipient}\r\n" in head and recipient == subscribers.normalise_email(address)


# --- confirmation ----------------------------------------------------------------------------------

def test_get_shows_a_button_and_only_post_confirms(site):
    path = signed_up(site)
    r = site.http.get(path)
    assert r.status_code == 200 and '<form method="post">' in r.text and "Anmeldung bestätigen" in r.text
    assert r.headers["cache-control"] == "no-store"
    assert_security_headers(r)
    assert subscriber(site)["status"] == "pending"
    done = site.http.post(path)
    assert done.status_code == 200 and "bestätigt" in done.text
    row, [proof] = subscriber(site), consents(site)
    assert row["status"] == "active" and row["confirmed_at"] and row["source"] == proof["source"]
    assert proof["confirmed_at"] and proof["confirm_ip"] is None


def test_replayed_confirmation_is_idempotent(site):
    path = signed_up(site)
    site.http.post(path)
    first = subscriber(site)
    for method in ("get", "post"):
        r = getattr(site.http, method)(path)
        assert r.status_code == 200 and "Bereits bestätigt" in r.text
    assert subscriber(site) == first


def test_forged_and_expired_confirmation_links(site, fake_clock):
    path = signed_up(site)
    fake_clock.advance(minutes=10)
    ref, issued, mac = path.rsplit("/", 1)[1].split(".")
    # Re-dated links, base36 as real ones: before the sign-up, and a minute after it (still
    # within the sign-up's lifetime, so only the signature can refuse it).
    redated = [f"{ref}.{tokens._b36(int(issued, 36) + seconds)}.{mac}" for seconds in (-1, 60)]
    forged = [f"{ref}.{issued}.{mac[:-2]}AA", *redated, "1", "x" * 5000, "%00"]
    for token in forged:
        for method in ("get", "post"):
            r = getattr(site.http, method)(f"/confirm/{token}")
            assert r.status_code == 404 and "Link ungültig" in r.text, token
    old = tokens.make_timed(KEY, list_id(site.settings()), int(ref, 36), int(clock.timestamp()) - 49 * 3600)
    db = site.db()
    db.execute("update consents set signed_up_at = '2000-01-01T00:00:00+00:00'")
    db.conn.commit()
    r = site.http.post(f"/confirm/{old}")
    assert r.status_code == 400 and "abgelaufen" in r.text
    assert subscriber(site)["status"] == "pending"


def test_a_link_from_before_an_unsubscribe_never_reactivates(site):
    path = signed_up(site)
    db = site.db()
    db.execute("update subscribers set status = 'unsubscribed'")
    db.conn.commit()
    r = site.http.post(path)
    assert r.status_code == 400 and subscriber(site)["status"] == "unsubscribed"
    assert consents(site)[0]["confirmed_at"] is None


def test_an_old_confirmation_link_after_an_unsubscribe_is_not_confirmed_again(site):
    path = signed_up(site)
    assert "Anmeldung bestätigt" in site.http.post(path).text
    token = tokens.make(KEY, list_id(site.settings()), subscriber(site)["id"])
    assert site.http.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    for method in ("get", "post"):
        r = getattr(site.http, method)(path)
        assert r.status_code == 400 and "Link nicht mehr gültig" in r.text and "Bereits bestätigt" not in r.text
    assert subscriber(site)["status"] == "unsubscribed"


def test_a_link_to_a_reused_consent_id_is_unknown(site, fake_clock):
    path = signed_up(site)
    site.run("subscribers", "forget", "erika@example.org")
    fake_clock.advance(seconds=1)  # the next sign-up is signed in a later second than the old link was issued
    site.http.post("/subscribe", data={**FORM, "email": "hans@example.org"})
    assert consents(site)[0]["id"] == int(path.rsplit("/", 1)[1].split(".")[0], 36)  # SQLite reused the id
    assert site.http.post(path).status_code == 404
    assert subscriber(site, "hans@example.org")["status"] == "pending"


# --- unsubscribe -----------------------------------------------------------------------------------

def active_reader(site, address="erika@example.org") -> str:
    row, _ = subscribers.add(site.store(), address, consent_source="Test")
    return f"/u/{tokens.make(KEY, list_id(site.settings()), row['id'])}"


def test_get_never_unsubscribes(site):
    path = active_reader(site)
    for _ in range(3):
        r = site.http.get(path)
        assert r.status_code == 200 and '<form method="post">' in r.text and "abbestellen" in r.text
        assert r.headers["cache-control"] == "no-store"
    assert subscriber(site)["status"] == "active"


@pytest.mark.parametrize("kind", ["form", "multipart"])
def test_one_click_post_unsubscribes_without_redirect_or_cookie(site, kind):
    path = active_reader(site)
    body = ({"data": {"List-Unsubscribe": "One-Click"}} if kind == "form"
            else {"files": {"List-Unsubscribe": (None, "One-Click")}})
    r = site.http.post(path, follow_redirects=False, **body)
    assert r.status_code == 200 and "set-cookie" not in r.headers and "Abgemeldet" in r.text
    assert_security_headers(r)
    row = subscriber(site)
    assert row["status"] == "unsubscribed" and row["unsubscribed_at"] and row["updated_at"] == row["unsubscribed_at"]
    again = site.http.post(path, **body)
    assert again.status_code == 200 and subscriber(site) == row
    assert "Bereits abgemeldet" in site.http.get(path).text


@pytest.mark.parametrize("status", ["bounced", "complained"])
def test_bounced_or_complained_reader_stays_as_is(site, status):
    path = active_reader(site)
    db = site.db()
    db.execute("update subscribers set status = ?", [status])
    db.conn.commit()
    assert site.http.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert subscriber(site)["status"] == status


def test_forged_or_unknown_unsubscribe_token_is_404(site):
    path = active_reader(site)
    lid = list_id(site.settings())
    good = path[3:]
    for token in (good[:-1] + ("B" if good[-1] == "A" else "A"), tokens.make(KEY, lid, 999), tokens.make(KEY, lid, 1, "bounce"),
                  tokens.make(b"another-secret-0123456789", lid, 1), "", "x" * 3000):
        for method in ("get", "post"):
            r = getattr(site.http, method)(f"/u/{token}")
            assert r.status_code == 404, token
    assert subscriber(site)["status"] == "active"


def test_a_trailing_slash_never_redirects_and_one_click_still_answers_200(site):
    """Starlette answered '/u/TOKEN/' with a 307 to 'http://<Host header>/u/TOKEN'."""
    path = active_reader(site)
    evil = {"host": "evil.example"}
    for method, url in (("get", "/subscribe/"), ("get", "/health/"), ("get", path + "/"), ("get", "/c/AAAAAAAAAA/"),
                        ("get", "/confirm/x.y.z/"), ("post", "/subscribe/")):
        r = getattr(site.http, method)(url, headers=evil, follow_redirects=False)
        assert r.status_code not in (301, 302, 303, 307, 308), (url, r.status_code)
        assert "evil.example" not in r.headers.get("location", "") + r.text
    r = site.http.post(path + "/", data={"List-Unsubscribe": "One-Click"}, headers=evil, follow_redirects=False)
    assert r.status_code == 200 and "location" not in r.headers
    assert subscriber(site)["status"] == "unsubscribed"


def test_token_ids_in_another_spelling_are_refused(site):
    path = active_reader(site)
    token = path[3:]
    sid, mac = token.split(".", 1)
    for other in (f"0{sid}", f"+{sid}", f" {sid}", f"{sid} ", sid.upper() if sid.upper() != sid else f"00{sid}"):
        assert site.http.get(f"/u/{other}.{mac}").status_code == 404, other
        assert site.http.post(f"/u/{other}.{mac}", data={"List-Unsubscribe": "One-Click"}).status_code == 404, other
    assert subscriber(site)["status"] == "active"
    assert tokens.number("1") == 1 and tokens.number("01") is None and tokens.number("+1") is None


# --- archive, health, errors -------------------------------------------------------------------------

def test_archive_is_404_unless_enabled(site):
    site.write("archive/index.html", "<h1>Archiv</h1>")
    assert site.http.get("/archive/index.html").status_code == 404
    site.set_config("archive", "enabled", True)
    assert site.client().get("/archive/index.html").status_code == 200


def test_archive_serves_its_files_and_nothing_else(site):
    site.set_config("archive", "enabled", True)
    site.write("archive/index.html", "<h1>Archiv</h1>")
    site.write("archive/2026-11-24.html", "<h1>Ausgabe</h1>")
    site.write("archive/feed.xml", "<rss/>")
    site.write("archive/.hidden", "secret")
    site.write("geheim.txt", "secret")
    (site.root / "archive" / "link.html").symlink_to(site.root / "geheim.txt")
    client = site.client()
    r = client.get("/archive/")
    assert r.status_code == 200 and "Archiv" in r.text and r.headers["content-type"].startswith("text/html")
    assert "img-src https:" in r.headers["content-security-policy"]
    assert client.get("/archive", follow_redirects=False).status_code == 308
    assert client.get("/archive/2026-11-24.html").text == "<h1>Ausgabe</h1>"
    assert client.get("/archive/feed.xml").headers["content-type"].startswith("application/xml")
    for path in ("/archive/../newsletter.toml", "/archive/%2e%2e/newsletter.toml", "/archive/..%2fnewsletter.toml",
                 "/archive/.hidden", "/archive/link.html", "/archive/nope.html", "/archive/%00", "/archive/" + "a" * 5000):
        r = client.get(path)
        assert r.status_code == 404 and "secret" not in r.text and "[database]" not in r.text, path


def test_health(site):
    r = site.http.get("/health")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    assert_security_headers(r)
    site.settings().db_path.unlink()
    broken = site.settings()
    r = TestClient(create_app(broken)).get("/health")
    assert (r.status_code, r.json()["status"]) == (503, "unavailable")


def test_unknown_routes_and_methods_get_german_pages_with_headers(site):
    for r, status in ((site.http.get("/gibt-es-nicht"), 404), (site.http.put("/subscribe"), 405),
                      (site.http.delete("/u/abc"), 405)):
        assert r.status_code == status and 'lang="de"' in r.text
        assert_security_headers(r)
    assert set(site.http.put("/subscribe").headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_app_needs_the_secret_and_an_https_base_url(project, monkeypatch):
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET"):
        create_app(project.settings())
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    monkeypatch.setenv("NEWSLETTER_BASE_URL", "http://www.example.de")
    with pytest.raises(ConfigError, match="https"):
        create_app(project.settings())
