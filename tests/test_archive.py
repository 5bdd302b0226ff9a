"""`newsletter archive`: the static web archive of sent issues, its RSS feed, and the
"Im Browser ansehen" link that issues carry when the archive is enabled."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import feedparser
import pytest
from conftest import NUMBER, SLUG, day, german

from newsletter.audience import subscribers
from newsletter.store.issues import get_issue

NEXT = day(7).isoformat()
BASE = "https://www.stadtmarketing-demo.de"
SECRET = "test-secret-0123456789abcdef"


def send(project, slug: str) -> None:
    result = project.run("send", slug, "--yes")
    assert result.exit_code == 0, result.output


@pytest.fixture
def sent(composed, monkeypatch, fake_clock):
    """Two issues a week apart sent through the file transport to one reader: SLUG and NEXT."""
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    db = composed.store()
    subscribers.add(db, "erika@example.org", anrede="Frau", titel="Dr.", nachname="Muster", consent_source="Test")
    db.close()
    send(composed, SLUG)
    fake_clock.advance(days=7)
    article = {"url": f"{BASE}/advent", "title": "Adventsmärkte öffnen", "published": day(6).isoformat(),
               "teaser": "<p>Die Buden stehen.</p>"}
    assert composed.run("import", composed.write("neu.json", json.dumps([article])), "--kind", "article").exit_code == 0
    result = composed.run("compose", "--number", "nächste", "--subject", "Märkte & Buden: 3 < 4")
    assert result.exit_code == 0, result.output
    send(composed, NEXT)
    return composed


def test_index_lists_sent_issues_newest_first_with_german_dates(sent):
    result = sent.run("archive")
    assert result.exit_code == 0, result.output
    assert "Wrote 2 issue page(s)" in result.output
    index = (sent.root / "archive" / "index.html").read_text(encoding="utf-8")
    assert index.index(f'href="{NEXT}.html"') < index.index(f'href="{SLUG}.html"')
    assert f"Ausgabe nächste · {german(day(7))}" in index and f"Ausgabe {NUMBER} · {german(day(0))}" in index
    assert "Märkte &amp; Buden: 3 &lt; 4" in index
    assert '<html lang="de">' in index and "https://" not in index  # no external assets
    assert sorted(p.name for p in (sent.root / "archive").iterdir()) == [
        f"{SLUG}.html", f"{NEXT}.html", "abbestellen.html", "feed.xml", "index.html"]


def test_issue_pages_are_for_nobody_in_particular(sent):
    assert sent.run("archive").exit_code == 0
    page = (sent.root / "archive" / f"{SLUG}.html").read_text(encoding="utf-8")
    assert "Guten Tag," in page and "Dr. Muster" not in page and "erika@example.org" not in page
    assert "%%" not in page and "BEISPIEL-TOKEN" not in page and "/u/" not in page
    assert '<a href="abbestellen.html"' in page and 'href="index.html"' in page
    assert "Diese E-Mail ging an alle Abonnentinnen und Abonnenten." in page
    assert "Impressum" in page
    unsubscribe = (sent.root / "archive" / "abbestellen.html").read_text(encoding="utf-8")
    assert "mailto:redaktion@stadtmarketing-demo.de" in unsubscribe


def test_feed_is_rss_of_the_sent_issues(sent):
    assert sent.run("archive").exit_code == 0
    data = (sent.root / "archive" / "feed.xml").read_bytes()
    channel = ET.fromstring(data).find("channel")
    assert channel.findtext("title") == "Stadtmarketing-Brief" and channel.findtext("language") == "de"
    feed = feedparser.parse(data)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "rss20"
    assert [e.title for e in feed.entries] == ["Märkte & Buden: 3 < 4", sent.db()["issues"].get(1)["subject"]]
    first = feed.entries[0]
    assert first.link == f"{BASE}/archive/{NEXT}.html" and first.id == first.link
    sent_at = get_issue(sent.store(), NEXT).sent_at
    assert first.published_parsed[:6] == tuple(int(n) for n in re.findall(r"\d+", sent_at)[:6])


def test_nothing_sent_yet_still_writes_an_index(composed, tmp_path):
    result = composed.run("archive", "--out", tmp_path / "web")
    assert result.exit_code == 0, result.output
    assert "Es wurde noch keine Ausgabe verschickt." in (tmp_path / "web" / "index.html").read_text(encoding="utf-8")
    assert feedparser.parse((tmp_path / "web" / "feed.xml").read_bytes()).entries == []
    assert not (tmp_path / "web" / f"{SLUG}.html").exists()
    assert "[archive] enabled is false" in result.output


def test_unwritable_folder_is_a_one_line_error(composed):
    blocker = composed.write("datei.txt", "kein Ordner")
    result = composed.run("archive", "--out", blocker)
    assert result.exit_code == 1
    assert result.output.strip().startswith(f"Error: Cannot write to {blocker}")
    assert len(result.output.strip().splitlines()) == 1


def test_issues_link_to_their_archive_page_only_when_enabled(composed, monkeypatch):
    url = f"{BASE}/archive/{SLUG}.html"
    out = composed.root / "out" / SLUG
    assert "Im Browser ansehen" not in (out / "issue.html").read_text(encoding="utf-8")
    assert "Im Browser ansehen" not in (out / "issue.txt").read_text(encoding="utf-8")

    composed.set_config("archive", "enabled", True)
    assert composed.run("compose", "--replace", SLUG).exit_code == 0
    html = (out / "issue.html").read_text(encoding="utf-8")
    text = (out / "issue.txt").read_text(encoding="utf-8")
    assert re.search(rf'<a href="{re.escape(url)}"[^>]*>Im Browser ansehen</a>', html)
    assert f"Im Browser ansehen: {url}\n" in text
    assert text.index("Im Browser ansehen") < text.index("Sehr geehrte Frau Dr. Muster")  # near the top

    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    db = composed.store()
    subscribers.add(db, "erika@example.org", consent_source="Test")
    db.close()
    sent = composed.run("send", SLUG, "--yes")
    assert sent.exit_code == 0 and "Web archive updated in" in sent.output  # so the link works at once
    page = (composed.root / "archive" / f"{SLUG}.html").read_text(encoding="utf-8")
    assert "Im Browser ansehen" not in page  # it would point at the page itself
    assert f"Ausgabe {NUMBER} · {german(day(0))}</div>" in page


def test_a_second_issue_of_the_same_day_links_to_its_own_page(composed):
    composed.set_config("archive", "enabled", True)
    result = composed.run("compose", "--date", SLUG, "--another", "--subject", "Sonderausgabe")
    assert result.exit_code == 0, result.output
    text = (composed.root / "out" / f"{SLUG}-2" / "issue.txt").read_text(encoding="utf-8")
    assert re.search(rf"Im Browser ansehen:\s+{re.escape(BASE)}/archive/{SLUG}-2\.html\n", text)
