"""The .eml of an issue against the message rules of docs/checks.md, checked on the produced bytes."""

from __future__ import annotations

import email
import quopri
import re
from email import policy

import pytest
from conftest import SLUG

from newsletter.compose.personal import SAMPLE, Recipient
from newsletter.mail import mime
from newsletter.mail.message import IssueMessage


@pytest.fixture
def eml(composed) -> bytes:
    return (composed.root / "out" / SLUG / "issue.eml").read_bytes()


def headers_of(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0] + b"\r\n"


def unfolded(raw: bytes, name: str) -> list[str]:
    text = headers_of(raw).decode("ascii").replace("\r\n ", " ").replace("\r\n\t", " ")
    return [line.split(": ", 1)[1] for line in text.split("\r\n") if line.lower().startswith(name.lower() + ":")]


def test_crlf_only_and_line_lengths(eml):
    assert b"\n" not in eml.replace(b"\r\n", b"")
    lines = eml.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    body = eml.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    assert all(b < 128 for b in eml), "8-bit bytes in a 7-bit message"


def test_structure_text_then_html_both_utf8_qp(eml):
    message = email.message_from_bytes(eml, policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert "Sehr geehrte Frau Dr. Muster," in parts[0].get_content()
    assert "Sehr geehrte Frau Dr. Muster," in parts[1].get_content()


def test_one_click_unsubscribe_pair_is_byte_exact(eml):
    head = headers_of(eml)
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in head
    [value] = unfolded(eml, "List-Unsubscribe")
    assert value == (f"<https://www.stadtmarketing-demo.de/u/{SAMPLE.token}>, "
                     f"<mailto:unsubscribe@stadtmarketing-demo.de?subject={SAMPLE.token}>")
    # No header line over 78 characters, but for a URI that cannot be folded (the sample's token
    # is as long as a token for a six-digit id; the demo's own readers' lines stay within 78).
    assert all(len(line) <= 78 or b" " not in line.strip() for line in head.split(b"\r\n"))
    assert b"=?" not in b"".join(line for line in head.split(b"\r\n") if b"Unsubscribe" in line)
    assert "@" not in value.split(">")[0], "no email address in the https URL"


def test_single_date_message_id_from_and_no_forbidden_headers(eml):
    message = email.message_from_bytes(eml, policy=policy.default)
    for name in ("Date", "Message-ID", "From", "To", "Subject", "List-Id"):
        assert len(message.get_all(name) or []) == 1, name
    assert re.fullmatch(r"<[^@<>\s]+@stadtmarketing-demo\.de>", message["Message-ID"])
    assert len(message["From"].addresses) == 1
    assert message["From"].addresses[0].display_name == "Redaktion Stadtmarketing-Brief"
    assert message["List-Id"] == "Stadtmarketing-Brief <stadtmarketing-brief.stadtmarketing-demo.de>"
    assert message["Return-Path"] is None and message["Bcc"] is None


def test_subject_encoded_words_are_valid(composed):
    db = composed.db()
    subject = "Städte im Wandel: Öffnungszeiten, Übernachtungen und „Größe“ – " * 2
    result = composed.run("compose", "--date", SLUG, "--replace", "1", "--subject", subject)
    assert result.exit_code == 0, result.output  # else the .eml checked below is the first compose's
    raw = (composed.root / "out" / SLUG / "issue.eml").read_bytes()
    subject_lines = list(headers_of(raw).split(b"\r\n"))
    start = next(i for i, line in enumerate(subject_lines) if line.startswith(b"Subject:"))
    block = [subject_lines[start]]
    for line in subject_lines[start + 1:]:
        if not line.startswith(b" "):
            break
        block.append(line)
    words = re.findall(rb"=\?[^?]+\?[qQbB]\?[^?]*\?=", b"\r\n".join(block))
    assert words and all(len(w) <= 75 for w in words)
    assert b"?==?" not in raw and b"=?utf-8?q??=" not in raw
    assert all(len(line) <= 78 for line in block)
    message = email.message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == db["issues"].get(1)["subject"] == subject.strip()


def test_html_part_meets_the_html_rules(eml):
    message = email.message_from_bytes(eml, policy=policy.default)
    html = message.get_body(("html",)).get_content()
    assert html.lower().startswith("<!doctype html>")
    assert '<html lang="de"' in html
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "@media (prefers-color-scheme: dark)" in html
    assert "fonts.googleapis" not in html and "@import" not in html and "<link" not in html
    for tag in re.findall(r"<img\b[^>]*>", html):
        assert re.search(r'\balt="[^"]+"', tag), tag
        assert re.search(r'\bsrc="https://', tag), tag
    for href in re.findall(r'href="([^"]*)"', html):
        assert href.startswith(("https://", "mailto:")), href
    styles = re.findall(r"<style[^>]*>(.*?)</style>", html, re.S)
    assert sum(len(s.encode()) for s in styles) < 16_000
    assert "ANZEIGE" in html and "Impressum" in html


def test_text_part_writes_every_link_and_labels_ads(composed, eml):
    message = email.message_from_bytes(eml, policy=policy.default)
    text = message.get_body(("plain",)).get_content()
    assert all(len(line) <= 78 or line.lstrip().startswith("http") or "https://" in line for line in text.splitlines())
    db = composed.db()
    for entry in db.query("select * from issue_items where issue_id = 1 and kind = 'article'"):
        assert composed.link(db["articles"].get(entry["item_id"])["url"]) in text
    assert text.count("ANZEIGE") == 2
    assert f"Newsletter abbestellen:\r\nhttps://www.stadtmarketing-demo.de/u/{SAMPLE.token}" in text
    assert "Bewerbungsschluss: " in text and "Impressum".upper() in text


def test_personal_values_are_filled_without_rerendering(composed):
    from newsletter.store.issues import get_issue

    settings = composed.settings()
    issue = get_issue(composed.store(), 1)
    assert issue.html.count("%%salutation%%") == 1 and "%%token%%" in issue.html
    template = IssueMessage(settings, issue.subject, issue.html, issue.text)
    reader = Recipient(email="max@example.org", salutation="Sehr geehrter Herr <Müller>", token="tok_123")
    raw, msgid = template.build(reader)
    message = email.message_from_bytes(raw, policy=policy.default)
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "Sehr geehrter Herr &lt;Müller&gt;," in html and "Sehr geehrter Herr <Müller>," in text
    assert "https://www.stadtmarketing-demo.de/u/tok_123" in html and "%%" not in html + text
    assert message["To"] == "max@example.org" and message["Message-ID"] == msgid


def test_header_injection_is_refused():
    with pytest.raises(ValueError):
        mime.header("Subject", "Hallo\r\nBcc: x@example.org")
    with pytest.raises(ValueError):
        mime.address("Name\n", "a@example.org")


def test_qp_lines_and_roundtrip():
    text = "Grüße " * 40 + "\n.Punkt\nFrom here\nEnde mit Leerzeichen "
    encoded = mime.qp_encode(text)
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    assert quopri.decodestring(encoded).decode() == text.replace("\n", "\r\n")


@pytest.mark.parametrize("caption,credit,expected", [
    (None, "Archiv", "Foto: Archiv"),
    ("Der Markt ist auch nach Ladenschluss abrufbar.", "Stadt Beispiel", "Der Markt ist auch nach Ladenschluss abrufbar. Foto: Stadt Beispiel"),
    ("Blick auf den Markt", "Stadt Beispiel", "Blick auf den Markt; Foto: Stadt Beispiel"),
    ("Nur eine Unterschrift", None, "Nur eine Unterschrift"),
])
def test_caption_and_credit_read_as_one_line_in_both_parts(content, caption, credit, expected):
    import json

    lead = {"url": "https://www.stadtmarketing-demo.de/bild", "title": "Mit Bild", "published": SLUG,
            "image": "https://www.stadtmarketing-demo.de/bild.jpg", "image_caption": caption, "image_credit": credit}
    content.write("bild.json", json.dumps([{k: v for k, v in lead.items() if v is not None}]))
    assert content.run("import", "bild.json").exit_code == 0
    assert content.run("compose", "--date", SLUG, "--lead", lead["url"]).exit_code == 0
    raw = (content.root / "out" / SLUG / "issue.eml").read_bytes()
    message = email.message_from_bytes(raw, policy=policy.default)
    html = " ".join(message.get_body(("html",)).get_content().split())
    text = " ".join(message.get_body(("plain",)).get_content().split())
    assert expected in html and "None" not in html and ".;" not in html
    assert f"[Bild: {expected}]" in text


def test_every_image_keeps_its_box_and_reads_as_text_when_blocked(eml):
    import lxml.html

    html = email.message_from_bytes(eml, policy=policy.default).get_body(("html",)).get_content()
    images = lxml.html.document_fromstring(html).iter("img")
    for img in images:
        assert img.get("width", "").isdigit() and img.get("height", "").isdigit(), lxml.html.tostring(img)[:120]
        style = img.get("style", "")
        assert "height:auto" in style.replace(" ", "")  # where images show, they keep their proportions
        assert "font-family" in style and "color" in style and "font-size" in style  # alt text as text
    logo = next(lxml.html.document_fromstring(html).iter("img"))
    assert logo.get("alt") == "Stadtmarketing-Brief"


def test_headings_name_the_issue_its_sections_and_articles(eml):
    import lxml.html

    doc = lxml.html.document_fromstring(email.message_from_bytes(eml, policy=policy.default)
                                        .get_body(("html",)).get_content())
    assert [h.text_content() for h in doc.iter("h1")] == ["Stadtmarketing-Brief"]
    sections = [" ".join(h.text_content().split()) for h in doc.iter("h2")]
    assert "WEITERE MELDUNGEN" in sections and "STELLENMARKT" in sections and len(sections) == 3
    assert len(list(doc.iter("h3"))) >= 10


def test_no_double_greeting_and_a_preheader_without_hidden_white_text(composed):
    intro = composed.write("intro.txt", "Liebe Leserinnen und Leser,\n\ndiese Woche im Brief.")
    assert composed.run("compose", "--replace", "1", "--intro", intro).exit_code == 0
    raw = (composed.root / "out" / SLUG / "issue.eml").read_bytes()
    message = email.message_from_bytes(raw, policy=policy.default)
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Sehr geehrte Frau Dr. Muster,\n\ndiese Woche im Brief." in text and "Liebe Leserinnen" not in text
    html = message.get_body(("html",)).get_content()
    hidden = re.search(r'<div style="display:none[^"]*"[^>]*>([^<]*)</div>', html)
    assert hidden and hidden.group(1).strip() and "color" not in hidden.group(0)
