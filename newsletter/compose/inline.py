"""CSS inlining with premailer, and what keeps it from costing a process a third of a second.

premailer writes every rule of the template's <style> into the style attribute of each element
it matches, and keeps only @media rules (responsive columns, dark mode) in <style>. It never
touches the network here. Most of its time in a fresh process goes to parsing the same few
dozen inline style strings with cssutils; those strings come from the templates, not from the
content, so their parsed form is kept between runs in the user's cache folder, like the Jinja
bytecode (a new template or a new premailer/cssutils version simply parses again).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
import threading
import types
from pathlib import Path

from newsletter import files
from newsletter.errors import RenderError

_STYLES: dict[str, list[tuple[str, str]]] = {}
_LOCK = threading.Lock()
_LOADED: Path | None = None
MAX_STYLES = 4000


def cache_dir(name: str) -> Path | None:
    """~/.cache/newsletter/NAME (XDG_CACHE_HOME moves it), made on first use; None when it
    cannot be (a read-only home): the product then works without the cache."""
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "newsletter" / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder


class _NoNetwork:
    """premailer's HTTP session. It never fetches anything (allow_network=False); if it tried,
    it would fail here rather than reach out."""

    def get(self, url, *args, **kwargs):
        raise RenderError(f"The template links a remote stylesheet ({url}) - inline the CSS in <mj-style>")


def _premailer():
    """premailer, imported without `requests`: it imports requests only to fetch remote
    stylesheets, which we never let it do, and requests costs a tenth of a second a run."""
    if "premailer" not in sys.modules and "requests" not in sys.modules:
        sys.modules["requests"] = types.ModuleType("requests")
        try:
            import premailer
        finally:
            del sys.modules["requests"]
    import premailer
    import premailer.merge_style
    import premailer.premailer

    return premailer


def inline_css(html: str) -> str:
    """Inline the CSS; keep @media rules (responsive columns, dark mode) in <style>."""
    import cssutils

    premailer = _premailer()
    cssutils.log.setLevel(logging.CRITICAL)
    _use_style_cache(premailer)
    grown = len(_STYLES)
    inlined = premailer.Premailer(
        html,
        allow_network=False,
        keep_style_tags=False,
        strip_important=False,
        remove_classes=False,
        disable_validation=True,
        align_floating_images=False,  # no floats here; it re-parses every <img> style
        disable_basic_attributes=["width", "height", "align", "bgcolor"],
        cssutils_logging_level=logging.CRITICAL,
        session=_NoNetwork(),
    ).transform(pretty_print=False)
    if len(_STYLES) != grown:
        _save_styles()
    # lxml drops the doctype; without it clients render in quirks mode.
    return inlined if inlined.lstrip()[:9].lower() == "<!doctype" else "<!doctype html>" + inlined


def _use_style_cache(premailer) -> None:
    """Route premailer's parsing of inline styles through the kept results.

    premailer re-validates every inline style against cssutils' profiles, compiling hundreds of
    regexes on first use: the CSS is our templates' own, and `disable_validation` already covers
    <style>, so styles are parsed without validation."""
    global _LOADED
    merge_style = premailer.merge_style
    if getattr(merge_style.csstext_to_pairs, "kept", False):
        return
    original = inspect.unwrap(merge_style.csstext_to_pairs)
    lock = getattr(merge_style.csstext_to_pairs, "_lock", None) or threading.RLock()

    def csstext_to_pairs(csstext: str, validate: bool = False) -> list[tuple[str, str]]:
        with _LOCK:
            hit = _STYLES.get(csstext)
        if hit is None:
            with lock:  # cssutils is not thread-safe (premailer's own lock)
                hit = [tuple(pair) for pair in original(csstext, validate=False)]
            with _LOCK:
                _STYLES[csstext] = hit
        return hit

    csstext_to_pairs.kept = True
    csstext_to_pairs._lock = lock  # the original looks its lock up by its module-level name
    merge_style.csstext_to_pairs = csstext_to_pairs
    premailer.premailer.csstext_to_pairs = csstext_to_pairs
    _LOADED = _style_file(premailer)
    _load_styles()


def _style_file(premailer) -> Path | None:
    from importlib.metadata import PackageNotFoundError, version

    folder = cache_dir("premailer")
    if folder is None:
        return None
    try:
        versions = f"{version('premailer')}-{version('cssutils')}"
    except PackageNotFoundError:
        return None
    return folder / f"styles-{versions}.json"


def _load_styles() -> None:
    if _LOADED is None:
        return
    try:
        stored = json.loads(_LOADED.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(stored, dict):
        with _LOCK:
            for text, pairs in stored.items():
                if isinstance(text, str) and isinstance(pairs, list):
                    _STYLES.setdefault(text, [tuple(p) for p in pairs if isinstance(p, list) and len(p) == 2])


def _save_styles() -> None:
    if _LOADED is None:
        return
    with _LOCK:
        kept = dict(list(_STYLES.items())[-MAX_STYLES:])
    try:
        files.atomic_write(_LOADED, json.dumps(kept, ensure_ascii=False).encode("utf-8"))
    except OSError:
        pass  # a cache that cannot be written only costs time
