"""Untrusted text and HTML from imports, made safe once, before it reaches the store."""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

import nh3

# Inline and simple block markup an editor's teaser or body may keep.
ALLOWED_TAGS = {
    "a", "b", "strong", "i", "em", "u", "br", "p", "ul", "ol", "li", "h3", "h4",
    "blockquote", "sub", "sup", "small", "span",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = {"https", "mailto"}

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_SPACE = re.compile(r"\s+")
# '%%name%%' marks per-recipient values in a rendered issue; imported text must never be able
# to form one (it would pull each reader's token or address into an attacker's link).
_MARKER = re.compile(r"%{2,}")


def _defuse(text: str) -> str:
    return _MARKER.sub("%", text)


def clean_text(value: object) -> str:
    """One line of plain text: tags removed, entities decoded, control characters and
    line breaks collapsed (so it can never smuggle a header line)."""
    text = html.unescape(nh3.clean(str(value), tags=set(), clean_content_tags={"script", "style"}))
    text = unicodedata.normalize("NFC", _CONTROL.sub(" ", text))
    return _defuse(_SPACE.sub(" ", text).strip())


def clean_html(value: object) -> str:
    """Sanitised HTML: no script, style, iframe, event handler or javascript: URL, and no
    element nested deeper than MAX_DEPTH."""
    text = unicodedata.normalize("NFC", _CONTROL.sub(" ", str(value)))
    cleaned = nh3.clean(
        text,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener",
        strip_comments=True,
    )
    return _defuse(limit_depth(cleaned.strip()))


# Teasers need a few levels (a link in bold in a list item in a quote); thousands of nested tags
# crash the MJML renderer (a stack overflow in native code), so deeper elements are dropped and
# their text kept.
MAX_DEPTH = 16
VOID = {"br", "img", "hr", "wbr"}


class _Flattener(HTMLParser):
    """Re-emits well-formed HTML (as nh3 writes it) without the elements below MAX_DEPTH."""

    def __init__(self, limit: int) -> None:
        super().__init__(convert_charrefs=False)
        self.limit = limit
        self.out: list[str] = []
        self.open: list[tuple[str, bool]] = []  # (tag, kept) per open element
        self.flattened = False

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            self.out.append(self.get_starttag_text() or "")
            return
        kept = sum(1 for _, k in self.open if k) < self.limit
        self.flattened |= not kept
        self.open.append((tag, kept))
        if kept:
            self.out.append(self.get_starttag_text() or "")

    def handle_startendtag(self, tag, attrs):
        self.out.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag):
        while self.open:
            name, kept = self.open.pop()
            if kept:
                self.out.append(f"</{name}>")
            if name == tag:
                return

    def handle_data(self, data):
        self.out.append(data)

    def handle_entityref(self, name):
        self.out.append(f"&{name};")

    def handle_charref(self, name):
        self.out.append(f"&#{name};")


def depth(value: str) -> int:
    """How deep the elements of `value` nest."""
    deepest, level = 0, 0
    for match in re.finditer(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)[^>]*?(/?)>", value):
        if match[2].lower() in VOID or match[3]:
            continue
        level = max(level - 1, 0) if match[1] else level + 1
        deepest = max(deepest, level)
    return deepest


def limit_depth(value: str, limit: int = MAX_DEPTH) -> str:
    """`value` (well-formed HTML) with the elements nested deeper than `limit` dropped, their text kept."""
    if not value or value.count("<") <= limit or depth(value) <= limit:
        return value
    flattener = _Flattener(limit)
    flattener.feed(value)
    flattener.close()
    for name, kept in reversed(flattener.open):
        if kept:
            flattener.out.append(f"</{name}>")
    return "".join(flattener.out)


class _TextExtractor(HTMLParser):
    BLOCKS = {"p", "ul", "ol", "h3", "h4", "blockquote", "div"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        if tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a":
            self.links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag):
        if tag == "a" and self.links:
            href = self.links.pop()
            if href:
                self.parts.append(f" ({href.removeprefix('mailto:')})")
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data):
        self.parts.append(_SPACE.sub(" ", data))


def html_to_text(value: str) -> str:
    """Plain text of sanitised HTML: paragraphs kept, links written out as 'text (URL)'."""
    parser = _TextExtractor()
    parser.feed(value or "")
    parser.close()
    text = "".join(parser.parts)
    paragraphs = []
    for block in re.split(r"\n[ \t]*\n", text):
        lines = [" ".join(line.split()) for line in block.split("\n")]
        paragraphs.append("\n".join(line for line in lines if line))
    return "\n\n".join(p for p in paragraphs if p)
