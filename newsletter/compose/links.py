"""The one step between rendering an issue and building its messages where links change.

`rewrite_links` hands every link of the rendered HTML (each `<a href>`) and every URL written out
in the text part to a `Rewrite`, once per issue, and puts back what it returns; a rewrite that
returns the URL unchanged leaves it alone. Links that are the reader's own (the unsubscribe
link, with its placeholder token) are never offered: they must reach the reader as they are.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from newsletter.compose.personal import PLACEHOLDERS

# (url, where) -> the URL to use instead; `where` is "html" or "text".
Rewrite = Callable[[str, str], str]

_HREF = re.compile(r'(<a\s[^>]*?\bhref=")([^"]*)(")', re.I)  # links readers follow, not <link> stylesheets
_TEXT_URL = re.compile(r"https://[^\s<>()\"]+")
_PERSONAL = tuple(PLACEHOLDERS.values())


def rewrite_links(html_part: str, text_part: str, rewrite: Rewrite) -> tuple[str, str]:
    """Both parts with their links passed through `rewrite`."""
    def in_html(m: re.Match) -> str:
        url = html.unescape(m.group(2))
        if _personal(url):
            return m.group(0)
        return m.group(1) + html.escape(rewrite(url, "html"), quote=True) + m.group(3)

    def in_text(m: re.Match) -> str:
        url = m.group(0)
        trailing = re.search(r"[.,;:!?]+$", url)
        cut = url[: trailing.start()] if trailing else url
        if _personal(cut):
            return url
        return rewrite(cut, "text") + (trailing.group(0) if trailing else "")

    return _HREF.sub(in_html, html_part), _TEXT_URL.sub(in_text, text_part)


def _personal(url: str) -> bool:
    return any(marker in url for marker in _PERSONAL)
