"""The composed demo issue in a real browser (Debian's Chromium via Playwright): responsive
columns, no horizontal scrolling on a phone, dark mode, and screenshots for review.

Images point at https URLs that are unreachable here; every request is intercepted, images
get a generated PNG and everything else except the file:// page is aborted.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from browsing import CHROMIUM, PNG_MAGIC, offline_page, png_size, unavailable

if not CHROMIUM.exists():
    unavailable(f"{CHROMIUM} does not exist", module_level=True)

from conftest import ARTIFACTS, GOLDEN, ISSUE_DATE  # noqa: E402

from newsletter.store.issues import get_issue, issue_items  # noqa: E402

pytestmark = pytest.mark.browser


def make_png(width: int, height: int, rgb: tuple[int, int, int] = (138, 28, 60)) -> bytes:
    """A solid-colour 8-bit RGB PNG, built by hand."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width  # filter type 0 per scanline
    return (PNG_MAGIC
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height))
            + chunk(b"IEND", b""))


IMAGE = make_png(40, 30)


@pytest.fixture
def issue_file(composed) -> Path:
    path = composed.root / "out" / ISSUE_DATE.isoformat() / "issue.html"
    assert path.is_file()
    return path


@pytest.fixture
def first_article_url(composed) -> str:
    """URL of the first article in WEITERE MELDUNGEN that has an image (two-column row)."""
    db = composed.store()
    issue = get_issue(db, ISSUE_DATE.isoformat())
    entries = [e for e in issue_items(db, issue.id) if e["section"] == "articles"]
    db.close()
    with_image = [e["item"] for e in entries if e["item"]["image"]]
    assert with_image, "the demo issue needs an article with an image"
    return composed.link(with_image[0]["url"])


@pytest.fixture
def open_issue(browser, issue_file):
    """open_issue(width, color_scheme="light") -> a loaded page; its context is closed afterwards."""
    contexts = []

    def open_(width: int, color_scheme: str = "light"):
        context = browser.new_context(viewport={"width": width, "height": 900}, device_scale_factor=1,
                                      color_scheme=color_scheme)
        contexts.append(context)
        return offline_page(context, issue_file.as_uri(), allow="file://", image=IMAGE)

    yield open_
    for context in contexts:
        context.close()


def box(page, selector: str) -> dict:
    locator = page.locator(selector).first
    locator.scroll_into_view_if_needed()
    result = locator.bounding_box()
    assert result, f"{selector} is not rendered"
    return result


def article_boxes(page, url: str) -> tuple[dict, dict]:
    image = box(page, f'a[href="{url}"] img')
    title = box(page, f'td.nl-title a[href="{url}"]')
    return image, title


def all_images_loaded(page) -> bool:
    return page.evaluate(
        "() => [...document.images].every(i => i.complete && i.naturalWidth === 40)"
    )


def scroll_width(page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth")


def save_screenshot(page, width: int) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"issue-{width}.png"
    data = page.screenshot(path=str(path), full_page=True)
    shot_width, shot_height = png_size(data)
    assert shot_width == width
    assert shot_height > 900  # the whole issue, not just the first screen


def test_phone_width_stacks_columns_without_horizontal_scrolling(open_issue, first_article_url):
    page = open_issue(375)
    assert all_images_loaded(page)
    assert scroll_width(page) <= 375
    image, title = article_boxes(page, first_article_url)
    # stacked: the image column sits above the text column, both spanning the card
    assert image["y"] + image["height"] <= title["y"] + 1, (image, title)
    assert image["width"] > 375 * 0.6
    assert not page.blocked, page.blocked
    save_screenshot(page, 375)


@pytest.mark.parametrize("width", [600, 800])
def test_desktop_width_puts_image_and_text_side_by_side(open_issue, first_article_url, width):
    page = open_issue(width)
    assert all_images_loaded(page)
    assert scroll_width(page) <= width
    image, title = article_boxes(page, first_article_url)
    # same row: the title starts right of the image and within the image's height
    assert title["x"] >= image["x"] + image["width"] - 1, (image, title)
    assert image["y"] - 1 <= title["y"] < image["y"] + image["height"], (image, title)
    assert image["width"] < 600 * 0.5
    assert not page.blocked, page.blocked
    if width == 600:
        save_screenshot(page, 600)


def test_dark_mode_changes_the_body_background(open_issue):
    background = "() => getComputedStyle(document.body).backgroundColor"
    light = open_issue(600, "light").evaluate(background)
    dark = open_issue(600, "dark").evaluate(background)
    assert light == "rgb(238, 241, 244)"  # #eef1f4 from mj-body
    assert dark != light
    assert dark == "rgb(18, 20, 23)"  # #121417 from the prefers-color-scheme rule


@pytest.mark.browser
@pytest.mark.parametrize("width", [600, 375])
def test_offline_placeholders_keep_each_images_declared_aspect_ratio(browser, width):
    """Screenshots, the Beleg and the click map drew every placeholder at 4:3: the 180x60 logo
    became 180x135 and the 552x184 ad banner 552x414."""
    import re

    from newsletter.browser import open_page

    html = (GOLDEN / "issue.html").read_text(encoding="utf-8")
    sizes = {}
    for tag in re.findall(r"<img\b[^>]*>", html):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', tag))
        sizes.setdefault(attrs["src"], (int(attrs["width"]), int(attrs["height"])))
    assert sizes and any(size == (552, 184) for size in sizes.values())
    page = open_page(browser, html, width=width)
    try:
        boxes = page.locator("img").evaluate_all(
            "imgs => imgs.map(i => [i.getAttribute('src'), i.getBoundingClientRect().width, i.getBoundingClientRect().height])")
    finally:
        page.context.close()
    for src, shown_width, shown_height in boxes:
        declared_width, declared_height = sizes[src]
        assert shown_height == pytest.approx(shown_width * declared_height / declared_width, abs=1.5), src
