"""`newsletter preview --screenshot DIR`: desktop.png, mobile.png and dark.png of an issue, taken
with headless Chromium (`newsletter.browser`), offline.

Data flow: the personalised HTML (`web.view.make_view`) → one browser context per shot
(600 px light, 375 px light, 600 px dark; full page height) → PNG files, each written whole.
dark.png is taken with the browser in dark mode, so the mail's own dark CSS applies; a mail
without such rules gets the inversion instead, as the clients that recolour mail (Gmail app,
Outlook) would do.
"""

from __future__ import annotations

from pathlib import Path

from newsletter import files
from newsletter.browser import chromium, open_page
from newsletter.errors import InputError
from newsletter.web.preview_page import INVERT
from newsletter.web.view import has_dark_css

SHOTS = (("desktop.png", 600, "light"), ("mobile.png", 375, "light"), ("dark.png", 600, "dark"))


def screenshots(html: str, folder: Path) -> list[Path]:
    """desktop.png (600 px), mobile.png (375 px) and dark.png (600 px), full page height."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"Cannot write to {folder}: {e.strerror} - choose another folder") from None
    invert = not has_dark_css(html)
    paths = []
    with chromium() as browser:
        for name, width, scheme in SHOTS:
            page = open_page(browser, html, width=width, scheme=scheme)
            try:
                if scheme == "dark" and invert:
                    page.add_style_tag(content=f"html, img {{ {INVERT}; }}")
                data = page.screenshot(full_page=True)
            finally:
                page.context.close()
            try:
                paths.append(files.atomic_write(folder / name, data))
            except OSError as e:
                raise InputError(f"Cannot write {folder / name}: {e.strerror} - choose another folder") from None
    return paths
