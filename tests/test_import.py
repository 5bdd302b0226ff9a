"""`newsletter import`: formats, upsert by URL, validation with row numbers, sanitising."""

from __future__ import annotations

import json

import pytest
from conftest import day

ARTICLE = {
    "url": "https://www.example.de/artikel/eins",
    "title": "Innenstadt im Wandel",
    "teaser": "Ein <strong>kurzer</strong> Anriss.",
    "author": "Erika Beispiel",
    "published": "2026-11-20",
    "category": "Innenstadt",
}


def rows(db, table):
    return list(db[table].rows)


def test_json_array_import_then_same_file_again_changes_nothing(project):
    path = project.write("a.json", json.dumps([ARTICLE, {**ARTICLE, "url": ARTICLE["url"] + "-2"}]))
    first = project.run("import", path)
    assert first.exit_code == 0, first.output
    assert "2 new, 0 updated, 0 unchanged, 0 rejected" in first.output
    before = rows(project.db(), "articles")
    again = project.run("import", path)
    assert "0 new, 0 updated, 2 unchanged" in again.output
    assert rows(project.db(), "articles") == before


def test_edited_item_is_updated(project):
    project.run("import", project.write("a.json", json.dumps([ARTICLE])))
    edited = project.run("import", project.write("b.json", json.dumps([{**ARTICLE, "title": "Neuer Titel"}])))
    assert "0 new, 1 updated" in edited.output
    assert rows(project.db(), "articles")[0]["title"] == "Neuer Titel"


def test_json_lines(project):
    lines = "\n".join(json.dumps({**ARTICLE, "url": f"{ARTICLE['url']}-{i}"}) for i in range(3))
    result = project.run("import", project.write("a.jsonl", lines + "\n"))
    assert "3 new" in result.output


def test_csv_with_bom_and_semicolons_becomes_job_ads(project):
    csv_text = (
        "url;title;employer;location;employment;term;deadline;published\n"
        "https://www.example.de/stellen/1;Citymanager*in (m/w/d);Stadt Musterstadt;Musterstadt;"
        "Vollzeit;befristet auf 3 Jahre;12.05.2027;2026-11-01\n"
    )
    result = project.run("import", project.write("jobs.csv", b"\xef\xbb\xbf" + csv_text.encode()))
    assert result.exit_code == 0, result.output
    assert "(jobs): 1 new" in result.output
    job = rows(project.db(), "jobs")[0]
    assert job["deadline"] == "2027-05-12"
    assert job["employer"] == "Stadt Musterstadt"


def test_csv_from_german_excel_is_recognised_and_read_with_its_encoding(project):
    data = "url;title\nhttps://www.example.de/a;„Städte“ – 5 €\n".encode("cp1252")
    path = project.write("excel.csv", data)
    result = project.run("import", path)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "Windows-1252" in result.output and "line 2" in result.output and "--encoding cp1252" in result.output
    assert rows(project.db(), "articles") == []
    assert project.run("import", path, "--encoding", "cp1252").exit_code == 0
    assert rows(project.db(), "articles")[0]["title"] == "„Städte“ – 5 €"


def test_bad_row_rejects_whole_file_with_row_and_field(project):
    good = {**ARTICLE}
    bad = {**ARTICLE, "url": ARTICLE["url"] + "-x", "published": "31.02.2026"}
    result = project.run("import", project.write("a.json", json.dumps([good, bad])))
    assert result.exit_code == 1
    assert "row 2, field published" in result.output
    assert "nothing imported" in result.output
    assert rows(project.db(), "articles") == []


def test_skip_invalid_imports_the_valid_rows(project):
    data = [ARTICLE, {"url": "https://www.example.de/ohne-titel"}, {**ARTICLE, "url": "http://insecure.example.de/"}]
    result = project.run("import", "--skip-invalid", project.write("a.json", json.dumps(data)))
    assert result.exit_code == 0, result.output
    assert "row 2, field title: missing" in result.output
    assert "row 3, field url" in result.output and "https" in result.output
    assert "1 new, 0 updated, 0 unchanged, 2 rejected" in result.output


def test_csv_row_numbers_are_spreadsheet_rows(project):
    text = "url,title,published\nhttps://www.example.de/a,A,2026-11-01\nhttps://www.example.de/b,B,gestern\n"
    result = project.run("import", project.write("a.csv", text))
    assert "row 3, field published" in result.output


def test_hostile_html_is_sanitised_and_titles_are_plain_text(project):
    hostile = {
        **ARTICLE,
        "title": "<b>Fett</b>\r\nBcc: opfer@example.org",
        "teaser": '<p onclick="x()">Hallo<script>alert(1)</script><iframe src="https://evil.example"></iframe>'
                  '<a href="javascript:alert(2)">klick</a><style>p{}</style></p>',
        "body": '<img src=x onerror="alert(3)"><a href="https://ok.example.de/">ok</a>',
    }
    project.run("import", project.write("a.json", json.dumps([hostile])))
    row = rows(project.db(), "articles")[0]
    assert row["title"] == "Fett Bcc: opfer@example.org"
    for needle in ("script", "onclick", "iframe", "javascript:", "<style", "onerror", "<img"):
        assert needle not in row["teaser"] + row["body"]
    assert 'href="https://ok.example.de/"' in row["body"]


RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>Blog</title>
<item><title>Stadtfest &amp; mehr</title><link>https://www.example.de/blog/fest</link>
<description>&lt;p&gt;Alles zum Fest&lt;/p&gt;</description><author>redaktion@example.de (Erika)</author>
<category>Veranstaltungen</category><pubDate>Tue, 17 Nov 2026 08:00:00 +0100</pubDate>
<media:content url="https://www.example.de/bild.jpg" medium="image"/></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom</title><id>urn:x</id><updated>2026-11-18T10:00:00Z</updated>
<entry><title>Neue Leitung</title><id>urn:y</id><link href="https://www.example.de/atom/leitung"/>
<updated>2026-11-18T10:00:00Z</updated><summary>Kurz gesagt</summary><author><name>Max Muster</name></author></entry>
</feed>"""


def test_rss_items_become_articles(project):
    result = project.run("import", project.write("feed.xml", RSS))
    assert result.exit_code == 0, result.output
    row = rows(project.db(), "articles")[0]
    assert row["title"] == "Stadtfest & mehr"
    assert row["published"].startswith("2026-11-17T07:00:00")
    assert row["category"] == "Veranstaltungen"
    assert row["image"] == "https://www.example.de/bild.jpg"
    assert row["teaser"] == "<p>Alles zum Fest</p>"


def test_atom_entries_become_articles(project):
    project.run("import", project.write("feed.atom", ATOM))
    row = rows(project.db(), "articles")[0]
    assert (row["title"], row["author"], row["url"]) == ("Neue Leitung", "Max Muster", "https://www.example.de/atom/leitung")


def test_something_that_is_no_feed_is_one_line_error(project):
    for name, text in (("seite.xml", "<html><body><p>Kein Feed</p></body></html>"), ("text.rss", "Kein Feed, nur Text")):
        result = project.run("import", project.write(name, text))
        assert result.exit_code == 1 and "is not an RSS or Atom feed" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert rows(project.db(), "articles") == []


GERMAN_RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Stadtblog</title>
<item><title>Gr&uuml;nes Licht f&uuml;r den Markt &mdash; jetzt</title><link>https://www.example.de/markt</link>
<description>&lt;p&gt;M&auml;rkte &amp; Feste&lt;/p&gt;</description></item>
<item><title>Kaffee & Kuchen am Sonntag</title><link>https://www.example.de/kaffee</link></item>
</channel></rss>"""


def test_a_feed_with_html_entities_and_a_bare_ampersand_is_read_like_a_feed_reader_would(project):
    result = project.run("import", project.write("stadt.rss", GERMAN_RSS))
    assert result.exit_code == 0, result.output
    assert "2 new" in result.stdout and "not well-formed XML" in result.stderr and "read 2 entries" in result.stderr
    titles = {r["title"] for r in rows(project.db(), "articles")}
    assert titles == {"Grünes Licht für den Markt — jetzt", "Kaffee & Kuchen am Sonntag"}


def test_an_atom_title_marked_as_text_is_text(project):
    atom = ATOM.replace("<title>Neue Leitung</title>", '<title type="text">History of the &lt;blink&gt; tag</title>')
    assert project.run("import", project.write("feed.atom", atom)).exit_code == 0
    assert rows(project.db(), "articles")[0]["title"] == "History of the <blink> tag"


@pytest.mark.parametrize("feed", ["<rss version=\"2.0\"></rss>",
                                  "<rss version=\"2.0\"><channel><title>Leer</title></channel></rss>",
                                  '<feed xmlns="http://www.w3.org/2005/Atom"><title>Leer</title></feed>'])
def test_a_feed_without_entries_imports_nothing_and_says_so(project, feed):
    result = project.run("import", project.write("leer.xml", feed))
    assert result.exit_code == 0, result.output
    assert "0 new" in result.stdout and "the feed has no entries" in result.stderr


def test_plain_http_links_are_counted_and_can_be_upgraded(project):
    feed = RSS.replace("https://www.example.de/blog/fest", "http://www.example.de/blog/fest")
    path = project.write("feed.xml", feed)
    refused = project.run("import", path)
    assert refused.exit_code == 1 and "1 invalid row(s) (1 with plain http links)" in refused.output
    assert "--upgrade-http" in refused.output and rows(project.db(), "articles") == []
    assert project.run("import", path, "--upgrade-http").exit_code == 0
    assert rows(project.db(), "articles")[0]["url"] == "https://www.example.de/blog/fest"


def test_malformed_json_names_line_and_column(project):
    result = project.run("import", project.write("a.json", '[{"url": "https://x.de", }]'))
    assert result.exit_code == 1
    assert "not valid JSON" in result.output and "line 1" in result.output


def test_url_import_offline_is_a_clear_error(project):
    # 127.0.0.1:9 (discard) refuses connections on a loopback-only machine.
    result = project.run("import", "https://127.0.0.1:9/feed.xml")
    assert result.exit_code == 1
    assert "Cannot fetch https://127.0.0.1:9/feed.xml" in result.output
    assert "network" in result.output


def test_missing_file_and_unknown_kind(project):
    assert project.run("import", "nope.json").exit_code == 1
    assert project.run("import", "--kind", "poster", "nope.json").exit_code == 2


@pytest.mark.parametrize("kind,table", [("article", "articles"), ("job", "jobs"), ("ad", "ads")])
def test_list_commands(content, kind, table):
    since = day(-9).isoformat()  # the demo's newest ad starts that day: the bound is inclusive
    result = content.run(table, "list", "--since", since, "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    date_field = "starts" if kind == "ad" else "published"
    rows = sorted(content.db()[table].rows, key=lambda r: (r[date_field], r["id"]), reverse=True)
    expected = [r["id"] for r in rows if r[date_field][:10] >= since]
    assert expected and len(expected) < len(rows)  # the filter keeps some rows and drops others
    assert [r["id"] for r in listed] == expected  # newest first
    assert len(content.run(table, "list").stdout.splitlines()) == len(list(content.db()[table].rows))


# --- hostile input: never a crash, never a misleading success ----------------------------------

def one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_a_feed_item_of_twelve_thousand_nested_tags_imports_flat_and_composes(content):
    """One such teaser used to crash every compose (a segfault inside the MJML renderer)."""
    deep = "<b>" * 12_000 + "Tief verschachtelt" + "</b>" * 12_000
    items = "".join(f"<item><title>Tief {n}</title><link>https://www.example.de/tief-{n}</link>"
                    f"<pubDate>{day(-n).strftime('%a, %d %b %Y')} 08:00:00 +0100</pubDate>"
                    f"<description><![CDATA[{deep}]]></description></item>" for n in (1, 2))
    feed = content.write("feed.xml", f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}'
                                     "</channel></rss>")
    imported = content.run("import", feed)
    assert imported.exit_code == 0, imported.output
    teaser = content.db().execute("select teaser from articles where url like '%tief-1'").fetchone()[0]
    assert teaser.count("<b>") == 16 and "Tief verschachtelt" in teaser
    composed = content.run("compose", "--date", day(0).isoformat(), "--since", "14d")
    assert composed.exit_code == 0, composed.output
    db = content.db()
    with db.conn:  # a row written by hand, not sanitised: compose caps the nesting itself
        db.execute("update articles set teaser = ? where url like '%tief-2'", [deep])
    again = content.run("compose", "--replace", "latest")
    assert again.exit_code == 0, again.output


def test_deeply_nested_json_is_one_line(project):
    for name, text in (("a.json", "[" * 100_000), ("b.jsonl", '{"a": ' * 100_000 + "\n")):
        result = project.run("import", project.write(name, text))
        assert result.exit_code == 1 and "nests its values too deeply" in one_line(result)


def test_a_csv_header_of_a_million_columns_is_refused_in_one_short_line(project):
    header = ",".join(f"c{i}" for i in range(1_000_000))
    result = project.run("import", project.write("wide.csv", header + "\n" + "x," * 10 + "\n"))
    assert result.exit_code == 1
    line = one_line(result)
    assert "1,000,000 columns" in line and len(line) < 300


def test_overlong_fields_are_refused_with_their_length(project):
    result = project.run("import", project.write("a.json", json.dumps([{**ARTICLE, "title": "T" * 20_000_000}])))
    assert result.exit_code == 1
    assert "row 1, field title: 20,000,000 characters, more than 100,000 - shorten it" in result.output
    assert rows(project.db(), "articles") == []
    teaser = project.run("import", project.write("b.json", json.dumps([{**ARTICLE, "teaser": "x" * 30_000}])))
    assert "field teaser: 30,000 characters, more than 20,000" in teaser.output
    author = project.run("import", project.write("c.json", json.dumps([{**ARTICLE, "author": "Erika " * 300}])))
    assert "field author: 1,799 characters, more than 1,000" in author.output


def test_many_unknown_fields_are_listed_briefly(project):
    row = {**ARTICLE, **{f"feld{i}": "x" for i in range(500)}}
    result = project.run("import", project.write("a.json", json.dumps([row])))
    assert result.exit_code == 0
    [ignored] = [line for line in result.output.splitlines() if line.startswith("Ignored unknown fields")]
    assert "and 490 more" in ignored and len(ignored) < 200


def test_an_unexpected_error_is_one_line_without_debug(project, monkeypatch):
    monkeypatch.setattr("newsletter.content.ingest.detect_format", lambda data, name: 1 / 0)
    result = project.run("import", project.write("a.json", "[]"))
    assert result.exit_code == 1
    assert one_line(result).startswith("Error: Unexpected error (ZeroDivisionError: division by zero) - this is a bug")
    with pytest.raises(ZeroDivisionError):
        project.run("--debug", "import", project.write("a.json", "[]"))


def test_german_column_names_are_understood(project):
    articles = project.write("artikel.csv", "Titel;Link;Datum;Autor;Rubrik;Teaser;Bild;Bildunterschrift\n"
                             "Neue Fußgängerzone;https://www.example.de/fz;03.12.2026;Erika Beispiel;Innenstadt;"
                             "Ein <b>Anriss</b>;https://www.example.de/fz.jpg;Die Zone am Markt\n")
    result = project.run("import", articles)
    assert result.exit_code == 0, result.output
    [row] = rows(project.db(), "articles")
    assert (row["title"], row["published"], row["author"], row["category"], row["image_caption"]) == \
        ("Neue Fußgängerzone", "2026-12-03", "Erika Beispiel", "Innenstadt", "Die Zone am Markt")
    jobs = project.write("stellen.csv", "Titel;Link;Arbeitgeber;Ort;Bewerbungsschluss\n"
                         "Citymanager (m/w/d);https://www.example.de/job;Stadt Musterstadt;Musterstadt;31.12.2026\n")
    assert "(jobs): 1 new" in project.run("import", jobs).output
    assert rows(project.db(), "jobs")[0]["deadline"] == "2026-12-31"
    ads = project.write("anzeigen.csv", "Titel;Link;Inserent;Text;Beginn;Ende\n"
                        "Messe;https://www.example.de/messe;Messe GmbH;Kommen Sie;01.12.2026;31.12.2026\n")
    assert "(ads): 1 new" in project.run("import", ads).output
    assert rows(project.db(), "ads")[0]["text"] == "Kommen Sie"


def test_unknown_columns_are_named_with_the_expected_ones(project):
    result = project.run("import", project.write("a.csv", "Überschrift;Webseite;Wann\nX;https://x.de/a;2026-12-01\n"))
    assert result.exit_code == 1
    line = one_line(result)
    assert "no column for url" in line and "not recognised: wann, webseite" in line
    assert "url (Link), title (Titel)" in line and "row 2" not in line
