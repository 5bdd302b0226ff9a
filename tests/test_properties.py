"""Property tests: hostile imports cannot break or script the issue; text, QP and header
encoders keep their contracts for arbitrary input.

The issue tests build a fresh store per example in a temporary folder (no fixtures inside
@given), import hostile articles, job ads and ads, compose, and check the written outputs.
"""

from __future__ import annotations

import email
import email.policy
import os
import quopri
import re
import tempfile
import tomllib
import unicodedata
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from unittest import mock

import lxml.html
import pytest
import tomli_w
from conftest import ISSUE_DATE
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from newsletter import config, demo
from newsletter.compose.issue import ComposeRequest
from newsletter.compose.personal import SAMPLE, Recipient, unsubscribe_url
from newsletter.compose.select import Options
from newsletter.content import ingest
from newsletter.content.sanitize import clean_text
from newsletter.delivery.transports.smtp import dot_stuff
from newsletter.mail import mime
from newsletter.mail.message import IssueMessage
from newsletter.store import open_db
from newsletter.store.content import find_item
from newsletter.workflow.compose import compose_issue as compose

ISSUE_SETTINGS = settings(max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FAST = settings(max_examples=300, deadline=None)

BASE_URL = "https://www.stadtmarketing-demo.de"
UNSUBSCRIBE = unsubscribe_url(BASE_URL, SAMPLE.token)  # issue.html is written for the sample reader
LEAD_URL = "https://news.example.org/artikel/lead"
SECOND_URL = "https://news.example.org/artikel/mit-bild"
PLAIN_URL = "https://news.example.org/artikel/ohne-bild"
JOB_URL = "https://jobs.example.org/stelle/1"
AD_URLS = ("https://ads.example.org/eins", "https://ads.example.org/zwei")

HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=javascript:alert(1)>",
    '<a href="javascript:alert(1)">klick</a>',
    '<a href=" JaVaScRiPt:alert(1)">klick</a>',
    '<a href="java&#x09;script:alert(1)">klick</a>',
    '<a href="https://ok.example/" onmouseover="alert(1)">ok</a>',
    '<p onclick="alert(1)">absatz</p>',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<iframe src="https://evil.example/"></iframe>',
    "<style>body{display:none}</style>",
    '<div style="position:fixed;top:0;left:0;width:100%;height:100%;background:red">',
    '<span style="position: absolute">x</span>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    '<form action="https://evil.example/"><input name="pw"><button>Los</button></form>',
    '<object data="https://evil.example/x.swf"></object>',
    '<embed src="https://evil.example/x.swf">',
    '<base href="https://evil.example/">',
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    "<b><i>", "<p><ul><li>", "</table></td>", "</td></tr></table></div></body></html>",
    "<html><body>", "<table><tr><td>",
    "<!--", "-->", "<!-- kommentar -->", "<!--[if mso]><script>alert(1)</script><![endif]-->",
    "<![CDATA[", "]]>", "<![CDATA[<script>alert(1)</script>]]>",
    '"><script>alert(1)</script>', "'><img src=x onerror=alert(1)>", '" onmouseover="alert(1)',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "</mj-text>", "</mj-column></mj-section><mj-raw><script>alert(1)</script></mj-raw>",
    '<mj-image src="https://evil.example/x.png" />', "<mj-button href=\"javascript:alert(1)\">x</mj-button>",
    "{{ 7*7 }}", "{% raw %}", "{% endraw %}", "{# kommentar", "{{ impressum }}",
    "%%salutation%%", "%%email%%", "%%token%%", "%%",
    "&lt;script&gt;alert(1)&lt;/script&gt;", "&#60;script&#62;alert(1)&#60;/script&#62;",
    "&amp;lt;script&amp;gt;", "&", "&nbsp;", "&#0;", "&#13;&#10;",
    "\r\n", "\r", "\n", "\x00", "\x0b", "\x1b[31m", "\x85", "\u2028", "\ufeff", "\u202e",
]
SPECIAL = "<>&\"'/=;:{}%!-[]?#\\`\r\n\t \x00\x0b\x7f\x85\u00a0\u2028\u200bäöüß€😀"
pieces = st.one_of(st.text(max_size=25), st.text(alphabet=SPECIAL, max_size=12), st.sampled_from(HOSTILE))
hostile_text = st.lists(pieces, max_size=4).map("".join)

ARTICLE_FIELDS = ("title", "teaser", "body", "author", "category", "image_alt", "image_caption", "image_credit")
JOB_FIELDS = ("title", "employer", "location", "term")
AD_FIELDS = ("title", "text", "advertiser")


@contextmanager
def fresh_project():
    """A temporary project with the demo config (NEWSLETTER_* variables hidden), its links as
    imported: the counted short links of [tracking] clicks have their own property test."""
    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ):
        for name in [n for n in os.environ if n.startswith("NEWSLETTER_")]:
            del os.environ[name]
        root = Path(tmp)
        data = tomllib.loads(demo.DEMO_CONFIG)
        data["tracking"]["clicks"] = "off"
        (root / "newsletter.toml").write_text(tomli_w.dumps(data), encoding="utf-8")
        settings_ = config.load(config=root / "newsletter.toml")
        db = open_db(settings_.db_path, create=True)
        try:
            yield root, settings_, db
        finally:
            db.close()


def required(value: str, word: str) -> str:
    """Required fields must stay non-empty once the markup is removed (an unclosed comment or
    CDATA section swallows everything after it, so the plain word goes first)."""
    return f"{word} {value}"


def import_hostile(db, art: dict, job: dict, ad: dict) -> None:
    day = ISSUE_DATE.isoformat()
    article = {**art, "title": required(art["title"], "Titel")}
    articles = [
        {**article, "url": LEAD_URL, "image": "https://img.example.org/lead.jpg", "published": day},
        {**article, "url": SECOND_URL, "image": "https://img.example.org/zwei.jpg",
         "published": (ISSUE_DATE - timedelta(days=1)).isoformat()},
        {**article, "url": PLAIN_URL, "published": (ISSUE_DATE - timedelta(days=2)).isoformat()},
    ]
    jobs = [{**job, "title": required(job["title"], "Stelle"), "url": JOB_URL, "employment": "Vollzeit",
             "deadline": (ISSUE_DATE + timedelta(days=20)).isoformat(), "published": day}]
    ads = [{**ad, "title": required(ad["title"], "Anzeige"), "advertiser": required(ad["advertiser"], "GmbH"),
            "url": url, "image": "https://img.example.org/anzeige.png",
            "starts": (ISSUE_DATE - timedelta(days=5)).isoformat(),
            "ends": (ISSUE_DATE + timedelta(days=5)).isoformat()} for url in AD_URLS]
    for kind, rows in (("article", articles), ("job", jobs), ("ad", ads)):
        report = ingest.import_rows(db, [ingest.RawRow(i, r) for i, r in enumerate(rows, 1)], kind, "hypothesis")
        assert not report.rejected, report.rejected
        assert report.new == len(rows)


def compose_issue(root, settings_, db):
    request = ComposeRequest(options=Options(issue_date=ISSUE_DATE), allow_clipping=True, out_dir=root / "out")
    return compose(db, settings_, request)


def position(doc, element) -> int:
    return next(i for i, e in enumerate(doc.iter()) if e is element)


def bare_url(value: str) -> str:
    """A URL as a browser reads it: ASCII whitespace and control characters removed."""
    return re.sub(r"[\x00-\x20\x7f]", "", value).lower()


# --- a. hostile content in every field of an issue -------------------------------------------

@ISSUE_SETTINGS
@given(
    art=st.fixed_dictionaries({name: hostile_text for name in ARTICLE_FIELDS}),
    job=st.fixed_dictionaries({name: hostile_text for name in JOB_FIELDS}),
    ad=st.fixed_dictionaries({name: hostile_text for name in AD_FIELDS}),
)
@example(
    art={name: "".join(HOSTILE) for name in ARTICLE_FIELDS},
    job={name: "".join(HOSTILE) for name in JOB_FIELDS},
    ad={name: "".join(HOSTILE) for name in AD_FIELDS},
)
def test_hostile_content_cannot_script_or_break_the_issue(art, job, ad):
    with fresh_project() as (root, settings_, db):
        import_hostile(db, art, job, ad)
        result = compose_issue(root, settings_, db)
        raw_html = result.paths["html"].read_text(encoding="utf-8")
        text = result.paths["txt"].read_bytes().decode("utf-8")

    # One document, parsed the way a mail client would.
    for tag in ("html", "head", "body"):
        assert len(re.findall(rf"<{tag}[\s>]", raw_html, re.I)) == 1, f"<{tag}> count"
        assert len(re.findall(rf"</{tag}\s*>", raw_html, re.I)) == 1, f"</{tag}> count"
    doc = lxml.html.document_fromstring(raw_html)
    assert len(doc.xpath("//html")) == 1 and len(doc.xpath("//body")) == 1

    # Nothing active.
    for tag in ("script", "iframe", "object", "embed", "form", "input", "base", "frame", "frameset", "applet"):
        assert not doc.xpath(f"//{tag}"), f"<{tag}> in the issue"
    assert not doc.xpath("//body//style | //body//link | //body//meta"), "head-only element in the body"
    # mjml's own boilerplate has X-UA-Compatible and Content-Type; nothing else, never refresh.
    equiv = {m.get("http-equiv").strip().lower() for m in doc.xpath("//meta[@http-equiv]")}
    assert equiv <= {"x-ua-compatible", "content-type"}, equiv
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue  # comments, processing instructions
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), f"<{element.tag} {name}=...>"
            if name.lower() in ("href", "src", "action", "formaction", "background", "xlink:href"):
                assert not bare_url(value).startswith(("javascript:", "vbscript:", "data:")), f"{name}={value!r}"
            if name.lower() == "style":
                assert not re.search(r"position\s*:\s*(fixed|absolute)", value, re.I), value
    for img in doc.xpath("//img"):
        assert (img.get("alt") or "").strip(), lxml.html.tostring(img)

    # The layout survived: every item is linked as designed, the footer comes after all of it.
    links = doc.xpath("//a[@href]")
    hrefs = [a.get("href") for a in links]
    assert hrefs.count(LEAD_URL) == 3  # image, headline, button
    assert hrefs.count(SECOND_URL) == 3  # image, headline, "Weiterlesen"
    assert hrefs.count(PLAIN_URL) == 2  # headline, "Weiterlesen"
    assert hrefs.count(JOB_URL) == 1
    for url in AD_URLS:
        assert hrefs.count(url) == 2  # image, title
    impressum = doc.xpath("//body//strong[normalize-space()='Impressum']")
    unsubscribe = [a for a in links if a.get("href") == UNSUBSCRIBE]
    assert len(impressum) == 1 and len(unsubscribe) == 1
    assert unsubscribe[0].text_content().strip() == "Newsletter abbestellen"
    last_item = max(position(doc, a) for a in links if a.get("href") in (LEAD_URL, SECOND_URL, PLAIN_URL, JOB_URL, *AD_URLS))
    assert position(doc, unsubscribe[0]) > last_item and position(doc, impressum[0]) > last_item
    assert "Musterallee 12, 12345 Musterstadt" in impressum[0].getparent().text_content()

    # The text part: the footer is there, no raw CR.
    assert "\r" not in text
    footer = "\nIMPRESSUM\nDemo Fachverlag Stadt & Raum GmbH\nMusterallee 12"
    assert text.count(footer) == 1 and text.count(f"\nNewsletter abbestellen:\n{UNSUBSCRIBE}\n") == 1
    assert text.index(footer) > max(text.rindex(u) for u in (LEAD_URL, SECOND_URL, PLAIN_URL, JOB_URL, *AD_URLS))


def headline_text(doc, url: str) -> str:
    """Text of the headline link of an article (the bold link with that URL)."""
    (link,) = [a for a in doc.xpath("//td[contains(@class, 'nl-title')]//a") if a.get("href") == url]
    return link.text_content()


@ISSUE_SETTINGS
@given(title=hostile_text)
@example(title="Rabatt %%token%% &lt;b&gt;")
def test_imported_titles_reach_the_reader_verbatim(title):
    """The escaping is exact: the stored (cleaned) title is the headline's text, no more, no less.
    (A '%%' in a title is stored defused to '%', so no title can form a placeholder: the test below.)"""
    with fresh_project() as (root, settings_, db):
        import_hostile(db, {"title": title}, {"title": "Stelle"}, {"title": "Anzeige", "advertiser": "GmbH"})
        stored = find_item(db, "article", LEAD_URL)["title"]
        result = compose_issue(root, settings_, db)
        doc = lxml.html.document_fromstring(result.paths["html"].read_text(encoding="utf-8"))
    assert stored == clean_text(required(title, "Titel"))
    assert headline_text(doc, LEAD_URL) == stored
    assert headline_text(doc, SECOND_URL) == stored


@pytest.mark.parametrize("marker", ["%%token%%", "%%email%%", "%%salutation%%"])
def test_imported_content_cannot_use_recipient_placeholders(marker):
    with fresh_project() as (root, settings_, db):
        teaser = f'<a href="https://evil.example/c?v={marker}">Mehr</a>'
        import_hostile(db, {"title": f"Rabatt {marker}", "teaser": teaser},
                       {"title": "Stelle"}, {"title": "Anzeige", "advertiser": "GmbH"})
        result = compose_issue(root, settings_, db)
        doc = lxml.html.document_fromstring(result.paths["html"].read_text(encoding="utf-8"))
    defused = marker.replace("%%", "%")  # imports can never form a placeholder
    leaked = [a.get("href") for a in doc.xpath("//a[starts-with(@href, 'https://evil.example/')]")]
    assert leaked == [f"https://evil.example/c?v={defused}"] * 3  # lead + two articles, not personalised
    assert headline_text(doc, LEAD_URL).endswith(f"Rabatt {defused}")
    assert "BEISPIEL-TOKEN" not in " ".join(leaked) and "erika.muster" not in " ".join(leaked)


# --- b. clean_text -------------------------------------------------------------------------

@FAST
@given(st.one_of(st.text(), hostile_text))
@example("a\r\nb\x00c\x85d\u2028e&#13;&#10;f&#x85;g&#0;h")
def test_clean_text_is_one_line_without_control_characters(value):
    cleaned = clean_text(value)
    assert "\r" not in cleaned and "\n" not in cleaned
    bad = [c for c in cleaned if unicodedata.category(c) == "Cc" or c in "\u2028\u2029"]
    assert not bad, bad
    assert cleaned == cleaned.strip() and "  " not in cleaned


# --- c. quoted-printable -------------------------------------------------------------------

def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def check_qp(encoded: bytes) -> None:
    assert isinstance(encoded, bytes)
    assert b"\r" not in encoded.replace(b"\r\n", b"") and b"\n" not in encoded.replace(b"\r\n", b"")
    for line in encoded.split(b"\r\n"):
        assert len(line) <= 76, line
        # printable ASCII, plus the literal SPACE and TAB that RFC 2045 allows inside a line
        assert all(32 <= b <= 126 or b == 9 for b in line), line
        assert not line.endswith((b" ", b"\t")), line  # would be stripped in transit


@FAST
@given(st.text())
@example("x" * 75 + "\r\n" + "é" * 30 + " \rFrom \n. \n=\t")
def test_qp_encode_lines_ascii_and_roundtrip(text):
    encoded = mime.qp_encode(text)
    check_qp(encoded)
    assert quopri.decodestring(encoded).decode("utf-8") == crlf(text)


@FAST
@given(st.lists(st.text(), max_size=6))
@example(["\x08" + "\x80" * 8 + "\U00010000" * 2 + "0", ""])  # a first piece whose last line is 76 long
def test_join_qp_decodes_to_the_concatenation(parts):
    joined = mime.join_qp([mime.qp_encode(p) for p in parts])
    check_qp(joined)
    assert quopri.decodestring(joined).decode("utf-8") == "".join(crlf(p) for p in parts)


@FAST
@given(st.text(alphabet="x .Fromé", max_size=200))
@example("x" * 75 + ".")
@example("x" * 75 + "From here")
def test_qp_never_writes_a_lone_dot_or_from_line(text):
    for line in mime.qp_encode(text).split(b"\r\n"):
        assert line != b"." and not line.startswith(b"From "), line


@FAST
@given(st.text(), st.text(), st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=60))
@example(".\n.\r\nFrom x", "<p>\r.</p>\n.", ".")
def test_built_messages_go_on_the_wire_unchanged(text, html_body, name):
    """SmtpTransport sends the bytes as they are; the builder must make them CRLF and dot-safe."""
    template = IssueMessage(_settings(), "Betreff", html_body + "%%salutation%%", text + "%%salutation%%")
    raw, _ = template.build(Recipient("leser@example.org", name, "t0k.EN"))
    assert dot_stuff(raw) == raw


def _settings() -> config.Settings:
    publication = config.Publication(name="Brief", sender_address="newsletter@example.de",
                                     base_url="https://www.example.de")
    return config.Settings(Path("unused.db"), None, publication, config.Impressum(), config.Compose())


# --- d. Subject header ---------------------------------------------------------------------

one_line = st.text(st.characters(blacklist_categories=("Cc", "Cs")))
WORD = re.compile(rb"=\?utf-8\?q\?(.*?)\?=", re.I)


def parse_subject(raw: bytes) -> str:
    return email.message_from_bytes(raw + b"\r\n", policy=email.policy.default)["Subject"]


def plain_path(subject: str) -> bool:
    """mime.header writes these as plain ASCII folded at spaces (no encoded words)."""
    return subject.isascii() and "=?" not in subject


def check_subject(subject: str) -> None:
    raw = mime.header("Subject", subject)
    assert raw.startswith(b"Subject: ") and raw.endswith(b"\r\n")
    assert all(b < 128 for b in raw)
    lines = raw[:-2].split(b"\r\n")
    assert all(line[:1] in (b" ", b"\t") for line in lines[1:]), "continuation lines must be folded"
    assert all(len(line) <= 78 for line in lines), [len(line) for line in lines]
    if not plain_path(subject):
        words = WORD.findall(raw)
        assert words and all(words), "empty encoded word"
        assert all(len(m.group(0)) <= 75 for m in WORD.finditer(raw))
        assert WORD.sub(b"", b"".join(lines)[len(b"Subject:"):]).strip() == b"", "text outside encoded words"
    assert b"=?utf-8?q??=" not in raw.lower()
    assert b"?==?" not in raw
    assert parse_subject(raw) == subject


@FAST
@given(one_line)
@example("Grüße aus Köln – " * 12)
@example("=?utf-8?q?fake?= und ?= =? " + "x" * 20)
@example("€" * 200)
@example("  ä  ")
@example("wort  " * 20)
@example("x" * 66 + " " * 5 + "y")
@example("ab" * 34 + " " + "c" * 10)
def test_subject_header_encoding(subject):
    check_subject(subject)


@FAST
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/.:-", min_size=70, max_size=1200))
@example("x" * 100)
@example("Stadtmarketing Brief 11/2026: https://www.stadtmarketing-demo.de/artikel/leerstand-pop-up-flaechen")
def test_subject_with_a_long_ascii_word_keeps_78_columns(word):
    check_subject(word)


@FAST
@given(st.text(alphabet="ab !?", max_size=20).map(lambda t: " " + t))
@example(" a")
def test_subject_with_leading_spaces_round_trips(subject):
    check_subject(subject)


# --- e-mail addresses: the fast path agrees with email-validator ------------------------------

LOCAL = st.text(alphabet="abcXYZ09.+-_!#'~äé\"", min_size=0, max_size=70)
DOMAIN = st.sampled_from(["example.org", "Beispiel.DE", "bücher.de", "x", "-x.de", "x_y.de", "localhost",
                          "[1.2.3.4]", "sub.domain.example.com", "a" * 70 + ".de", "xn--bcher-kva.de"])


# Valid labels, a valid domain, and with a 64-character local part one character over (and at)
# the 254 characters an address may have: only the whole address's length decides.
LONG_DOMAIN = "a" * 63 + "." + "b" * 63 + "." + "c" * 59 + ".de"   # 190 characters


@settings(max_examples=300, deadline=None)
@given(local=LOCAL, domain=DOMAIN)
@example(local="l" * 64, domain=LONG_DOMAIN)
@example(local="l" * 64, domain=LONG_DOMAIN[1:])
def test_a_reused_domain_check_gives_what_a_full_check_gives(local, domain):
    from newsletter.errors import InputError
    from newsletter.mail.addresses import _validated, normalise_email

    address = f"{local}@{domain}"

    def outcome(check):
        try:
            return check(address.strip())
        except InputError:
            return "invalid"

    assert outcome(normalise_email) == outcome(_validated)
