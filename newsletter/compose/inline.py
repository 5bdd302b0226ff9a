"""CSS inlining with premailer, and what keeps it from costing a process a third of a second.

premailer writes every rule of the template's <style> into the style attribute of each element
it matches, and keeps only @media rules (responsive columns, dark mode) in <style>. It never
touches the network here. Most of its time in a fresh process goes to importing cssutils and
parsing the same CSS with it: the <style> blocks and the few dozen inline style strings come
from the templates, not from the content. So what premailer makes of them (the rules of each
<style> block with what is left for <style>, and the pairs of each inline style) is kept between
runs in the user's cache folder, like the Jinja bytecode, and cssutils is only imported when
something is not in it (a new template, or a new premailer/cssutils version, parses again).
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

_STYLES: dict[str, list[tuple[str, str]]] = {}     # inline style text -> its (property, value) pairs
_RULES: dict[str, dict] = {}                        # a <style> block -> its rules and leftover CSS
_LOCK = threading.Lock()
_LOADED: Path | None = None
MAX_STYLES = 4000
MAX_RULES = 200
KEY_VERSION = "2"   # of the options below that shape premailer's output


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


class _LazyCssutils(types.ModuleType):
    """Stands in for cssutils inside premailer until premailer really needs it: the first
    attribute asked for imports it (a twentieth of a second) and puts it in place."""

    def __getattr__(self, name: str):
        return getattr(_real_cssutils(), name)


def _real_cssutils():
    if isinstance(sys.modules.get("cssutils"), _LazyCssutils):
        del sys.modules["cssutils"]
    import cssutils

    cssutils.log.setLevel(logging.CRITICAL)
    for module in ("premailer.premailer", "premailer.merge_style"):
        if module in sys.modules:
            sys.modules[module].cssutils = cssutils
    return cssutils


def _premailer():
    """premailer, imported without `requests` (it imports it only to fetch remote stylesheets,
    which we never let it do; a tenth of a second a run) and with cssutils imported lazily."""
    if "premailer" not in sys.modules:
        stand_ins = {}
        if "requests" not in sys.modules:
            stand_ins["requests"] = types.ModuleType("requests")
        if "cssutils" not in sys.modules:
            stand_ins["cssutils"] = _LazyCssutils("cssutils")
        sys.modules.update(stand_ins)
        try:
            import premailer
            import premailer.merge_style
            import premailer.premailer
        finally:
            for name, module in stand_ins.items():
                if sys.modules.get(name) is module:
                    del sys.modules[name]
    import premailer
    import premailer.merge_style
    import premailer.premailer

    return premailer


def inline_css(html: str) -> str:
    """Inline the CSS; keep @media rules (responsive columns, dark mode) in <style>."""
    premailer = _premailer()
    _use_style_cache(premailer)
    grown = len(_STYLES) + len(_RULES)
    inlined = _kept_premailer(premailer)(
        html,
        allow_network=False,
        keep_style_tags=False,
        strip_important=False,
        remove_classes=False,
        disable_validation=True,
        align_floating_images=False,  # no floats here; it re-parses every <img> style
        disable_basic_attributes=["width", "height", "align", "bgcolor"],
        session=_NoNetwork(),
    ).transform(pretty_print=False)
    if len(_STYLES) + len(_RULES) != grown:
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


class _Leftover(str):
    """What premailer leaves in a <style> block (the @media rules), as the text it would write."""


_KEPT: list = []


def _kept_premailer(premailer):
    """premailer.Premailer with the parsing of each <style> block kept (see the module docstring)."""
    if _KEPT:
        return _KEPT[0]

    class KeptPremailer(premailer.Premailer):
        def _parse_style_rules(self, css_body, ruleset_index):
            key = f"{KEY_VERSION}\0{ruleset_index}\0{css_body or ''}"
            with _LOCK:
                hit = _RULES.get(key)
            if hit is None:
                rules, leftover = super()._parse_style_rules(css_body, ruleset_index)
                text = super()._css_rules_to_string(leftover) if leftover else None
                hit = {"rules": [[list(spec), selector, bulk] for spec, selector, bulk in rules], "leftover": text}
                with _LOCK:
                    _RULES[key] = hit
            rules = [(tuple(spec), selector, bulk) for spec, selector, bulk in hit["rules"]]
            return rules, ([_Leftover(hit["leftover"])] if hit["leftover"] is not None else [])

        def _css_rules_to_string(self, rules):
            if len(rules) == 1 and isinstance(rules[0], _Leftover):
                return str(rules[0])
            return super()._css_rules_to_string(rules)

    _KEPT.append(KeptPremailer)
    return KeptPremailer


def _style_file(premailer) -> Path | None:
    """The cache file for this premailer and this cssutils (told apart by its installed files, so
    that finding out costs no import of cssutils and no reading of package metadata)."""
    import importlib.util

    folder = cache_dir("premailer")
    spec = importlib.util.find_spec("cssutils")
    if folder is None or spec is None or not spec.origin:
        return None
    try:
        installed = Path(spec.origin).stat().st_mtime_ns
    except OSError:
        return None
    return folder / f"styles-{premailer.__version__}-{installed}-{KEY_VERSION}.json"


def _load_styles() -> None:
    if _LOADED is None:
        return
    try:
        stored = json.loads(_LOADED.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(stored, dict):
        return
    styles, rules = stored.get("styles"), stored.get("rules")
    with _LOCK:
        for text, pairs in (styles if isinstance(styles, dict) else {}).items():
            if isinstance(text, str) and isinstance(pairs, list):
                _STYLES.setdefault(text, [tuple(p) for p in pairs if isinstance(p, list) and len(p) == 2])
        for key, hit in (rules if isinstance(rules, dict) else {}).items():
            if isinstance(hit, dict) and isinstance(hit.get("rules"), list) and "leftover" in hit:
                _RULES.setdefault(key, hit)


def _save_styles() -> None:
    if _LOADED is None:
        return
    with _LOCK:
        kept = {"styles": dict(list(_STYLES.items())[-MAX_STYLES:]), "rules": dict(list(_RULES.items())[-MAX_RULES:])}
    try:
        files.atomic_write(_LOADED, json.dumps(kept, ensure_ascii=False).encode("utf-8"))
    except OSError:
        pass  # a cache that cannot be written only costs time
