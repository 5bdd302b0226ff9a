"""`newsletter compose`: selection rules, drafts, the Impressum and size guards, outputs."""

from __future__ import annotations

import email
import json
import re
from email import policy

import pytest
from conftest import NUMBER, SLUG, day

DATE = SLUG


def items(project, slug=SLUG):
    from newsletter.store.issues import get_issue, issue_items

    db = project.store()
    issue = get_issue(db, slug)
    return issue, issue_items(db, issue.id)


def section(entries, name):
    return [e["item"] for e in entries if e["section"] == name]


def test_default_selection_follows_the_rules(composed):
    issue, entries = items(composed)
    lead = section(entries, "lead")[0]
    articles = section(entries, "articles")
    everything = [lead] + articles
    # window: the last 7 days before the issue date
    assert all(day(-7).isoformat() <= a["published"][:10] <= DATE for a in everything)
    # lead: the newest article with an image; the others newest first
    assert lead["image"]
    newer_with_image = [a for a in articles if a["image"] and a["published"] > lead["published"]]
    assert newer_with_image == []
    assert [a["published"] for a in articles] == sorted((a["published"] for a in articles), reverse=True)
    # job ads: deadline on/after the issue date, or no deadline and recent
    jobs = section(entries, "jobs")
    assert jobs and all(j["deadline"] is None or j["deadline"] >= DATE for j in jobs)
    assert len(jobs) == 6
    # ads: only those running on the issue date
    ads = section(entries, "ads")
    assert len(ads) == 2 and all(a["starts"] <= DATE <= a["ends"] for a in ads)
    assert issue.status == "draft" and issue.number == NUMBER


def test_compose_prints_summary_and_writes_outputs(content):
    result = content.run("compose", "--date", DATE)
    assert result.exit_code == 0, result.output
    assert "lead 1, articles 10, job ads 6 (6 neu), ads 2" in result.output
    assert "HTML part" in result.output and "of 102,000 bytes" in result.output
    folder = content.root / "out" / SLUG
    assert sorted(p.name for p in folder.iterdir()) == ["issue.eml", "issue.html", "issue.mjml", "issue.txt"]


def test_items_of_a_sent_issue_are_not_repeated_and_neu_marks_new_jobs(composed):
    db = composed.db()
    db["issues"].update(1, {"status": "sent", "sent_at": f"{day(-4)}T07:00:00+00:00"})
    db.conn.commit()
    result = composed.run("compose", "--date", day(2).isoformat(), "--since", "14d")
    assert result.exit_code == 0, result.output
    _, first = items(composed, SLUG)
    _, second = items(composed, day(2).isoformat())
    first_articles = {e["item_id"] for e in first if e["kind"] == "article"}
    assert not first_articles & {e["item_id"] for e in second if e["kind"] == "article"}
    assert all(not e["is_new"] for e in second if e["kind"] == "job")


def test_window_defaults_to_since_last_sent_issue(composed):
    db = composed.db()
    db["issues"].update(1, {"status": "sent", "sent_at": f"{day(-3)}T07:00:00+00:00"})
    db.conn.commit()
    # Everything since then went out with issue 1, so the window is empty:
    result = composed.run("compose", "--date", DATE)
    assert result.exit_code == 1
    assert f"between {day(-3)} and {DATE} that were not already sent" in result.output


def test_lead_exclude_only_category(content):
    db = content.db()
    articles = list(db["articles"].rows_where(order_by="published"))
    oldest = articles[0]
    result = content.run("compose", "--date", DATE, "--since", "30d", "--lead", oldest["url"],
                         "--exclude", str(articles[-1]["id"]))
    assert result.exit_code == 0, result.output
    _, entries = items(content)
    assert section(entries, "lead")[0]["id"] == oldest["id"]
    assert articles[-1]["id"] not in {e["item_id"] for e in entries if e["kind"] == "article"}

    result = content.run("compose", "--date", DATE, "--another", "--only", str(articles[3]["id"]), "--only", str(articles[5]["id"]))
    _, entries = items(content, f"{SLUG}-2")
    assert {e["item_id"] for e in entries if e["kind"] == "article"} == {articles[3]["id"], articles[5]["id"]}

    content.run("compose", "--date", DATE, "--since", "30d", "--another", "--category", "tourismus")
    _, entries = items(content, f"{SLUG}-3")
    assert {e["item"]["category"] for e in entries if e["kind"] == "article"} == {"Tourismus"}


def test_max_articles_is_configurable(content):
    content.set_config("compose", "max_articles", 3)
    content.run("compose", "--date", DATE, "--since", "30d")
    _, entries = items(content)
    assert len([e for e in entries if e["kind"] == "article"]) == 3


def test_empty_selection_is_an_error_not_an_empty_mail(content):
    result = content.run("compose", "--date", day(190).isoformat())
    assert result.exit_code == 1
    assert f"No articles published between {day(183)} and {day(190)}" in result.output
    assert "--since" in result.output
    assert list(content.db()["issues"].rows) == []


def test_replace_recomposes_a_draft_and_sent_issues_are_frozen(composed):
    result = composed.run("compose", "--date", DATE, "--replace", SLUG, "--subject", "Neu: Betreff")
    assert result.exit_code == 0, result.output
    assert f"Re-composed draft {SLUG}" in result.output
    issue, _ = items(composed)
    assert issue.subject == "Neu: Betreff" and issue.number == NUMBER
    assert len(list(composed.db()["issues"].rows)) == 1

    db = composed.db()
    db["issues"].update(1, {"status": "sent", "sent_at": f"{DATE}T08:00:00+00:00"})
    db.conn.commit()
    refused = composed.run("compose", "--date", DATE, "--replace", "1")
    assert refused.exit_code == 1
    assert "is sent and can no longer be changed" in refused.output


def test_incomplete_impressum_is_refused_naming_the_fields(content):
    content.set_config("impressum", "vat_id", "")
    content.set_config("impressum", "phone", "")
    result = content.run("compose", "--date", DATE)
    assert result.exit_code == 1
    assert "Impressum is incomplete: phone, vat_id missing" in result.output


def test_size_budget_refuses_unless_allow_clipping(content):
    content.set_config("compose", "size_budget", 40000)
    refused = content.run("compose", "--date", DATE)
    assert refused.exit_code == 1 and "over the 40,000-byte budget" in refused.output
    assert list(content.db()["issues"].rows) == []
    allowed = content.run("compose", "--date", DATE, "--allow-clipping")
    assert allowed.exit_code == 0
    assert "Gmail will clip it" in allowed.output


def test_size_warning_at_ninety_percent(composed):
    size = items(composed)[0].html_size
    composed.set_config("compose", "size_budget", int(size / 0.95))
    result = composed.run("compose", "--replace", SLUG)
    assert result.exit_code == 0 and "Warning: HTML part uses 95%" in result.output


def test_intro_file_becomes_the_editorial(content):
    intro = content.write("intro.txt", "Gute Nachrichten & neue Ideen.\n\nzweiter <Absatz>.")
    content.run("compose", "--date", DATE, "--intro", intro)
    html = (content.root / "out" / SLUG / "issue.html").read_text()
    text = (content.root / "out" / SLUG / "issue.txt").read_text()
    assert "Gute Nachrichten &amp; neue Ideen." in html and "zweiter &lt;Absatz&gt;." in html
    assert "zweiter <Absatz>." in text


@pytest.mark.parametrize("name,greeting", [("intro.txt", "Liebe Leserinnen und Leser,\n\n"),
                                           ("intro.html", "<p>Liebe Leserinnen und Leser,</p>\n")])
def test_an_editorial_greeting_gives_way_to_the_personal_salutation(content, name, greeting):
    body = "<p>Der erste Absatz.</p>" if name.endswith(".html") else "Der erste Absatz."
    result = content.run("compose", "--date", DATE, "--intro", content.write(name, greeting + body))
    assert result.exit_code == 0 and "Left out the editorial's greeting 'Liebe Leserinnen und Leser,'" in result.output
    text = (content.root / "out" / SLUG / "issue.txt").read_text()
    assert "Sehr geehrte Frau Dr. Muster,\n\nDer erste Absatz." in text and "Liebe Leserinnen" not in text


def test_issues_list_show_and_export(composed, tmp_path):
    listed = composed.run("issues", "list")
    assert SLUG in listed.output and "draft" in listed.output
    shown = composed.run("issues", "show", SLUG)
    assert "[neu]" in shown.output
    headings = [line[:-1] for line in shown.output.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert headings == ["lead", "articles", "jobs", "ads", "timeline"]  # sections in the issue's order
    assert re.search(r"^  \S+ \S+ \S+  composed by \S+: \d+ items$", shown.output, re.M)
    eml = composed.run("export", "1", "--format", "eml")
    message = email.message_from_bytes(eml.stdout_bytes, policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    out = tmp_path / "x.txt"
    assert composed.run("export", SLUG, "-f", "txt", "-o", out).exit_code == 0
    assert "Sehr geehrte Frau Dr. Muster," in out.read_text()
    assert composed.run("export", "1", "-f", "pdf").exit_code == 2


def test_unknown_issue_is_one_line_with_the_fix(composed):
    result = composed.run("issues", "show", "2099-01-01")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: No issue '2099-01-01' - see 'newsletter issues list' for ids and slugs"


def test_list_as_json(content):
    result = content.run("articles", "list", "--json", "--category", "Tourismus")
    assert {r["category"] for r in json.loads(result.stdout)} == {"Tourismus"}


def test_full_issue_at_configured_maximum_stays_under_the_clipping_budget(content):
    """12 articles, 10 job ads, 2 ads of demo content: the encoded HTML part < 102,000 bytes."""
    db = content.db()
    jobs = list(db["jobs"].rows)
    extra = [{**{k: v for k, v in j.items() if k not in ("id", "created_at", "updated_at")},
              "url": j["url"] + "-2", "deadline": day(68).isoformat(), "published": day(-4).isoformat()} for j in jobs]
    content.run("import", content.write("jobs.json", json.dumps(extra)), "--kind", "job")
    result = content.run("compose", "--date", DATE, "--since", "30d",
                         "--intro", content.write("intro.txt", "Ein Editorial. " * 30))
    assert result.exit_code == 0, result.output
    assert "articles 11, job ads 10" in result.output and "ads 2" in result.output
    issue, _ = items(content)
    assert issue.html_size < 102_000


def test_replace_keeps_the_drafts_date_and_window_unless_new_ones_are_given(content, fake_clock):
    first = content.run("compose", "--date", day(-2).isoformat(), "--since", "14d", "--number", NUMBER)
    assert first.exit_code == 0, first.output
    issue, entries = items(content, day(-2).isoformat())
    articles = sorted(e["item_id"] for e in entries if e["kind"] == "article")
    fake_clock.advance(days=3)  # the editor comes back to the draft later
    again = content.run("compose", "--replace", issue.slug)
    assert again.exit_code == 0, again.output
    replaced, entries = items(content, issue.slug)
    assert (replaced.issue_date, replaced.window_from, replaced.window_to) == \
        (issue.issue_date, issue.window_from, issue.window_to)
    assert sorted(e["item_id"] for e in entries if e["kind"] == "article") == articles
    moved = content.run("compose", "--replace", issue.slug, "--date", day(0).isoformat())
    assert moved.exit_code == 0 and items(content, issue.slug)[0].issue_date == day(0).isoformat()


def test_a_new_lead_renews_the_subject_and_preheader_it_made_but_not_the_editors(composed):
    issue, entries = items(composed)
    other = next(e["item"] for e in entries if e["section"] == "articles")
    result = composed.run("compose", "--replace", SLUG, "--lead", str(other["id"]))
    assert result.exit_code == 0, result.output
    renewed, _ = items(composed)
    assert renewed.subject != issue.subject and other["title"].split(": ")[0] in renewed.subject
    assert renewed.preheader != issue.preheader
    composed.run("compose", "--replace", SLUG, "--subject", "Unser Betreff", "--preheader", "Unser Vorspann")
    back = composed.run("compose", "--replace", SLUG, "--lead", str(issue_lead(issue, entries)["id"]))
    assert back.exit_code == 0
    kept, _ = items(composed)
    assert (kept.subject, kept.preheader) == ("Unser Betreff", "Unser Vorspann")


def issue_lead(issue, entries) -> dict:
    return next(e["item"] for e in entries if e["section"] == "lead")


def test_the_default_subject_fits_78_characters(content):
    long_title = "Wie Innenstädte den Leerstand füllen: Zwischennutzung, Pop-up-Läden und neue Wohnformen im Test"
    content.write("lang.json", json.dumps([{"url": "https://www.stadtmarketing-demo.de/lang", "title": long_title,
                                           "published": DATE, "image": "https://www.stadtmarketing-demo.de/l.jpg"}]))
    assert content.run("import", "lang.json").exit_code == 0
    result = content.run("compose", "--date", DATE, "--number", NUMBER, "--lead", "https://www.stadtmarketing-demo.de/lang")
    assert result.exit_code == 0, result.output
    subject = items(content)[0].subject
    assert subject == f"Stadtmarketing-Brief {NUMBER} – Wie Innenstädte den Leerstand füllen" and len(subject) <= 78


def test_a_second_compose_for_the_same_day_is_refused_and_names_the_draft(composed):
    """Two drafts of one day would mail every reader the same articles twice."""
    again = composed.run("compose", "--date", DATE)
    assert again.exit_code == 1
    assert again.output.strip() == (
        f"Error: Issue {SLUG} (id 1) is already a draft issue for {DATE} - re-compose it with "
        f"'newsletter compose --replace {SLUG}', or pass --another to compose a second issue for the same day")
    assert composed.db().execute("select count(*) from issues").fetchone()[0] == 1
    assert composed.run("compose", "--date", DATE).exit_code == 1  # without a date: today, the same
    replaced = composed.run("compose", "--replace", SLUG)
    assert replaced.exit_code == 0 and "Re-composed draft" in replaced.output
    second = composed.run("compose", "--date", DATE, "--another", "--subject", "Sonderausgabe")
    assert second.exit_code == 0 and f"draft {SLUG}-2" in second.output


def test_an_issue_that_is_being_sent_blocks_a_second_one_that_day(composed):
    db = composed.db()
    with db.conn:
        db.execute("update issues set status = 'sending' where id = 1")
    again = composed.run("compose", "--date", DATE)
    assert again.exit_code == 1 and f"is being sent - finish it with 'newsletter send {SLUG}'" in again.output
    # an issue being sent has reached some readers: its articles count as used
    other = composed.run("compose", "--date", day(1).isoformat(), "--since", "14d")
    assert other.exit_code == 0, other.output
    _, first = items(composed, SLUG)
    _, second = items(composed, day(1).isoformat())
    assert not {e["item_id"] for e in first if e["kind"] == "article"} & \
        {e["item_id"] for e in second if e["kind"] == "article"}


def test_an_impressum_without_register_or_vat_id_composes_and_leaves_them_out(content):
    """A Verein, a municipality or a small firm has no VAT ID or register entry; § 5 DDG asks for
    them only where they exist."""
    for key in ("vat_id", "register_court", "register_number", "legal_form"):
        content.set_config("impressum", key, False)
    content.set_config("impressum", "managing_directors", ["Erika Beispiel"])
    content.set_config("impressum", "representatives_label", "Vorstand")
    result = content.run("compose", "--date", DATE)
    assert result.exit_code == 0, result.output
    issue, _ = items(content)
    text = issue.text
    assert "USt-IdNr." not in text and "Registergericht" not in text and "Vorstand: Erika Beispiel" in text
    assert "USt-IdNr." not in issue.html and "Registergericht" not in issue.html
    assert "Vorstand: Erika Beispiel" in issue.html and "False" not in text
    check = content.run("check", DATE, "--no-spamassassin")
    assert check.exit_code == 0 and "impressum.complete" in check.output, check.output
    content.set_config("impressum", "vat_id", "")  # empty is still an error
    refused = content.run("compose", "--replace", DATE)
    assert refused.exit_code == 1 and "Impressum is incomplete: vat_id missing" in refused.output
    content.set_config("impressum", "vat_id", False)
    content.set_config("impressum", "register_number", "VR 123")
    half = content.run("compose", "--replace", DATE)
    assert half.exit_code == 1 and "register_court and register_number go together" in half.output
