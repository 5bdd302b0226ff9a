"""The advertiser's Beleg (proof of placement): for each ad of an issue, an HTML page and a PDF
with the ad block as it was sent (a screenshot from headless Chromium), the readers reached and
the human clicks on the ad's link.

    stored issue → its HTML for a sample reader → Chromium, 600 px → screenshot of the ad block
    → reports/beleg.html.j2 (screenshot inline) → beleg-….html, and printed → beleg-….pdf
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

from newsletter import files
from newsletter.browser import chromium, open_page
from newsletter.config import Settings
from newsletter.errors import InputError
from newsletter.mail.export import export
from newsletter.reports.issue import issue_report
from newsletter.reports.pages import beleg_page
from newsletter.store import Database
from newsletter.store.db import Row
from newsletter.store.issues import Issue, issue_items

AD_BLOCK = "div.nl-ad"     # the ad's section in templates/issue.mjml.j2 (css-class="nl-ad")


@dataclass
class Beleg:
    ad: Row
    html: Path
    pdf: Path
    image_missing: bool     # the ad's image could not be fetched; the Beleg shows a placeholder


def belege(db: Database, settings: Settings, issue: Issue, ads: list[str], out_dir: Path, *,
           fetch_images: bool = True) -> list[Beleg]:
    """One Beleg per ad in `ads` (ids or URLs of ads in the issue, or "all")."""
    report = issue_report(db, settings, issue)
    chosen = _chosen_ads(issue, [e["item"] for e in issue_items(db, issue.id) if e["kind"] == "ad"], ads)
    html = export(settings, issue, "html").decode("utf-8")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"Cannot write to {out_dir}: {e.strerror} - choose another folder with --out") from None
    made = []
    with chromium() as browser:
        for ad in chosen:
            link = next((link for link in report.links if link.kind == "ad" and link.item_id == ad["id"]), None)
            missed: list[str] = []
            shot = _ad_screenshot(browser, html, ad, link, missed, fetch_images)
            page_html = beleg_page(settings, report, ad, link, "data:image/png;base64," + base64.b64encode(shot).decode(),
                                   placeholder=bool(missed) or not fetch_images)
            stem = f"beleg-{issue.slug}-anzeige-{ad['id']}-{_slug(ad['advertiser'] or ad['title'])}"
            html_path = _write(out_dir / f"{stem}.html", page_html.encode("utf-8"))
            pdf_path = _write(out_dir / f"{stem}.pdf", _pdf(browser, page_html))
            made.append(Beleg(ad, html_path, pdf_path, bool(missed)))
    return made


def _chosen_ads(issue: Issue, in_issue: list[Row], refs: list[str]) -> list[Row]:
    if not in_issue:
        raise InputError(f"Issue {issue.slug} has no ads - there is nothing to give a Beleg for")
    if any(ref.strip().lower() == "all" for ref in refs):
        return in_issue
    chosen = []
    for ref in refs:
        found = next((ad for ad in in_issue if ref.strip() in (str(ad["id"]), ad["url"])), None)
        if found is None:
            listed = ", ".join(f"{ad['id']} ({ad['advertiser'] or ad['title']})" for ad in in_issue)
            raise InputError(f"Ad {ref!r} is not in issue {issue.slug} - its ads are: {listed} (or use --ad all)")
        if found not in chosen:
            chosen.append(found)
    return chosen


def _ad_screenshot(browser, html: str, ad: Row, link, missed: list[str], fetch: bool) -> bytes:
    """The ad's block as rendered at 600 px, found by the link it carries."""
    images = (ad["image"],) if fetch and ad.get("image") else ()
    page = open_page(browser, html, width=600, height=900, fetch=images, missed=missed, scale=2)
    try:
        blocks = page.locator(AD_BLOCK)
        for index in range(blocks.count()):
            block = blocks.nth(index)
            hrefs = block.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
            if any(_same_link(h or "", ad, link) for h in hrefs):
                return block.screenshot()
    finally:
        page.context.close()
    raise InputError(f"The ad {ad['title']!r} is not laid out in the issue's HTML (no {AD_BLOCK} with its link) "
                     "- keep css-class=\"nl-ad\" on the ad's section in issue.mjml.j2")


def _same_link(href: str, ad: Row, link) -> bool:
    return href == ad["url"] or (link is not None and href.endswith("/c/" + link.code))


def _pdf(browser, html: str) -> bytes:
    page = open_page(browser, html, width=794, height=1123)
    try:
        page.emulate_media(media="print")
        return page.pdf(format="A4", print_background=True, prefer_css_page_size=False,
                        margin={"top": "12mm", "bottom": "12mm", "left": "15mm", "right": "15mm"})
    finally:
        page.context.close()


def _write(path: Path, data: bytes) -> Path:
    try:
        return files.atomic_write(path, data)
    except OSError as e:
        raise InputError(f"Cannot write {path}: {e.strerror} - choose another folder with --out") from None


_UMLAUTS: dict[str, str | int | None] = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"}


def _slug(text: str) -> str:
    plain = text.lower().translate(str.maketrans(_UMLAUTS))
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:40] or "anzeige"
