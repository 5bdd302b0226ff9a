"""Render an issue once: Jinja2 → MJML → HTML (mjml-python) → inlined CSS (premailer), and
the plain-text part from its own template.

Personal values are placeholders (`compose.personal`) that pass through every stage
unchanged; the message builder fills them per recipient without rendering again.

`environment()` is also how the other templates a publisher may override are found: the
confirmation mail and the pages of `newsletter serve`.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import jinja2
from markupsafe import Markup

from newsletter import dates
from newsletter.compose.inline import inline_css
from newsletter.compose.personal import PLACEHOLDERS
from newsletter.config import Settings
from newsletter.content.sanitize import html_to_text, limit_depth
from newsletter.errors import RenderError
from newsletter.files import cache_dir

PACKAGE_TEMPLATES = Path(__file__).parents[1] / "_templates"  # in an installed wheel
SOURCE_TEMPLATES = Path(__file__).parents[2] / "templates"  # in a checkout

TEXT_WIDTH = 78


@dataclass
class Rendered:
    mjml: str
    html: str
    text: str


def default_templates() -> Path:
    return PACKAGE_TEMPLATES if PACKAGE_TEMPLATES.is_dir() else SOURCE_TEMPLATES


def environment(override: Path | None = None) -> jinja2.Environment:
    """Jinja environment: the configured templates folder first, then the shipped templates."""
    paths = [str(override)] if override else []
    if override and not override.is_dir():
        raise RenderError(f"Templates folder {override} does not exist - fix [publication] templates_dir")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(paths + [str(default_templates())]),
        bytecode_cache=_bytecode_cache(),
        # HTML and MJML are escaped; text parts and subjects are not (they are no markup).
        autoescape=lambda name: name is None or not name.endswith((".txt.j2", ".subject.j2")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["german_date"] = dates.german_long
    env.filters["short_date"] = dates.german_short
    env.filters["text"] = lambda html: html_to_text(str(html))
    env.filters["caption"] = caption
    return env


def caption(text: str | None, credit: str | None) -> str:
    """A photo's caption and credit as one line: 'Caption. Foto: Credit' after a full stop,
    'Caption; Foto: Credit' otherwise; either alone when the other is empty."""
    text, credit = (text or "").strip(), (credit or "").strip()
    if not credit:
        return text
    if not text:
        return f"Foto: {credit}"
    return f"{text}{' ' if text[-1] in '.!?…' else '; '}Foto: {credit}"


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs (keyed by source, so edits invalidate them):
    compiling the issue templates costs more than rendering them."""
    folder = cache_dir("jinja")
    return jinja2.FileSystemBytecodeCache(str(folder)) if folder else None


def render(settings: Settings, context: dict) -> Rendered:
    """Render MJML, HTML and text for one issue context (see `issue.context`)."""
    env = environment(settings.templates_dir)
    mjml_source = template(env, "issue.mjml.j2", context)
    text = wrap_text(template(env, "issue.txt.j2", context))
    html = inline_css(mjml_to_html(mjml_source))
    return Rendered(mjml=mjml_source, html=html, text=text)


def template(env: jinja2.Environment, name: str, context: dict) -> str:
    """One template rendered, or one line naming the template, the line and the fix."""
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as e:
        raise RenderError(f"Template error in {e.filename or e.name}, line {e.lineno}: {e.message} - fix the template") from None
    except jinja2.TemplateNotFound as e:
        raise RenderError(f"Template {e.name} not found - check [publication] templates_dir") from None
    except jinja2.TemplateError as e:
        where = _template_line(e)
        raise RenderError(f"Template error in {where}: {e.message} - fix the template") from None


def template_module(env: jinja2.Environment, name: str, context: dict):
    """The variables a template sets at its top level (its texts), or one line on an error."""
    try:
        return env.get_template(name).make_module(context)
    except jinja2.TemplateSyntaxError as e:
        raise RenderError(f"Template error in {e.filename or e.name}, line {e.lineno}: {e.message} - fix the template") from None
    except jinja2.TemplateNotFound as e:
        raise RenderError(f"Template {e.name} not found - check [publication] templates_dir") from None
    except jinja2.TemplateError as e:
        raise RenderError(f"Template error in {_template_line(e)}: {e.message} - fix the template") from None


def _template_line(error: Exception) -> str:
    """File and line of the innermost template frame in the traceback."""
    where = "the template"
    tb = error.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            where = f"{filename}, line {tb.tb_lineno}"
        tb = tb.tb_next
    return where


_IMG_HEIGHT = re.compile(r'(<img\b[^>]*\bheight="\d+"[^>]*\bstyle="[^"]*?)height:\s*\d+px')


def mjml_to_html(source: str) -> str:
    """The HTML of an MJML document. An image's height stays an attribute (the box a client
    that blocks images keeps free) but not a CSS height: where images show, they keep their
    own proportions."""
    from mjml import mjml2html

    try:
        html = mjml2html(source, disable_comments=True, fonts={})
    except ValueError as e:
        raise RenderError(f"MJML error: {e} - check the tags in your issue.mjml.j2") from None
    if 'lang="und"' in html[:200]:
        raise RenderError("The MJML has no <mjml lang=...> root - keep <mjml lang=\"{{ publication.language }}\">")
    # The body's wrapper is the main region (MJML makes it an "article"): readers of a
    # screen reader jump to it; a client that shows the mail in a page of its own drops it.
    html = html.replace('role="article"', 'role="main"', 1)
    return _IMG_HEIGHT.sub(r"\1height:auto", html)


_URL = re.compile(r"https?://\S+|mailto:\S+")


# What a placeholder stands for is measured at the length of a long real value, so the text
# part keeps its 78 columns once each reader's values are spliced in.
_EXPANDED = {"salutation": 44, "email": 48, "token": 29}
_STAND_IN = {name: chr(0xE000 + n) for n, name in enumerate(PLACEHOLDERS)}


def wrap_text(text: str) -> str:
    """Wrap at 78 columns keeping indentation and bullets; URLs stay whole (a line that is a
    URL alone may be longer); placeholders count as the values they stand for; no trailing
    spaces."""
    for name, marker in PLACEHOLDERS.items():
        text = text.replace(marker, _STAND_IN[name] * _EXPANDED[name])
    out = []
    for line in text.strip("\n").split("\n"):
        line = line.rstrip()
        if len(line) <= TEXT_WIDTH:
            out.append(line)
            continue
        lead = line[: len(line) - len(line.lstrip())]
        if line[len(lead):len(lead) + 2] in ("* ", "- "):
            lead += line[len(lead):len(lead) + 2]
        out.extend(textwrap.wrap(
            line[len(lead):], TEXT_WIDTH, initial_indent=lead, subsequent_indent=" " * len(lead),
            break_long_words=False, break_on_hyphens=False,
        ))
    wrapped = re.sub(r"\n{3,}", "\n\n", "\n".join(out)) + "\n"
    for name, marker in PLACEHOLDERS.items():
        wrapped = wrapped.replace(_STAND_IN[name] * _EXPANDED[name], marker)
    return wrapped


def safe_html(value: str | None) -> Markup | None:
    """Mark stored, already sanitised HTML as safe for the autoescaping templates; nesting is
    capped here too, so a row written by hand (only imports sanitise) cannot crash the renderer."""
    return Markup(limit_depth(value)) if value else None
