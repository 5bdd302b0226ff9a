"""CSS inlining with premailer, through its public API only.

premailer writes every rule of the template's <style> into the style attribute of each element
it matches, and keeps only @media rules (responsive columns, dark mode) in <style>. It never
touches the network here (`allow_network=False`, no external files), and cssutils' warnings
about the `mso-` properties of MJML's output are silenced through premailer's own option.
"""

from __future__ import annotations

import logging

OPTIONS = {
    "allow_network": False,
    "allow_loading_external_files": False,
    "keep_style_tags": False,
    "strip_important": False,
    "remove_classes": False,
    "disable_validation": True,      # the CSS is our templates' own; validating it costs a third of the run
    "align_floating_images": False,  # no floats here; it re-parses every <img> style
    "disable_basic_attributes": ["width", "height", "align", "bgcolor"],
    "cssutils_logging_level": logging.CRITICAL,
}


def inline_css(html: str) -> str:
    """Inline the CSS; keep @media rules (responsive columns, dark mode) in <style>."""
    from premailer import Premailer

    inlined = Premailer(html, **OPTIONS).transform(pretty_print=False)
    # lxml drops the doctype; without it clients render in quirks mode.
    return inlined if inlined.lstrip()[:9].lower() == "<!doctype" else "<!doctype html>" + inlined
