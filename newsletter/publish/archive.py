"""The web archive: a static site of the sent issues with an RSS feed (`newsletter archive`).

Data flow: store (sent issues, newest first) → each issue's stored HTML with the personal
placeholders neutralised → `<slug>.html`; the list → `index.html` and `feed.xml`; plus
`abbestellen.html`. Every run regenerates all files, each written via .tmp + rename.

A web visitor is nobody in particular: the salutation is "Guten Tag", the footer says the mail
went to "alle Abonnentinnen und Abonnenten", and the unsubscribe link leads to
`abbestellen.html`, which explains that the personal link is in each reader's own mail. No token,
neither a real one nor the placeholder, reaches a page.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path

import jinja2
from markupsafe import Markup

from newsletter import dates, files
from newsletter.compose.issue import web_url
from newsletter.compose.personal import PLACEHOLDERS, VISITOR, personalise, unsubscribe_url
from newsletter.config import Settings
from newsletter.errors import InputError
from newsletter.store import Database
from newsletter.store.issues import Issue, sent_issues

UNSUBSCRIBE_PAGE = "abbestellen.html"
ATOM = "http://www.w3.org/2005/Atom"

_PAGES = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_LAYOUT = """<!doctype html>
<html lang="de"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<link rel="alternate" type="application/rss+xml" title="{{ name }}" href="feed.xml">
<style>
body { margin: 0; background: #eef1f4; color: #1f2933; font: 16px/1.5 Helvetica, Arial, sans-serif; }
main { max-width: 600px; margin: 0 auto; padding: 32px 24px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 24px; } a { color: #8a1c3c; }
ol { list-style: none; padding: 0; } li { margin: 0 0 20px; }
.meta { color: #5b6670; font-size: 14px; }
@media (prefers-color-scheme: dark) {
  body { background: #121417; color: #e8eaed; } main { background: #1e2226; } a { color: #f4a7bb; }
}
</style></head>
<body><main>{{ body }}</main></body></html>
"""
_INDEX = """<h1>{{ name }}: alle Ausgaben</h1>
{%- if issues %}
<ol>
{%- for i in issues %}
<li><a href="{{ i.slug }}.html">{{ i.subject }}</a><br>
<span class="meta">{% if i.number %}Ausgabe {{ i.number }} · {% endif %}{{ i.issue_date | german_date }}</span></li>
{%- endfor %}
</ol>
{%- else %}
<p>Es wurde noch keine Ausgabe verschickt.</p>
{%- endif %}
<p class="meta"><a href="feed.xml">RSS-Feed</a></p>
"""
_UNSUBSCRIBE = """<h1>Newsletter abbestellen</h1>
<p>Jede Ausgabe des Newsletters „{{ name }}“ enthält am Ende einen persönlichen Link „Newsletter abbestellen“.
Ein Klick darauf genügt, und Sie erhalten keine weiteren Ausgaben.</p>
<p>Sie finden die E-Mail nicht mehr? Schreiben Sie an
<a href="mailto:{{ email }}">{{ email }}</a>, dann tragen wir Sie aus.</p>
{%- if privacy_url %}
<p><a href="{{ privacy_url }}">Datenschutzerklärung</a></p>
{%- endif %}
<p><a href="index.html">Alle Ausgaben</a></p>
"""
_BACK = ('<div style="padding:10px 16px;font:14px Helvetica,Arial,sans-serif;text-align:center">'
         '<a href="index.html" style="color:#8a1c3c">Alle Ausgaben des Newsletters „{name}“</a></div>')
_PAGES.filters["german_date"] = dates.german_long


@dataclass
class ArchiveResult:
    out_dir: Path
    issues: list[Issue]


def build(db: Database, settings: Settings) -> ArchiveResult:
    """Write index.html, one page per sent issue, abbestellen.html and feed.xml into [archive] out_dir."""
    settings.require_base_url("the web archive")
    folder = settings.archive_dir
    issues = sent_issues(db)
    pages = {f"{i.slug}.html": page_html(settings, i).encode("utf-8") for i in issues}
    pages["index.html"] = index_html(settings, issues).encode("utf-8")
    pages[UNSUBSCRIBE_PAGE] = unsubscribe_html(settings).encode("utf-8")
    pages["feed.xml"] = feed_xml(settings, issues)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in pages.items():
            files.atomic_write(folder / name, data)
    except OSError as e:
        raise InputError(f"Cannot write to {folder}: {e.strerror} - choose another folder with --out") from None
    return ArchiveResult(folder, issues)


def page_html(settings: Settings, issue: Issue) -> str:
    """The issue as sent, for nobody in particular, with a link back to the index."""
    unsubscribe = unsubscribe_url(settings.publication.base_url, PLACEHOLDERS["token"])
    text = issue.html.replace(unsubscribe, UNSUBSCRIBE_PAGE)
    text = personalise(text, VISITOR, markup=True)
    # The "Im Browser ansehen" link would point at this very page.
    self_link = re.escape(html.escape(web_url(settings, issue.slug)))
    text = re.sub(rf'(?:\s*·\s*)?<a\b[^>]*href="{self_link}"[^>]*>.*?</a>', "", text, flags=re.S)
    back = _BACK.format(name=html.escape(settings.publication.name))
    return re.sub(r"(<body\b[^>]*>)", lambda m: m.group(1) + back, text, count=1)


def index_html(settings: Settings, issues: list[Issue]) -> str:
    name = settings.publication.name
    body = _PAGES.from_string(_INDEX).render(name=name, issues=issues)
    return _layout(f"{name} - Archiv", name, body)


def unsubscribe_html(settings: Settings) -> str:
    pub = settings.publication
    body = _PAGES.from_string(_UNSUBSCRIBE).render(
        name=pub.name, email=settings.impressum.email or pub.reply_to or pub.sender_address,
        privacy_url=pub.privacy_url)
    return _layout(f"{pub.name} abbestellen", pub.name, body)


def _layout(title: str, name: str, body: str) -> str:
    return _PAGES.from_string(_LAYOUT).render(title=title, name=name, body=Markup(body))


def feed_xml(settings: Settings, issues: list[Issue]) -> bytes:
    """RSS 2.0 of the sent issues, newest first."""
    pub = settings.publication
    ET.register_namespace("atom", ATOM)
    rss = ET.Element("rss", version="2.0")
    channel = ET.SubElement(rss, "channel")
    archive = f"{pub.base_url.rstrip('/')}/archive/"
    _text(channel, "title", pub.name)
    _text(channel, "link", archive)
    _text(channel, "description", f"Alle Ausgaben des Newsletters {pub.name}")
    _text(channel, "language", pub.language)
    ET.SubElement(channel, f"{{{ATOM}}}link", href=archive + "feed.xml", rel="self", type="application/rss+xml")
    for issue in issues:
        item = ET.SubElement(channel, "item")
        url = web_url(settings, issue.slug)
        _text(item, "title", issue.subject)
        _text(item, "link", url)
        _text(item, "guid", url).set("isPermaLink", "true")
        _text(item, "pubDate", format_datetime(published(settings, issue)))
        if issue.preheader:
            _text(item, "description", issue.preheader)
    return ET.tostring(rss, encoding="utf-8", xml_declaration=True) + b"\n"


def published(settings: Settings, issue: Issue) -> datetime:
    """When the issue went out (sent_at), else midnight of its date, in the configured zone."""
    stamp = dates.parse_datetime(issue.sent_at or issue.issue_date)
    zone = dates.zone(settings.publication.timezone)
    return stamp.replace(tzinfo=zone) if stamp.tzinfo is None else stamp.astimezone(zone)


def _text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = value
    return element
