"""Real-browser helpers for the browser tests: Debian's Chromium driven by Playwright, offline.

Locally a missing Chromium or playwright package skips those tests; under CI=true (where
.ci/run installs Chromium) it fails them.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def unavailable(reason: str, *, module_level: bool = False) -> None:
    """Skip locally; in CI (which installs Chromium) a missing browser is a failure."""
    message = f"{reason} - install it with: apt-get install chromium (and pip install playwright)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message, allow_module_level=module_level)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC, "not a PNG"
    assert data[12:16] == b"IHDR", "PNG without IHDR first"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} does not exist")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    with sync_playwright() as p:
        try:
            launched = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        except PlaywrightError as e:
            unavailable(f"Chromium at {CHROMIUM} does not start ({str(e).splitlines()[0]})")
        yield launched
        launched.close()


def offline_page(context, url: str, *, allow: str, image: bytes, wait_until: str = "load"):
    """A page of `context` opened at `url`: requests under `allow` go through, images get
    `image`, everything else is aborted and listed in `page.blocked`."""
    page = context.new_page()
    page.blocked = []

    def handle(route):
        request = route.request
        if request.url.startswith(allow):
            route.continue_()
        elif request.resource_type == "image":
            route.fulfill(status=200, content_type="image/png", body=image)
        else:
            page.blocked.append(request.url)
            route.abort()

    page.route("**/*", handle)
    page.goto(url, wait_until=wait_until)
    return page
