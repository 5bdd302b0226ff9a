"""Headless Chromium (Debian's, driven by Playwright), offline: what screenshots, the contrast
check and the advertiser's proof (Beleg) see.

Every image request gets a grey placeholder with the width and height its <img> declares, and
every other request is refused, so nothing leaves the machine and a page renders with the
layout readers get, without a network. Chromium and Playwright are
optional: without them, `chromium()` raises BrowserMissing with the commands that install them.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path

from newsletter.errors import ConfigError

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-sync"]
IMAGE_TIMEOUT = 5  # seconds for an image that is fetched for real
INSTALL = "apt-get install chromium and pip install -e '.[browser]' (Playwright)"


class BrowserMissing(ConfigError):
    """Chromium or Playwright is not installed (or Chromium does not start)."""


@contextmanager
def chromium() -> Iterator[object]:
    """A launched headless Chromium (a Playwright Browser), closed afterwards."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BrowserMissing(f"Playwright is not installed - {INSTALL}") from None
    if not CHROMIUM.exists():
        raise BrowserMissing(f"Chromium is not installed at {CHROMIUM} - {INSTALL}")
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        except PlaywrightError as e:
            raise BrowserMissing(f"Chromium at {CHROMIUM} does not start ({str(e).splitlines()[0]}) - "
                                 "reinstall it: apt-get install --reinstall chromium") from None
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, html: str, *, width: int = 600, scheme: str = "light", height: int = 800,
              fetch: tuple[str, ...] = (), missed: list[str] | None = None, scale: float = 1):
    """A new page (in its own context) showing `html` offline; close it with `page.context.close()`.

    `fetch`: image URLs to load from the network after all (the one ad of a Beleg); one that
    cannot be loaded gets the placeholder too and is added to `missed`."""
    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=scale,
                                  color_scheme=scheme)
    page = context.new_page()
    sizes = declared_sizes(html)
    page.route("**/*", fetching(set(fetch), missed if missed is not None else [], sizes) if fetch else offline(sizes))
    page.set_content(html, wait_until="load")
    return page


def fetching(urls: set[str], missed: list[str], sizes: dict[str, tuple[int, int]]):
    """Like `offline`, but the images in `urls` are fetched for real (within IMAGE_TIMEOUT)."""
    from playwright.sync_api import Error as PlaywrightError

    rest = offline(sizes)

    def handle(route) -> None:
        request = route.request
        if request.resource_type == "image" and request.url in urls:
            try:
                response = route.fetch(timeout=IMAGE_TIMEOUT * 1000)
                if response.ok:
                    route.fulfill(response=response)
                    return
            except PlaywrightError:
                pass
            missed.append(request.url)
        rest(route)
    return handle


def offline(sizes: dict[str, tuple[int, int]]):
    """A route handler: images get a grey placeholder of the width and height the HTML declares
    for them (so the layout is the one readers get); nothing else leaves the machine."""
    def handle(route) -> None:
        request = route.request
        if request.url.startswith(("data:", "about:")):
            route.continue_()
        elif request.resource_type == "image":
            route.fulfill(status=200, content_type="image/png", body=placeholder_of(*sizes.get(request.url, (4, 3))))
        else:
            route.abort()
    return handle


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sizes: dict[str, tuple[int, int]] = {}

    def handle_starttag(self, tag, attrs):
        if tag != "img":
            return
        a = dict(attrs)
        try:
            width, height = int(str(a.get("width", "")).rstrip("px")), int(str(a.get("height", "")).rstrip("px"))
        except ValueError:
            return
        if a.get("src") and width > 0 and height > 0:
            self.sizes.setdefault(a["src"], (width, height))


def declared_sizes(html: str) -> dict[str, tuple[int, int]]:
    """Image URL -> (width, height) as its <img> declares them."""
    parser = _Images()
    parser.feed(html)
    parser.close()
    return parser.sizes


@lru_cache(maxsize=64)
def placeholder_of(width: int, height: int) -> bytes:
    """A grey placeholder with the aspect ratio of width x height (at most 1200 px wide)."""
    scale = min(1.0, 1200 / width, 1200 / height)
    return placeholder_png(max(1, round(width * scale)), max(1, round(height * scale)))


def placeholder_png(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (200, 205, 210)) -> bytes:
    """A solid-colour 8-bit RGB PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = (b"\x00" + bytes(rgb) * width) * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PLACEHOLDER_PNG = placeholder_png()
