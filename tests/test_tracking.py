"""Counted links ([tracking] clicks = "aggregate", on in the demo config): the rewrite at compose
time, the redirect and its counting in `serve`, the reports, and what is never stored."""

from __future__ import annotations

import email
import json
import re
import warnings
from datetime import datetime, time
from email import policy
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
from conftest import SLUG, day
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.web.app import create_app
from newsletter.web.clicks import BURST_LINKS, ClickCounter

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SECRET = "test-secret-0123456789abcdef"
BASE = "https://www.stadtmarketing-demo.de"
SHORT = re.compile(re.escape(BASE) + r"/c/([A-Za-z0-9_-]+)")
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
OTHER_BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15"


@pytest.fixture
def tracked(composed, monkeypatch):
    """The composed demo issue and a `serve` app (in-process) for its links."""
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    composed.http = TestClient(create_app(composed.settings()), base_url=BASE, client=("203.0.113.7", 50000))
    return composed


def links(project, issue_id: int = 1) -> list[dict]:
    return list(project.db().query("select * from links where issue_id = ? and position is not null order by position",
                                   [issue_id]))


def link_of(project, kind: str, section: str | None = None) -> dict:
    return next(r for r in links(project) if r["kind"] == kind and (section is None or r["section"] == section))


def click(project, code: str, agent: str = BROWSER, method: str = "GET", client=None):
    http = project.http if client is None else TestClient(project.http.app, base_url=BASE, client=client)
    return http.request(method, f"/c/{code}", headers={"user-agent": agent}, follow_redirects=False)


def repeats(project, link_id: int) -> int:
    return project.db().execute("select coalesce(sum(repeated), 0) from clicks where link_id = ?", [link_id]).fetchone()[0]


def counts(project, link_id: int) -> tuple[int, int, int]:
    row = project.db().execute("select coalesce(sum(human), 0), coalesce(sum(automated), 0),"
                               " coalesce(sum(unique_human), 0) from clicks where link_id = ?", [link_id]).fetchone()
    return tuple(row)


# --- compose: which links are counted --------------------------------------------------------

def test_content_links_become_short_links_and_the_readers_own_links_stay(composed):
    issue = composed.db()["issues"].get(1)
    lead = next(e for e in composed.db().query("select item_id from issue_items where section = 'lead'"))
    lead_url = composed.db()["articles"].get(lead["item_id"])["url"]
    assert lead_url not in issue["html"] and lead_url not in issue["text"]
    stored = {r["url"]: r for r in links(composed)}
    assert stored[lead_url]["kind"] == "article" and stored[lead_url]["section"] == "lead"
    short = f"{BASE}/c/{stored[lead_url]['code']}"
    assert issue["html"].count(f'href="{short}"') == 3 and short in issue["text"]
    kinds = {(r["kind"], r["section"]) for r in stored.values()}
    assert {("article", "articles"), ("job", "jobs"), ("ad", "ads"), ("logo", "header"), ("social", "footer")} <= kinds
    hrefs = re.findall(r'<a\s[^>]*href="([^"]+)"', issue["html"])
    uncounted = sorted({h for h in hrefs if not SHORT.fullmatch(h)})
    assert uncounted == [f"{BASE}/datenschutz", f"{BASE}/u/%%token%%", "mailto:redaktion@stadtmarketing-demo.de"]
    # one link per target, the same for every reader: no placeholder of a reader in it
    assert all("%%" not in r["code"] and len(r["code"]) == 12 for r in stored.values())
    assert len({r["code"] for r in stored.values()}) == len(stored)


def test_with_tracking_off_links_are_left_as_they_are(content):
    content.set_config("tracking", "clicks", "off")
    assert content.run("compose", "--date", SLUG).exit_code == 0
    issue = content.db()["issues"].get(1)
    assert "/c/" not in issue["html"] and "/c/" not in issue["text"]
    assert content.db().execute("select count(*) from links").fetchone()[0] == 0


def test_the_size_budget_counts_the_rewritten_links(composed):
    from email import message_from_bytes

    eml = (composed.root / "out" / SLUG / "issue.eml").read_bytes()
    html_part = [p for p in message_from_bytes(eml).walk() if p.get_content_type() == "text/html"][0]
    encoded = html_part.get_payload().encode("ascii")
    stored = composed.db()["issues"].get(1)["html_size"]
    assert SHORT.search(html_part.get_payload(decode=True).decode("utf-8"))
    original = sum(len(r["url"]) - len(f"{BASE}/c/{r['code']}") for r in links(composed))
    assert abs(original) > 500  # the short links change the size noticeably ...
    assert abs(stored - len(encoded)) < 100  # ... and the stored size is the rewritten part's


def test_recomposing_keeps_codes_and_retires_links_no_longer_in_the_issue(composed):
    first = {r["url"]: r["code"] for r in links(composed)}
    some_article = link_of(composed, "article", "articles")
    result = composed.run("compose", "--replace", "1", "--exclude", some_article["url"])
    assert result.exit_code == 0, result.output
    second = {r["url"]: r["code"] for r in links(composed)}
    assert some_article["url"] not in second
    assert all(first[url] == code for url, code in second.items())
    kept = composed.db().execute("select position from links where code = ?", [some_article["code"]]).fetchone()
    assert kept == (None,)  # the row stays (a test copy may carry it), out of the issue's report


# --- serve: redirect and counting ---------------------------------------------------------------

def test_a_click_redirects_to_the_target_and_counts_as_human(tracked):
    lead = link_of(tracked, "article", "lead")
    answer = click(tracked, lead["code"])
    assert answer.status_code == 302 and answer.headers["location"] == lead["url"]
    assert answer.headers["cache-control"] == "no-store" and answer.headers["referrer-policy"] == "no-referrer"
    assert counts(tracked, lead["id"]) == (1, 0, 1)
    click(tracked, lead["code"])
    assert counts(tracked, lead["id"]) == (1, 0, 1)  # the same reader again within the hour: a repeat
    assert repeats(tracked, lead["id"]) == 1


@pytest.mark.parametrize("agent", [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) BingPreview/1.0b",
    "Mozilla/5.0 (compatible; Proofpoint URL Defense)",
    "Barracuda Sentinel (EE)",
    "Mozilla/5.0 (compatible; SafeLinks; +https://aka.ms/safelinks)",
    "facebookexternalhit/1.1",
    "python-requests/2.32.3",
    "",
])
def test_scanners_and_previews_count_as_automated(tracked, agent):
    ad = link_of(tracked, "ad")
    answer = click(tracked, ad["code"], agent=agent)
    assert answer.status_code == 302 and answer.headers["location"] == ad["url"]
    assert counts(tracked, ad["id"]) == (0, 1, 0)


def test_head_requests_count_as_automated(tracked):
    job = link_of(tracked, "job")
    answer = click(tracked, job["code"], method="HEAD")
    assert answer.status_code == 302
    assert counts(tracked, job["id"]) == (0, 1, 0)


def test_configured_agents_count_as_automated(composed, monkeypatch):
    composed.set_config("tracking", "automated_agents", ["Hauseigener-Pruefer"])
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    composed.http = TestClient(create_app(composed.settings()), base_url=BASE)
    lead = link_of(composed, "article", "lead")
    click(composed, lead["code"], agent="Hauseigener-Pruefer/2.0")
    assert counts(composed, lead["id"]) == (0, 1, 0)


def test_one_client_opening_many_links_at_once_is_a_scanner_and_its_earlier_clicks_move(tracked, fake_clock):
    chosen = links(tracked)[:BURST_LINKS]
    for link in chosen[:-1]:
        click(tracked, link["code"])
        fake_clock.advance(seconds=0.2)
    assert [counts(tracked, link["id"]) for link in chosen[:-1]] == [(1, 0, 1)] * (BURST_LINKS - 1)
    click(tracked, chosen[-1]["code"])
    assert [counts(tracked, link["id"]) for link in chosen] == [(0, 1, 0)] * BURST_LINKS
    assert tracked.db().execute("select coalesce(sum(unique_human), 0) from issue_clicks").fetchone()[0] == 0
    # a reader on another machine is not affected, and the same client later is a reader again
    click(tracked, chosen[0]["code"], agent=OTHER_BROWSER, client=("198.51.100.9", 40000))
    assert counts(tracked, chosen[0]["id"]) == (1, 1, 1)
    fake_clock.advance(seconds=10)
    click(tracked, chosen[1]["code"])
    assert counts(tracked, chosen[1]["id"]) == (1, 1, 1)


def test_a_reader_reading_at_leisure_is_no_burst(tracked, fake_clock):
    chosen = links(tracked)[:BURST_LINKS + 1]
    for link in chosen:
        click(tracked, link["code"])
        fake_clock.advance(minutes=1)
    assert [counts(tracked, link["id"]) for link in chosen] == [(1, 0, 1)] * len(chosen)


def test_unique_clicks_start_over_each_day(tracked, fake_clock):
    lead = link_of(tracked, "article", "lead")
    click(tracked, lead["code"])
    fake_clock.advance(days=1)
    click(tracked, lead["code"])
    assert counts(tracked, lead["id"]) == (2, 0, 2)  # the key rotated: yesterday's reader is unknown today
    hours = [r[0] for r in tracked.db().execute("select hour from clicks where link_id = ? order by hour", [lead["id"]])]
    assert len(hours) == 2


@pytest.mark.parametrize("change", [
    lambda code: code[:-1] + ("A" if code[-1] != "A" else "B"),
    lambda code: code[:-1],
    lambda code: code + "x",
    lambda code: "https%3A%2F%2Fevil.example",
    lambda code: "..%2F..%2Fu%2Fabc",
])
def test_a_changed_link_is_a_plain_404_and_never_redirects(tracked, change):
    lead = link_of(tracked, "article", "lead")
    answer = click(tracked, change(lead["code"]))
    assert answer.status_code == 404 and "location" not in answer.headers
    assert "nicht gefunden" in answer.text  # "Link nicht gefunden", or "Seite" for what is no code at all
    assert tracked.db().execute("select count(*) from clicks").fetchone()[0] == 0


def test_a_forged_row_with_a_code_that_was_not_signed_does_not_redirect(tracked):
    """A code must be the MAC of its issue and target: a row put into the table by other means
    (or a target changed in place) is refused."""
    lead = link_of(tracked, "article", "lead")
    tracked.db().execute("update links set url = ? where id = ?", ["https://evil.example/", lead["id"]])
    tracked.db().conn.commit()
    answer = click(tracked, lead["code"])
    assert answer.status_code == 404 and "location" not in answer.headers


def test_links_keep_working_when_the_issue_rows_are_gone(tracked):
    lead = link_of(tracked, "article", "lead")
    db = tracked.db()
    with db.conn:
        db.execute("pragma foreign_keys = off")
        for table in ("issue_items", "deliveries", "check_results", "issues"):
            db.execute(f"delete from {table}")
    answer = click(tracked, lead["code"])
    assert answer.status_code == 302 and answer.headers["location"] == lead["url"]


# --- what is stored: nothing about a reader -----------------------------------------------------

def test_the_click_tables_hold_no_address_token_subscriber_or_client(tracked, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "file")
    from test_send import add_readers

    add_readers(tracked)
    assert tracked.run("send", "1", "--yes").exit_code == 0
    sent = [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in (tracked.root / "outbox").glob("*.eml")]
    for number, message in enumerate(sent, start=1):
        code = SHORT.search(message.get_body(("html",)).get_content())[1]
        click(tracked, code, client=(f"198.51.100.{number}", 40000))
    db = tracked.db()
    readers = [(r["id"], r["email"]) for r in db.query("select id, email from subscribers")]
    tokens = {re.search(r"/u/([^>\s]+)", m["List-Unsubscribe"])[1] for m in sent}
    for table in ("links", "clicks", "issue_clicks", "keys"):
        columns = [c.name for c in db[table].columns]
        assert not [c for c in columns if re.search(r"subscriber|email|ip|agent|token|client|hash", c)], (table, columns)
        dump = json.dumps(list(db.query(f"select * from {table}")), default=str)
        for _sid, address in readers:
            assert address not in dump
        assert not any(token in dump for token in tokens)
        assert not re.search(r"198\.51\.100\.\d", dump) and "Firefox" not in dump
    assert db.execute("select sum(human) from clicks").fetchone()[0] == len(sent)


def test_forget_has_nothing_to_erase_in_the_click_tables(tracked):
    from test_send import add_readers

    add_readers(tracked)
    before = {t: list(tracked.db().query(f"select * from {t}")) for t in ("links", "clicks", "issue_clicks")}
    assert tracked.run("subscribers", "forget", "erika.muster@example.org").exit_code == 0
    assert {t: list(tracked.db().query(f"select * from {t}")) for t in before} == before


# --- the counter on its own ------------------------------------------------------------------------

def holds(value, secrets: tuple[str, ...], seen: set | None = None) -> bool:
    """Whether `value` keeps any of `secrets` anywhere in it (its attributes, containers, keys),
    as text or bytes."""
    seen = seen if seen is not None else set()
    if id(value) in seen:
        return False
    seen.add(id(value))
    if isinstance(value, str):
        return any(s in value for s in secrets)
    if isinstance(value, (bytes, bytearray)):
        return any(s.encode() in value for s in secrets)
    if isinstance(value, dict):
        return any(holds(k, secrets, seen) or holds(v, secrets, seen) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)) or type(value).__name__ == "deque":
        return any(holds(v, secrets, seen) for v in value)
    if hasattr(value, "__dict__"):
        return holds(vars(value), secrets, seen)
    return False

def test_the_counter_never_keeps_an_address_and_changes_its_key_at_midnight(fake_clock):
    fake_clock.set(datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("Europe/Berlin")))
    counter = ClickCounter("Europe/Berlin")
    link = {"id": 1, "issue_id": 1}
    counter.count(link, "GET", "192.0.2.1", BROWSER)
    key = counter._key
    assert not holds(counter, ("192.0.2.1", BROWSER))
    fake_clock.advance(hours=1)  # 10:00 in Berlin: the same day
    counter.count(link, "GET", "192.0.2.1", BROWSER)
    assert counter._key == key
    fake_clock.advance(hours=15)  # past midnight in Berlin
    counter.count(link, "GET", "192.0.2.1", BROWSER)
    assert counter._key != key


# --- check ----------------------------------------------------------------------------------------

def check_results(project) -> dict[str, dict]:
    result = project.run("check", SLUG, "--json", "--no-spamassassin", "--no-contrast")
    return {r["name"]: r for r in json.loads(result.stdout)["results"]}


def test_check_passes_counted_links_and_fails_a_short_link_it_does_not_know(composed):
    found = check_results(composed)
    assert found["tracking.links"]["status"] == "pass" and "newsletter serve" in found["tracking.links"]["detail"]
    assert found["text.links"]["status"] == "pass"
    db = composed.db()
    html = db["issues"].get(1)["html"].replace("</body>", f'<a href="{BASE}/c/AAAAAAAAAAAA">x</a></body>', 1)
    db["issues"].update(1, {"html": html})
    found = check_results(composed)
    assert found["tracking.links"]["status"] == "fail" and "AAAAAAAAAAAA" in found["tracking.links"]["detail"]


def test_check_warns_when_tracking_is_on_but_the_issue_was_composed_without(content):
    content.set_config("tracking", "clicks", "off")
    assert content.run("compose", "--date", SLUG).exit_code == 0
    content.set_config("tracking", "clicks", "aggregate")
    found = check_results(content)
    assert found["tracking.links"]["status"] == "warn" and "re-compose" in found["tracking.links"]["detail"]


# --- no open redirect, whatever the issue's links are ------------------------------------------------

URL_PART = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x24F, blacklist_characters='"<>\\^`{|}#%'),
                   min_size=1, max_size=30)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(paths=st.lists(URL_PART, min_size=1, max_size=6, unique=True), tamper=st.integers(0, 11),
       replacement=st.sampled_from("AZaz09-_"))
def test_no_rewritten_link_redirects_anywhere_but_its_own_target(tracked, paths, tamper, replacement):
    from newsletter.compose.links import rewrite_links
    from newsletter.compose.tracking import LinkRewriter
    from newsletter.store.clicks import link_key, save_links

    targets = [f"https://ziel.example/{p}" for p in paths]
    page = "".join(f'<p><a href="{t}">Link {i}</a></p>' for i, t in enumerate(targets))
    db = tracked.store()
    rewriter = LinkRewriter(BASE, link_key(db), "eigenschaft", {})
    html, _ = rewrite_links(page, "", rewriter)
    save_links(db, 99, "eigenschaft", rewriter.links.values())
    db.close()
    pairs = list(zip(re.findall(r'href="([^"]+)"', html), targets, strict=False))
    assert len(pairs) == len(targets)
    for short, target in pairs:
        code = SHORT.fullmatch(short)[1]
        answer = click(tracked, code, agent="")
        # non-ASCII is percent-encoded in the Location header, which is ASCII
        assert answer.status_code == 302 and unquote(answer.headers["location"]) == target
        changed = code[:tamper] + replacement + code[tamper + 1:]
        if changed != code:
            wrong = click(tracked, changed, agent="")
            assert wrong.status_code == 404 and "location" not in wrong.headers


def test_a_click_still_redirects_when_the_counts_cannot_be_written(tracked, monkeypatch):
    import sqlite3

    lead = link_of(tracked, "article", "lead")
    click(tracked, lead["code"])  # the link is known now

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr("newsletter.web.clicks.add_counts", locked)
    answer = click(tracked, lead["code"])
    assert answer.status_code == 302 and answer.headers["location"] == lead["url"]


# --- figures that cannot be true ----------------------------------------------------------------

@pytest.fixture
def delivered(tracked, monkeypatch, fake_clock):
    """The issue sent (file transport) to the five readers of test_send, at 09:00 the day after
    it was composed: the tests below click for an hour and count per day, so they must not
    cross midnight (CI runs the suite at 23:30 on a leap day too)."""
    from test_send import add_readers

    fake_clock.set(datetime.combine(day(1), time(9, 0), tzinfo=ZoneInfo("Europe/Berlin")))
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "file")
    add_readers(tracked)
    assert tracked.run("send", "1", "--yes").exit_code == 0
    return tracked


def report_json(project) -> dict:
    result = project.run("report", "1", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_one_machine_clicking_one_link_all_day_is_one_click(delivered, fake_clock):
    lead = link_of(delivered, "article", "lead")
    for _ in range(300):
        click(delivered, lead["code"])
        fake_clock.advance(seconds=13)  # about an hour in all, never a burst
    human, automated, unique = counts(delivered, lead["id"])
    assert (human, automated, unique) == (2, 0, 1)  # once, once more after the hour; one reader
    assert repeats(delivered, lead["id"]) == 298


def test_a_new_user_agent_per_request_is_capped_and_flagged_not_shown_as_readers(delivered, fake_clock):
    lead = link_of(delivered, "article", "lead")
    for n in range(400):
        click(delivered, lead["code"], agent=f"{BROWSER} build/{n}")
        fake_clock.advance(seconds=6)
    human, _, unique = counts(delivered, lead["id"])
    assert human == unique == 20 and repeats(delivered, lead["id"]) == 380  # CLIENT_LIMIT a day
    r = report_json(delivered)
    assert r["readers_estimated"] == 20 and r["readers"] == r["delivered"] == 5
    assert r["rate"] is None and not r["readers_plausible"]
    assert {f["kind"] for f in r["flags"]} == {"readers", "links"}
    by_url = {link["url"]: link for link in r["links"]}
    assert by_url[lead["url"]]["implausible"] and by_url[lead["url"]]["rate"] is None
    assert by_url[lead["url"]]["unique"] <= 5
    table = delivered.run("report", "1").output
    assert "readers not estimated" in table and "is not plausible" in table and "(not plausible)" in table
    assert "per 100 delivered" not in table.split("not counted")[0]


def test_sections_never_add_up_per_link_uniques(delivered, fake_clock):
    ads = [link for link in links(delivered) if link["section"] == "ads"]
    assert len(ads) >= 2
    for number in range(3):
        for ad in ads:
            click(delivered, ad["code"], client=(f"192.0.2.{number + 1}", 40000))
            fake_clock.advance(minutes=2)
    r = report_json(delivered)
    [section] = [s for s in r["sections"] if s["section"] == "ads"]
    assert "unique" not in section and section["human"] == 3 * len(ads)
    assert r["readers"] == 3


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 2), st.sampled_from(["GET", "HEAD"]),
                          st.integers(0, 4000)), max_size=40))
def test_the_counts_add_up_and_uniques_never_exceed_clicks(fake_clock, clicks):
    """Every request lands in exactly one of human, repeated, automated; uniques never exceed
    the human clicks, whatever the order of clients, links and pauses."""
    counter = ClickCounter("Europe/Berlin")
    totals: dict[str, int] = {}
    readers = 0
    for client, agent, link_id, method, pause in clicks:
        deltas, issues = counter.count({"id": link_id, "issue_id": 1}, method, f"192.0.2.{client}",
                                       f"{BROWSER} {agent}")
        for delta in deltas.values():
            for column, n in delta.items():
                totals[column] = totals.get(column, 0) + n
        readers += sum(issues.values())
        fake_clock.advance(seconds=pause)
    human, repeated, automated = (totals.get(c, 0) for c in ("human", "repeated", "automated"))
    assert human + repeated + automated == len(clicks)
    assert automated == sum(totals.get(c, 0) for c in ("auto_head", "auto_scanner", "auto_burst"))
    assert 0 <= totals.get("unique_human", 0) <= human and 0 <= readers <= human
