"""`newsletter preview --screenshot DIR`: desktop.png, mobile.png and dark.png of an issue, taken
with headless Chromium (Debian's, via Playwright).

Data flow: the personalised HTML (`newsletter.preview.load_view`) → one browser context per shot
(600 px light, 375 px light, 600 px dark; full page height) → PNG files, written via .tmp and
os.replace. Each image request gets a generated grey PNG and every other request is aborted, so
screenshots work offline.

dark.png is taken with the browser in dark mode, so the mail's own dark CSS applies; a mail without
such rules gets the inversion instead, as the clients that recolour mail (Gmail app, Outlook) would do.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

from newsletter.errors import ConfigError, InputError
from newsletter.web.preview_page import INVERT, has_dark_css

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = (("desktop.png", 600, "light"), ("mobile.png", 375, "light"), ("dark.png", 600, "dark"))


def screenshots(html: str, folder: Path) -> list[Path]:
    """desktop.png (600 px), mobile.png (375 px) and dark.png (600 px), full page height."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ConfigError("Playwright is not installed - pip install playwright") from None
    if not CHROMIUM.exists():
        raise ConfigError("Chromium is not installed - apt-get install chromium")
    dark_css = has_dark_css(html)
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"Cannot write to {folder}: {e.strerror} - choose another folder") from None
    paths = []
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        except PlaywrightError as e:
            raise ConfigError(f"Chromium at {CHROMIUM} does not start ({str(e).splitlines()[0]}) - "
                              "reinstall it: apt-get install --reinstall chromium") from None
        try:
            for name, width, scheme in SHOTS:
                paths.append(_shoot(browser, html, folder / name, width, scheme, invert=scheme == "dark" and not dark_css))
        finally:
            browser.close()
    return paths


def _shoot(browser, html: str, path: Path, width: int, scheme: str, invert: bool) -> Path:
    context = browser.new_context(viewport={"width": width, "height": 800}, device_scale_factor=1, color_scheme=scheme)
    try:
        page = context.new_page()
        page.route("**/*", _offline)
        page.set_content(html, wait_until="load")
        if invert:
            page.add_style_tag(content=f"html, img {{ {INVERT}; }}")
        data = page.screenshot(full_page=True)
    finally:
        context.close()
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        raise InputError(f"Cannot write {path}: {e.strerror} - choose another folder") from None
    return path


def _offline(route) -> None:
    """Images get a grey placeholder; nothing else leaves the machine."""
    request = route.request
    if request.url.startswith(("data:", "about:")):
        route.continue_()
    elif request.resource_type == "image":
        route.fulfill(status=200, content_type="image/png", body=PLACEHOLDER_PNG)
    else:
        route.abort()


def placeholder_png(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (200, 205, 210)) -> bytes:
    """A solid-colour 8-bit RGB PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = (b"\x00" + bytes(rgb) * width) * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PLACEHOLDER_PNG = placeholder_png()
