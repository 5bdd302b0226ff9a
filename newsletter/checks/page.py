"""An issue's HTML as the checks see it, parsed once: lang, images, links, CSS, and which text
is visible and which hidden."""

from __future__ import annotations

import re
from html.parser import HTMLParser


def norm(text: str) -> str:
    """Whitespace collapsed: how texts are compared."""
    return " ".join(text.split())


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
INVISIBLE = {"head", "style", "script", "title"}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none", re.I)
_COMMENT_HREF = re.compile(r"\bhref\s*=\s*[\"']([^\"']*)", re.I)


class Page(HTMLParser):
    """What the checks need from an HTML document: lang, images, links, CSS and its texts."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []          # <a>/<area> hrefs, also those in conditional comments
        self.image_urls: list[str] = []     # <img src> and background attributes
        self.link_tags: list[dict[str, str]] = []
        self.styles: list[str] = []         # contents of <style> elements
        self.css: list[str] = []            # <style> contents, inline styles and comments
        self._visible: list[str] = []
        self._hidden: list[str] = []
        self._stack: list[tuple[str, bool, bool]] = []  # (tag, hidden, invisible)
        self.feed(html)
        self.close()

    @property
    def visible_text(self) -> str:
        return norm("".join(self._visible))

    @property
    def hidden_text(self) -> str:
        return norm("".join(self._hidden))

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "html" and self.lang is None:
            self.lang = a.get("lang", "")
        if tag == "img":
            self.images.append(a)
            self.image_urls.append(a.get("src", ""))
        if "background" in a:
            self.image_urls.append(a["background"])
        if tag in ("a", "area") and "href" in a:
            self.links.append(a["href"])
        if tag == "link":
            self.link_tags.append(a)
        if "style" in a:
            self.css.append(a["style"])
        self._visible.append(" ")
        if tag not in VOID:
            hidden, invisible = self._state()
            self._stack.append((tag, hidden or bool(_HIDDEN_STYLE.search(a.get("style", ""))),
                                invisible or tag in INVISIBLE))
            if tag == "style":
                self.styles.append("")

    def handle_endtag(self, tag):
        self._visible.append(" ")
        if any(t == tag for t, _, _ in self._stack):
            while self._stack and self._stack.pop()[0] != tag:
                pass

    def handle_data(self, data):
        if self._stack and self._stack[-1][0] == "style":
            self.styles[-1] += data
            self.css.append(data)
            return
        hidden, invisible = self._state()
        if not invisible:
            (self._hidden if hidden else self._visible).append(data)

    def handle_comment(self, data):
        # Outlook's conditional comments carry real markup (VML buttons, styles).
        self.css.append(data)
        self.links.extend(_COMMENT_HREF.findall(data))

    def _state(self) -> tuple[bool, bool]:
        return self._stack[-1][1:] if self._stack else (False, False)
