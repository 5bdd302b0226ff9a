"""`newsletter serve` as a real uvicorn process with a real SMTP server (aiosmtpd):
sign-up → confirmation mail → confirm → compose → send → RFC 8058 one-click unsubscribe
→ the next issue skips the reader."""

from __future__ import annotations

import email
import json
import re
import socket
import subprocess
import sys
import time
from email import policy
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import NUMBER, SLUG, day
from smtp_server import Handler, free_port

SECRET = "test-secret-0123456789abcdef"
# `python -m newsletter` plus the import that registers `serve` (until cli.py imports the module).
NEWSLETTER = [sys.executable, "-m", "newsletter"]
NEW_ARTICLE = {
    "url": "https://www.stadtmarketing-demo.de/artikel/wochenmarkt-abendmarkt",
    "title": "Abendmarkt im Advent: Wochenmarkt öffnet donnerstags bis 21 Uhr",
    "teaser": "Ab Dezember bleibt der Wochenmarkt donnerstags bis in den Abend geöffnet.",
    "author": "Katrin Möller",
    "published": f"{day(1)}T08:00:00+01:00",
    "category": "Innenstadt",
    "image": "https://www.stadtmarketing-demo.de/bilder/abendmarkt.jpg",
    "image_alt": "Marktstände mit Lichterketten in der Dämmerung.",
}


@pytest.fixture
def live(content, smtp, monkeypatch):
    """The project configured for SMTP, and `newsletter serve` running on a free port."""
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    content.configure(send={"transport": "smtp", "retry_delay": 0.01},
                      smtp={"host": "127.0.0.1", "port": smtp.port, "security": "none"})
    port = free_port()
    process = subprocess.Popen([*NEWSLETTER, "serve", "--port", str(port)], cwd=content.root,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        content.base = f"http://127.0.0.1:{port}"
        wait_for_health(process, content.base)
        content.smtp = smtp.handler
        yield content
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_health(process: subprocess.Popen, base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}: {process.stderr.read()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).json() == {"status": "ok"}:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("serve did not answer /health within 30 s")


def received(handler: Handler, address: str, count: int = 1) -> list[email.message.EmailMessage]:
    """The messages `address` got, waiting until there are at least `count`."""
    deadline = time.monotonic() + 15
    while len(handler.received_by(address)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return [email.message_from_bytes(raw, policy=policy.default) for raw in handler.received_by(address)]


def on_live(url: str, base: str) -> str:
    """The configured https://www.stadtmarketing-demo.de/... URL, pointed at the live server."""
    return base + urlsplit(url).path


def status_of(project, address: str) -> str:
    return project.db().execute("select status from subscribers where email = ?", [address]).fetchone()[0]


def test_sign_up_confirm_send_one_click_unsubscribe_and_next_issue(live):
    reader, other = "lea.leserin@example.org", "hans@example.org"
    answer = httpx.post(f"{live.base}/subscribe", data={"email": reader, "name": "Lea Leserin", "consent": "ja"})
    assert answer.status_code == 200 and answer.headers["x-frame-options"] == "DENY"

    [mail] = received(live.smtp, reader)
    assert mail["Subject"].startswith("Bitte bestätigen Sie Ihre Anmeldung")
    link = re.search(r"https://\S+/confirm/\S+", mail.get_body(("plain",)).get_content())[0]
    page = httpx.get(on_live(link, live.base))
    assert page.status_code == 200 and '<form method="post">' in page.text
    assert status_of(live, reader) == "pending"  # a link scanner's GET confirms nothing
    assert httpx.post(on_live(link, live.base)).status_code == 200
    assert status_of(live, reader) == "active"

    assert live.run("subscribers", "add", other, "--consent-source", "Telefon").exit_code == 0
    composed = live.run("compose", "--date", SLUG, "--number", NUMBER)
    assert composed.exit_code == 0, composed.output
    sent = live.run("send", SLUG, "--yes")
    assert sent.exit_code == 0 and "2 sent" in sent.output, sent.output
    [_, issue] = received(live.smtp, reader, 2)
    unsubscribe_url = issue["List-Unsubscribe"].split(",")[0].strip().strip("<>")
    assert unsubscribe_url.startswith("https://www.stadtmarketing-demo.de/u/")
    assert issue["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    one_click = httpx.post(on_live(unsubscribe_url, live.base), data={"List-Unsubscribe": "One-Click"},
                           follow_redirects=False)
    assert one_click.status_code == 200 and "set-cookie" not in one_click.headers
    assert status_of(live, reader) == "unsubscribed"

    live.write("neu.json", json.dumps([NEW_ARTICLE]))
    assert live.run("import", "neu.json").exit_code == 0
    second = live.run("compose", "--date", day(2).isoformat(), "--since", "2d", "--number", "Sonderausgabe")
    assert second.exit_code == 0, second.output
    sent = live.run("send", day(2).isoformat(), "--yes")
    assert sent.exit_code == 0 and "1 sent" in sent.output, sent.output
    assert len(received(live.smtp, other, 2)) == 2
    assert len(live.smtp.received_by(reader)) == 2  # the confirmation and the first issue only
    issue_2 = live.db().execute("select id from issues where slug = ?", [day(2).isoformat()]).fetchone()[0]
    recipients = [r[0] for r in live.db().execute("select email from deliveries where issue_id = ?", [issue_2])]
    assert recipients == [other]


def test_serve_on_a_busy_port_is_one_line_exit_1(project, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    monkeypatch.delenv("NEWSLETTER_NOW")  # a moved clock adds its note
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([*NEWSLETTER, "serve", "--port", str(port)], cwd=project.root,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: Cannot listen on 127.0.0.1:{port} (Address already in use) - stop the other server "
        "or choose another port with --port or [serve] port"]


def test_serve_without_secret_is_one_line_exit_1(project):
    result = project.run("serve", "--port", str(free_port()))
    assert result.exit_code == 1 and "NEWSLETTER_SECRET" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_serve_help_has_an_example(project):
    for args in (["serve", "--help"], ["confirmations", "send", "--help"]):
        result = project.run(*args)
        assert result.exit_code == 0 and "Example:" in result.stdout


def test_counted_links_from_a_received_mail_redirect_count_and_report(live):
    """The demo counts clicks: a link taken from a message the SMTP server received leads to its
    article through the live `serve`, and the report says what happened."""
    reader = "lea.leserin@example.org"
    assert live.run("subscribers", "add", reader, "--consent-source", "Telefon").exit_code == 0
    assert live.run("compose", "--date", SLUG, "--number", NUMBER).exit_code == 0
    sent = live.run("send", SLUG, "--yes")
    assert sent.exit_code == 0 and "1 sent" in sent.output, sent.output
    [issue] = received(live.smtp, reader)
    html = issue.get_body(("html",)).get_content()
    link = re.search(r'<h2[^>]*><a href="(https://www\.stadtmarketing-demo\.de/c/[^"]+)"', html)[1]
    lead_url = live.db().execute("select url from links where code = ?", [link.rsplit("/", 1)[1]]).fetchone()[0]
    assert lead_url.startswith("https://www.stadtmarketing-demo.de/artikel/")

    browser = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
    answer = httpx.get(on_live(link, live.base), headers=browser, follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"] == lead_url
    assert httpx.head(on_live(link, live.base), headers=browser, follow_redirects=False).status_code == 302
    scanner = {"user-agent": "Mozilla/5.0 (compatible; SafeLinks; +https://aka.ms/safelinks)"}
    assert httpx.get(on_live(link, live.base), headers=scanner, follow_redirects=False).status_code == 302
    tampered = httpx.get(on_live(link[:-1] + ("x" if link[-1] != "x" else "y"), live.base), follow_redirects=False)
    assert tampered.status_code == 404 and "location" not in tampered.headers

    report = json.loads(live.run("report", SLUG, "--json").stdout)
    assert report["delivered"] == 1 and (report["human"], report["automated"], report["readers"]) == (1, 2, 1)
    [lead] = [entry for entry in report["links"] if entry["url"] == lead_url]
    assert (lead["section"], lead["human"], lead["unique"], lead["automated"], lead["rate"]) == ("lead", 1, 1, 2, 100.0)
