"""`newsletter preview`: the local page in a real browser (Debian's Chromium via Playwright), live
reload after a template edit, screenshots, and the server's start and stop as a real process.

Servers started here always stop: in-process ones in a `finally`, subprocesses with timeouts.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from browsing import CHROMIUM, offline_page, png_size, unavailable
from conftest import NUMBER, SLUG

from newsletter.audience import subscribers
from newsletter.browser import PLACEHOLDER_PNG
from newsletter.compose import render
from newsletter.compose.personal import SAMPLE
from newsletter.store.issues import get_issue, issue_items
from newsletter.web import preview as previewing
from newsletter.web.view import has_dark_css

CLI = [sys.executable, "-m", "newsletter"]


@contextmanager
def running(project, ref: str | None = None, email: str | None = None):
    """A preview server in this process on a free port; always shut down afterwards."""
    messages: list[str] = []
    server = previewing.start(project.settings, ref, email, "127.0.0.1", 0, report=messages.append)
    server.messages = messages
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.close()
        thread.join(timeout=10)


@pytest.fixture
def open_page(browser):
    """open_page(url) -> a page; images get the placeholder, nothing else leaves 127.0.0.1."""
    contexts = []

    def open_(url: str):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(context)
        return offline_page(context, url, allow=url, image=PLACEHOLDER_PNG)

    yield open_
    for context in contexts:
        context.close()


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode("utf-8")


def override_templates(project) -> Path:
    """A templates_dir with a copy of issue.mjml.j2, configured before composing."""
    folder = project.root / "vorlagen"
    folder.mkdir()
    (folder / "issue.mjml.j2").write_text((render.default_templates() / "issue.mjml.j2").read_text(encoding="utf-8"), encoding="utf-8")
    project.set_config("publication", "templates_dir", "vorlagen")
    return folder / "issue.mjml.j2"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


# --- the page in a browser -----------------------------------------------------------------

def test_page_shows_the_draft_its_parts_and_switches_to_mobile(composed, open_page):
    from playwright.sync_api import expect

    db = composed.store()
    issue = get_issue(db, SLUG)
    entries = issue_items(db, issue.id)
    db.close()
    with running(composed) as server:
        page = open_page(server.url)
        frame = page.frame_locator("#rahmen")
        expect(frame.locator("body")).to_contain_text("Sehr geehrte Frau Dr. Muster,")
        assert page.locator("#rahmen").bounding_box()["width"] == 600
        page.get_by_role("button", name="Mobil (375 px)").click()
        expect(page.locator("#rahmen")).to_have_css("width", "375px")
        assert page.locator("#rahmen").bounding_box()["width"] == 375
        assert page.evaluate("() => document.getElementById('rahmen').contentDocument.documentElement.scrollWidth") <= 375

        page.get_by_role("button", name="Dunkel invertiert (Näherung)").click()
        expect(page.locator("#rahmen")).to_have_css("filter", "invert(1) hue-rotate(180deg)")
        page.get_by_role("button", name="Dunkel (eigenes CSS)").click()
        expect(frame.locator("body")).to_have_css("background-color", "rgb(18, 20, 23)")  # the mail's own dark rule

        page.get_by_role("button", name="Textteil").click()
        expect(page.locator("#textteil")).to_be_visible()
        expect(page.locator("#textteil")).to_contain_text(f"https://www.stadtmarketing-demo.de/u/{SAMPLE.token}")
        page.get_by_role("button", name="Kopfzeilen").click()
        expect(page.locator("#kopfzeilen")).to_contain_text("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        expect(page.locator("#kopfzeilen")).to_contain_text("To: erika.muster@example.org")

        expect(page.locator("#groesse")).to_contain_text(f"{issue.html_size:,}".replace(",", ".") + " von 102.000 Bytes")
        links = page.locator("#inhalt a")
        expect(links).to_have_count(len(entries))
        hrefs = set(links.evaluate_all("links => links.map(a => a.href)"))
        assert hrefs == {e["item"]["url"] for e in entries}
        expect(page.locator("#inhalt")).to_contain_text("Aufmacher (1)")
        assert not page.blocked, page.blocked


def test_template_edit_recomposes_the_draft_and_the_page_follows(content, open_page):
    from playwright.sync_api import expect

    template = override_templates(content)
    assert content.run("compose", "--date", SLUG, "--number", NUMBER).exit_code == 0
    db = content.store()
    before = [(e["kind"], e["item_id"]) for e in issue_items(db, get_issue(db, SLUG).id)]
    db.close()
    with running(content) as server:
        page = open_page(server.url)
        frame = page.frame_locator("#rahmen")
        expect(frame.locator("body")).to_contain_text("WEITERE MELDUNGEN")
        page.get_by_role("button", name="Mobil (375 px)").click()
        page.evaluate("() => { window.unchanged = true; }")  # gone if the page were reloaded

        edit(template, "WEITERE MELDUNGEN", "AUS DER REGION")
        expect(frame.locator("body")).to_contain_text("AUS DER REGION", timeout=5000)
        assert page.evaluate("() => window.unchanged") is True
        assert page.locator("#rahmen").bounding_box()["width"] == 375  # the chosen view stays
        db = content.store()
        issue = get_issue(db, SLUG)
        assert "AUS DER REGION" in issue.html and issue.status == "draft"
        assert [(e["kind"], e["item_id"]) for e in issue_items(db, issue.id)] == before
        db.close()

        edit(template, "{%- if articles %}", "{%- if articles %}{{ nicht_da.x }}")
        expect(page.locator("#fehler")).to_contain_text("Neuaufbau fehlgeschlagen", timeout=5000)
        expect(page.locator("#fehler")).to_contain_text("nicht_da")
        expect(frame.locator("body")).to_contain_text("AUS DER REGION")  # the last good version
        assert "AUS DER REGION" in get(server.url + "issue.html")
        assert any("Error:" in m and "nicht_da" in m for m in server.messages)

        edit(template, "{{ nicht_da.x }}", "")
        expect(page.locator("#fehler")).to_be_empty(timeout=5000)
        assert page.evaluate("() => window.unchanged") is True


# --- screenshots ---------------------------------------------------------------------------

@pytest.fixture
def chromium():
    """For screenshots, which run Playwright themselves: in a subprocess, because the sync API
    refuses to start while the module's `browser` holds its own event loop in this process."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} does not exist")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("the playwright package is not installed")

    def screenshot(project, *args: str):
        done = subprocess.run(CLI + ["preview", *map(str, args)], cwd=project.root, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    return screenshot


def test_screenshots_are_pngs_of_the_frame_widths(composed, chromium, tmp_path):
    done = chromium(composed, SLUG, "--screenshot", tmp_path / "bilder")
    assert done.stdout.count("Wrote ") == 3
    shots = {name: (tmp_path / "bilder" / name).read_bytes() for name in ("desktop.png", "mobile.png", "dark.png")}
    sizes = {name: png_size(data) for name, data in shots.items()}
    assert sizes["desktop.png"][0] == 600 and sizes["dark.png"][0] == 600 and sizes["mobile.png"][0] == 375
    assert all(height > 2000 for _, height in sizes.values()), sizes  # the whole issue
    assert sizes["mobile.png"][1] > sizes["desktop.png"][1]  # columns stack on a phone
    assert shots["dark.png"] != shots["desktop.png"]
    assert not list((tmp_path / "bilder").glob("*.tmp"))


def test_dark_screenshot_inverts_a_mail_without_dark_rules(content, chromium, tmp_path):
    template = override_templates(content)
    text = template.read_text(encoding="utf-8")
    template.write_text(re.sub(r"@media \(prefers-color-scheme: dark\) \{.*?\n      \}\n", "", text, flags=re.S), encoding="utf-8")
    assert content.run("compose", "--date", SLUG).exit_code == 0
    assert not has_dark_css(get_issue(content.store(), SLUG).html)
    chromium(content, "--screenshot", tmp_path)
    assert (tmp_path / "dark.png").read_bytes() != (tmp_path / "desktop.png").read_bytes()


# --- without a browser ---------------------------------------------------------------------

def test_as_subscriber_and_sample_reader(composed):
    db = composed.store()
    subscribers.add(db, "hans@example.org", anrede="Herr", nachname="Beispiel", consent_source="Test")
    db.close()
    with running(composed, email="HANS@example.org") as server:
        html = get(server.url + "issue.html")
        assert "Sehr geehrter Herr Beispiel," in html and "Dr. Muster" not in html
        assert "hans@example.org" in get(server.url)
    with running(composed) as server:
        assert "Sehr geehrte Frau Dr. Muster," in get(server.url + "issue.html")
    result = composed.run("preview", "--no-open", "--port", "0", "--as", "nobody@example.org")
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: No subscriber nobody@example.org - see 'newsletter subscribers list', "
                                     "or leave out --as")


def test_no_draft_tells_to_compose(content):
    result = content.run("preview", "--no-open", "--port", "0")
    assert result.exit_code == 1
    assert "newsletter compose" in result.output and len(result.output.strip().splitlines()) == 1


def test_rebuild_pins_the_articles_and_uses_their_current_text(composed):
    db = composed.db()
    issue = get_issue(composed.store(), SLUG)
    lead = next(e for e in issue_items(composed.store(), issue.id) if e["section"] == "lead")["item"]
    db["articles"].update(lead["id"], {"title": "Neuer Titel des Aufmachers"})
    db["articles"].insert({"url": "https://www.stadtmarketing-demo.de/ganz-neu", "title": "Ganz neu",
                           "published": f"{SLUG}T07:00:00", "image": "https://www.stadtmarketing-demo.de/neu.jpg"})
    db.close()
    preview = previewing.LivePreview(composed.settings, None, None)
    preview.refresh(recompose=True)
    assert "Neuer Titel des Aufmachers" in preview.view.html and "Ganz neu" not in preview.view.html
    assert [e["item_id"] for e in preview.view.items if e["section"] == "lead"] == [lead["id"]]


def test_sent_issue_is_reloaded_not_recomposed(composed, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret-0123456789abcdef")
    db = composed.store()
    subscribers.add(db, "erika@example.org", consent_source="Test")
    db.close()
    assert composed.run("send", SLUG, "--yes").exit_code == 0
    template = override_templates(composed)
    edit(template, "WEITERE MELDUNGEN", "AUS DER REGION")
    preview = previewing.LivePreview(composed.settings, SLUG, None)
    preview.refresh(recompose=True)
    assert preview.view.issue.status == "sent" and "AUS DER REGION" not in preview.view.html


def test_busy_port_is_a_one_line_error(composed):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = composed.run("preview", "--no-open", "--port", port)
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: Port {port} on 127.0.0.1 is already in use - "
                                     "stop the other program or pass another --port")


def test_ctrl_c_stops_the_server_cleanly(composed):
    process = subprocess.Popen(CLI + ["preview", "--no-open", "--port", "0"], cwd=composed.root,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, line + process.stderr.read()
        assert "Vorschau:" in get(url.group(0))
        events = urllib.request.urlopen(url.group(0) + "events", timeout=10)  # an open SSE stream
        assert re.fullmatch(rb"data: \d+\n", events.readline())
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
        events.close()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode in (0, 130), err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if not line.startswith("Note: NEWSLETTER_NOW=")] == ["Preview stopped."]


def test_the_headers_tab_shows_the_subject_as_a_mail_client_does(composed):
    from newsletter.store.issues import get_issue
    from newsletter.web.view import make_view

    subject = "Größere Märkte, längere Öffnungszeiten: der Advent in den Städten – „Stadtmarketing“"
    assert composed.run("compose", "--replace", "1", "--subject", subject).exit_code == 0
    with composed.store() as db:
        headers = make_view(db, composed.settings(), get_issue(db, 1), SAMPLE).headers
    assert f"Subject: {subject}" in headers.splitlines() and "=?utf-8?" not in headers
    assert any(line.startswith("List-Unsubscribe: <https://") for line in headers.splitlines())


def test_click_counts_and_the_delivery_log_never_trigger_a_recompose(composed):
    """The preview watched the database file, so every click that serve counted re-composed the
    draft; it watches what a compose reads instead."""
    from newsletter.store.clicks import add_counts
    from newsletter.store.content import content_version
    from newsletter.web.preview import sources

    settings = composed.settings()
    assert all(path != settings.db_path for path in sources(settings))
    with composed.store() as db:
        before = content_version(db)
        link = db.one("select id from links limit 1")["id"]
        add_counts(db, {(link, "2026-12-03T09"): {"human": 1, "unique_human": 1}}, {(1, "2026-12-03T09"): 1})
        db.execute("insert into mail_claims (key, recipient, status, claimed_at) values ('x', 'y', 'sent', 'z')")
        assert content_version(db) == before
        db.execute("update articles set title = 'Neu', updated_at = '2099-01-01T00:00:00+00:00' where id = 1")
        assert content_version(db) != before
