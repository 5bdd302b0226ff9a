"""A click map: the issue's HTML with each counted link's human clicks beside it, and a banner
with the totals (`newsletter preview ISSUE --clicks`). Only for looking: never sent."""

from __future__ import annotations

import html
import re

from newsletter.compose.tracking import PATH
from newsletter.reports.issue import IssueReport

BADGE = ("display:inline-block;margin:0 6px 2px 0;padding:1px 7px;border-radius:9px;background:#ffd400;"
         "color:#000;font:bold 12px/1.4 Helvetica,Arial,sans-serif;text-decoration:none;vertical-align:middle")
BANNER = ("margin:0;padding:10px 16px;background:#1f2933;color:#fff;font:14px/1.5 Helvetica,Arial,sans-serif;"
          "text-align:center")
_ANCHOR = re.compile(r'(<a\s[^>]*?\bhref=")([^"]*)("[^>]*>)', re.I)
_BODY = re.compile(r"(<body\b[^>]*>)", re.I)


def click_map(page: str, report: IssueReport, base_url: str) -> str:
    by_code = {link.code: link for link in report.links}
    prefix = base_url.rstrip("/") + PATH

    def badge(m: re.Match) -> str:
        url = html.unescape(m.group(2))
        link = by_code.get(url[len(prefix):]) if url.startswith(prefix) else None
        if link is None:
            return m.group(0)
        title = f"{link.human} Klicks von Menschen, geschätzt {link.unique} Leser mit Klick, {link.automated} automatische Abrufe"
        return (m.group(0) + f'<span class="nl-clickmap" title="{html.escape(title)}" style="{BADGE}">'
                f"{link.human}</span>")

    marked = _ANCHOR.sub(badge, page)
    if report.tracked:
        rate = "–" if report.rate is None else f"{report.rate:.1f}".replace(".", ",")
        summary = (f"Klickkarte: {report.human} Klicks von Menschen, geschätzt {report.readers} Leser "
                   f"({rate} je 100 zugestellte E-Mails); {report.automated} automatische Abrufe sind nicht mitgezählt. "
                   "Die gelben Zahlen stehen an jedem Link.")
    else:
        summary = "Klickkarte: Für diese Ausgabe wurden keine Klicks gezählt ([tracking] clicks war aus)."
    banner = f'<p class="nl-clickmap-banner" role="note" style="{BANNER}">{html.escape(summary)}</p>'
    return _BODY.sub(lambda m: m.group(1) + banner, marked, count=1)
