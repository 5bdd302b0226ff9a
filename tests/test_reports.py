"""`newsletter report` and `newsletter stats`: what an issue achieved, from counts that identify
nobody; the advertiser's Beleg as HTML and PDF; the click map in the preview."""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import ISSUE_DATE, NUMBER, SLUG

from newsletter.web.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SECRET = "test-secret-0123456789abcdef"
BASE = "https://www.stadtmarketing-demo.de"
READERS = [f"leser{n}@example.org" for n in range(1, 9)]
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15"


@pytest.fixture
def sent(composed, monkeypatch, fake_clock):
    """The demo issue sent (file transport) to eight readers, then clicked: the lead by three
    readers (one of them twice within the hour: a repeat), the first ad by two, the first job
    once; a link scanner and a HEAD request on the lead; one reader unsubscribes."""
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    fake_clock.set(datetime(ISSUE_DATE.year, ISSUE_DATE.month, ISSUE_DATE.day, 9, 0, tzinfo=ZoneInfo("Europe/Berlin")))
    for address in READERS:
        assert composed.run("subscribers", "add", address, "--consent-source", "Test").exit_code == 0
    result = composed.run("send", SLUG, "--yes")
    assert result.exit_code == 0 and "8 sent" in result.output, result.output
    app = create_app(composed.settings())
    links = {(r["kind"], r["section"]): r for r in composed.db().query(
        "select * from links where issue_id = 1 and position is not null order by position desc")}
    lead, ad, job = links[("article", "lead")], links[("ad", "ads")], links[("job", "jobs")]
    composed.links = {"lead": lead, "ad": ad, "job": job}

    def click(code: str, client: str, agent: str = FIREFOX, method: str = "GET") -> None:
        http = TestClient(app, base_url=BASE, client=(client, 40000))
        answer = http.request(method, f"/c/{code}", headers={"user-agent": agent}, follow_redirects=False)
        assert answer.status_code == 302

    fake_clock.advance(hours=1)
    for client in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        click(lead["code"], client)
    click(lead["code"], "192.0.2.1")
    fake_clock.advance(days=1)
    click(ad["code"], "192.0.2.1", SAFARI)
    click(ad["code"], "192.0.2.4")
    click(job["code"], "192.0.2.5")
    click(lead["code"], "192.0.2.9", "Mozilla/5.0 (compatible; Proofpoint URL Defense)")
    click(lead["code"], "192.0.2.9", method="HEAD")
    assert composed.run("subscribers", "remove", READERS[0]).exit_code == 0
    return composed


def report_json(project) -> dict:
    result = project.run("report", SLUG, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_report_json_matches_the_requests_made(sent):
    r = report_json(sent)
    assert (r["delivered"], r["failed"], r["bounced"], r["complained"], r["unsubscribed"]) == (8, 0, 0, 0, 1)
    # 3 lead (and a repeat), 2 ad, 1 job; readers per day: 3 on the first, 3 on the second (.1
    # again, in another browser: the estimate errs upwards, never down)
    assert (r["human"], r["automated"], r["repeated"], r["readers"]) == (6, 2, 1, 6)
    assert r["automated_by"] == {"head": 1, "scanner": 1, "burst": 0} and r["flags"] == []
    by_url = {link["url"]: link for link in r["links"]}
    lead, ad, job = (by_url[sent.links[k]["url"]] for k in ("lead", "ad", "job"))
    assert (lead["human"], lead["unique"], lead["automated"], lead["repeated"], lead["rate"]) == (3, 3, 2, 1, 37.5)
    assert (ad["human"], ad["unique"], ad["automated"], ad["rate"]) == (2, 2, 0, 25.0)
    assert (job["human"], job["unique"], job["automated"]) == (1, 1, 0)
    sections = {s["section"]: s for s in r["sections"]}
    assert sections["lead"]["human"] == 3 and sections["ads"]["human"] == 2 and sections["jobs"]["human"] == 1
    assert sections["articles"]["human"] == 0 and "unique" not in sections["lead"]
    assert [d["human"] for d in r["days"][:3]] == [3, 3, 0] and len(r["days"]) == 7
    assert r["rate"] == 75.0  # 6 readers (an estimate) per 8 delivered


def test_report_table_csv_and_html(sent, tmp_path):
    table = sent.run("report", SLUG)
    assert table.exit_code == 0
    # the send time as the editor's clock shows it, in the one form of the command line
    assert re.search(r"^  sent       \d{4}-\d\d-\d\d \d\d:\d\d CES?T$", table.output, re.M), table.output
    assert "+00:00" not in table.output
    assert "delivered  8" in table.output and "6 human, about 6 readers (75.0 per 100 delivered)" in table.output
    assert ("2 automated (1 HEAD requests, 1 from scanners and link previews by their user agent, 0 in bursts of "
            "many links within seconds), 1 repeated by one client within an hour") in table.output
    rows = list(csv.DictReader(io.StringIO(sent.run("report", SLUG, "--csv").stdout)))
    lead = next(row for row in rows if row["url"] == sent.links["lead"]["url"])
    assert (lead["human_clicks"], lead["unique_clicks_estimated"], lead["automated_clicks"]) == ("3", "3", "2")
    page = tmp_path / "bericht.html"
    assert sent.run("report", SLUG, "--html", page).exit_code == 0
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") == 2 and '<html lang="de">' in html
    assert not re.search(r"<script|<link\b|\bsrc=\"http|@import", html, re.I)  # no external assets
    assert "Auswertung" in html and "37,5" in html


def test_report_of_an_issue_without_counted_links_says_so(content):
    content.set_config("tracking", "clicks", "off")
    assert content.run("compose", "--date", SLUG).exit_code == 0
    result = content.run("report", SLUG)
    assert result.exit_code == 0 and "not counted for this issue" in result.output
    assert content.run("report", "2099-01-01").exit_code == 1


def test_stats_lines_and_trend(sent, tmp_path):
    result = sent.run("stats", "--last", "12")
    assert result.exit_code == 0, result.output
    assert re.search(re.escape(NUMBER) + r"\s+\S+\s+8\s+1\s+0\s+6\s+75\.0", result.output)
    assert "trend (oldest to newest)" in result.output
    lines = json.loads(sent.run("stats", "--json").stdout)
    assert [(x["slug"], x["delivered"], x["readers"]) for x in lines] == [(SLUG, 8, 6)]
    page = tmp_path / "entwicklung.html"
    assert sent.run("stats", "--html", page).exit_code == 0
    assert page.read_text(encoding="utf-8").count("<svg") == 4


def test_stats_without_sent_issues(composed):
    result = composed.run("stats")
    assert result.exit_code == 0 and "No sent issues yet" in result.output


@pytest.mark.browser
def test_beleg_is_german_html_and_a_pdf_with_the_ads_screenshot(sent, tmp_path):
    from browsing import CHROMIUM, unavailable

    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} does not exist")
    out = tmp_path / "belege"
    result = sent.run("report", SLUG, "--ad", "all", "--out", out, "--no-images")
    assert result.exit_code == 0, result.output
    pdfs, pages = sorted(out.glob("*.pdf")), sorted(out.glob("*.html"))
    assert len(pdfs) == len(pages) == 2
    ad = sent.links["ad"]
    page = next(p for p in pages if f"-anzeige-{ad['item_id']}-" in p.name).read_text(encoding="utf-8")
    assert "Anzeigenbeleg" in page and NUMBER in page and ad["label"] in page
    shot = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert shot and len(shot[1]) > 2000
    figures = re.findall(r'<div class="figure"><b>([^<]+)</b>([^<]+)</div>', page)
    assert ("8", "zugestellte E-Mails") in figures
    assert ("2", "Klicks auf die Anzeige") in figures and ("25,0", "Leser mit Klick je 100 zugestellte E-Mails") in figures
    assert page.count("Gezählt wurden") == 1
    pdf = next(p for p in pdfs if f"-anzeige-{ad['item_id']}-" in p.name).read_bytes()
    assert pdf.startswith(b"%PDF-") and b"/Subtype /Image" in pdf and len(pdf) > 10_000
    for made in pdfs:  # one ad, one page: the table, the ad as sent, the figures, the method
        assert len(re.findall(rb"/Type\s*/Page(?!s)", made.read_bytes())) == 1, made.name
    assert re.search(r"<th>Versand</th><td>\d{1,2}\. \w+ \d{4}, \d\d:\d\d Uhr</td>", page)
    assert not re.search(r"\d\d\.\d\d\.\d{4}", page)  # one form of a date, not "03.12.2026" beside it


def test_beleg_for_an_ad_not_in_the_issue_names_the_ads_it_has(sent, tmp_path):
    out = tmp_path / "belege"
    result = sent.run("report", SLUG, "--ad", "999", "--out", out)
    assert result.exit_code == 1
    assert "Ad '999' is not in issue" in result.output and "(or use --ad all)" in result.output
    assert not out.exists()


def test_click_map_puts_each_links_clicks_beside_it(sent):
    from newsletter.compose.personal import SAMPLE
    from newsletter.store import connect
    from newsletter.store.issues import get_issue
    from newsletter.web.view import make_view

    settings = sent.settings()
    with connect(settings) as db:
        view = make_view(db, settings, get_issue(db, SLUG), SAMPLE, clicks=True)
    lead = f'{BASE}/c/{sent.links["lead"]["code"]}'
    badges = re.findall(rf'<a\s[^>]*href="{re.escape(lead)}"[^>]*><span class="nl-clickmap"[^>]*>(\d+)</span>', view.html)
    assert badges == ["3", "3", "3"]  # image, headline, button
    assert "Klickkarte: 6 Klicks von Menschen, geschätzt 6 Leser (75,0 je 100 zugestellte E-Mails); 2 automatische" in view.html


def test_the_daily_chart_never_mixes_human_and_automated_figures():
    """The axis said 17 (human and automated) beside a bar labelled 7 (human)."""
    from newsletter.reports.charts import columns

    svg = str(columns([("3.12.", 7, 10), ("4.12.", 2, 0)], title="Klicks je Tag"))
    numbers = re.findall(r">([+]?\d+)</text>", svg)
    assert numbers == ["7", "+10", "2"], numbers


def test_the_report_says_why_requests_were_not_counted(sent, tmp_path):
    page = tmp_path / "bericht.html"
    assert sent.run("report", SLUG, "--html", page).exit_code == 0
    html = " ".join(page.read_text(encoding="utf-8").split())
    assert ("Nicht als Klick gezählt: 2 automatische Abrufe (1 HEAD-Anfragen, 1 von Sicherheitsscannern und "
            "Linkvorschauen, 0 in Serien vieler Links binnen Sekunden) und 1 Wiederholungen") in html
    assert re.search(r"versandt am \d{1,2}\. \w+ \d{4}, \d\d:\d\d Uhr", html)


def test_the_german_copy_avoids_the_phrases_an_editor_struck():
    """'je 100 Zugestellte', 'davon geschätzt verschiedene Leser', 'Knopf', 'Zeitleiste' and a
    4xx delay called 'Zurückgestellt' (the word of the editorial hold) were read aloud and struck."""
    from pathlib import Path

    root = Path(__file__).parent.parent
    sources = [*(root / "templates").rglob("*.j2"), *(root / "newsletter").rglob("*.py")]
    struck = re.compile(r"je 100 Zugestellte|verschiedene Leser|\bKnopf\b|Zeitleiste|Zurückgestellt \(4xx|"
                        r"wahrscheinlich Sie|geschätzt eindeutig")
    found = [f"{path.relative_to(root)}: {m.group(0)}" for path in sources
             for m in struck.finditer(path.read_text(encoding="utf-8"))]
    assert found == []
