"""Preflight checks of a composed issue: what must hold before it goes to the readers.

Data flow: the stored issue (subject, preheader, HTML and text with placeholders) and its
frozen item list → the HTML parsed once (`Page`) → the `.eml` built for the sample reader →
named checks, each a `Result` (pass / warn / fail; `checkresult`) → a `Report`. The rules on
the built message itself live in `mailrules`. Optional last step: the message's SpamAssassin
score (`spamassassin -L -t`, local tests only).

The rules come from EMAIL-RULES.md (providers, RFCs, German law); each rule is one named check
so a failure says exactly which rule broke. `newsletter check` prints the report; `send` can
refuse an issue whose report has failures.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import date
from html.parser import HTMLParser
from urllib.parse import urlsplit

import sqlite_utils

from newsletter import dates, store
from newsletter.checks.result import Result, fail, listing, ok, warn
from newsletter.config import Settings
from newsletter.errors import NewsletterError
from newsletter.compose.issue import WARN_AT, export
from newsletter.checks.message import check_message, mime_parts
from newsletter.compose.render import PLACEHOLDERS, unsubscribe_url

SPAM_TIMEOUT = 60.0
REPLY_PREFIX = re.compile(r"^\s*(re|aw|fwd?|wg|antw)\s*:", re.I)
LABEL = re.compile(r"\banzeige\b", re.I)
LABEL_WINDOW = 120  # characters of text before an ad's title in which its label must stand
REMOTE_FONT_HOSTS = re.compile(r"fonts\.googleapis\.com|fonts\.gstatic\.com|use\.typekit\.net", re.I)


@dataclass
class Report:
    issue: dict
    results: list[Result] = field(default_factory=list)

    def _with(self, status: str) -> list[Result]:
        return [r for r in self.results if r.status == status]

    @property
    def passed(self) -> list[Result]:
        return self._with("pass")

    @property
    def warnings(self) -> list[Result]:
        return self._with("warn")

    @property
    def failed(self) -> list[Result]:
        return self._with("fail")

    def as_dict(self) -> dict:
        return {"issue": self.issue["slug"], "passed": len(self.passed), "warnings": len(self.warnings),
                "failed": len(self.failed), "results": [asdict(r) for r in self.results]}


def _norm(text: str) -> str:
    return " ".join(text.split())


# --- the HTML part, parsed once ----------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
INVISIBLE = {"head", "style", "script", "title"}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none", re.I)
_COMMENT_HREF = re.compile(r"\bhref\s*=\s*[\"']([^\"']*)", re.I)


class Page(HTMLParser):
    """What the checks need from an HTML document: lang, images, links, CSS and its texts."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []          # <a>/<area> hrefs, also those in conditional comments
        self.image_urls: list[str] = []     # <img src> and background attributes
        self.link_tags: list[dict[str, str]] = []
        self.styles: list[str] = []         # contents of <style> elements
        self.css: list[str] = []            # <style> contents, inline styles and comments
        self._visible: list[str] = []
        self._hidden: list[str] = []
        self._stack: list[tuple[str, bool, bool]] = []  # (tag, hidden, invisible)
        self.feed(html)
        self.close()

    @property
    def visible_text(self) -> str:
        return _norm("".join(self._visible))

    @property
    def hidden_text(self) -> str:
        return _norm("".join(self._hidden))

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "html" and self.lang is None:
            self.lang = a.get("lang", "")
        if tag == "img":
            self.images.append(a)
            self.image_urls.append(a.get("src", ""))
        if "background" in a:
            self.image_urls.append(a["background"])
        if tag in ("a", "area") and "href" in a:
            self.links.append(a["href"])
        if tag == "link":
            self.link_tags.append(a)
        if "style" in a:
            self.css.append(a["style"])
        self._visible.append(" ")
        if tag not in VOID:
            hidden, invisible = self._state()
            self._stack.append((tag, hidden or bool(_HIDDEN_STYLE.search(a.get("style", ""))),
                                invisible or tag in INVISIBLE))
            if tag == "style":
                self.styles.append("")

    def handle_endtag(self, tag):
        self._visible.append(" ")
        if any(t == tag for t, _, _ in self._stack):
            while self._stack and self._stack.pop()[0] != tag:
                pass

    def handle_data(self, data):
        if self._stack and self._stack[-1][0] == "style":
            self.styles[-1] += data
            self.css.append(data)
            return
        hidden, invisible = self._state()
        if not invisible:
            (self._hidden if hidden else self._visible).append(data)

    def handle_comment(self, data):
        # Outlook's conditional comments carry real markup (VML buttons, styles).
        self.css.append(data)
        self.links.extend(_COMMENT_HREF.findall(data))

    def _state(self) -> tuple[bool, bool]:
        return self._stack[-1][1:] if self._stack else (False, False)


# --- running the checks -------------------------------------------------------------------------

@dataclass
class Context:
    settings: Settings
    issue: dict
    items: list[dict]
    page: Page
    text: str           # the stored text part, whitespace normalised
    today: date
    eml: bytes | None   # the message for the sample reader (None: it cannot be built)
    eml_error: str = ""


def check_issue(settings: Settings, ref: str, *, spamassassin: bool | None = None) -> Report:
    """Load issue `ref` (id or slug) and run every check on it."""
    settings.require_config()
    with closing(store.open_db(settings.db_path, create=False)) as db:
        return run_checks(settings, store.get_issue(db, ref), db=db, spamassassin=spamassassin)


def run_checks(settings: Settings, issue: dict, *, db: sqlite_utils.Database | None = None,
               spamassassin: bool | None = None) -> Report:
    """Every check on a stored issue. `spamassassin=None` follows `[check] spamassassin`."""
    if db is None:
        with closing(store.open_db(settings.db_path, create=False)) as own:
            return run_checks(settings, issue, db=own, spamassassin=spamassassin)
    items = store.issue_items(db, issue["id"])
    eml, error = _build_eml(settings, issue)
    ctx = Context(settings, issue, items, Page(issue["html"] or ""), _norm(issue["text"] or ""),
                  dates.today(settings.publication.timezone), eml, error)
    report = Report(issue)
    for check in CHECKS:
        report.results.extend(check(ctx))
    run_spam = settings.check.spamassassin if spamassassin is None else spamassassin
    if run_spam and eml is not None:
        report.results.append(spam_check(eml, settings.check.spam_threshold))
    return report


def _build_eml(settings: Settings, issue: dict) -> tuple[bytes | None, str]:
    try:
        return export(settings, issue, "eml"), ""
    except NewsletterError as e:
        return None, str(e)


# --- subject and preheader ----------------------------------------------------------------------

def subject_checks(ctx: Context) -> list[Result]:
    subject = (ctx.issue["subject"] or "").strip()
    if not subject:
        return [fail("subject.present", "the subject is empty - re-compose with --subject")]
    limit = ctx.settings.check.title_max
    prefix = REPLY_PREFIX.match(subject)
    return [
        ok("subject.present", subject),
        fail("subject.prefix", f"starts with {prefix.group(0).strip()!r} like a reply or forward - "
             "remove it (re-compose with --subject)") if prefix else ok("subject.prefix", "no Re:/AW:/Fwd:/WG: prefix"),
        warn("subject.length", f"{len(subject)} characters, over {limit}: mail clients cut it off - shorten it")
        if len(subject) > limit else ok("subject.length", f"{len(subject)} characters (at most {limit})"),
    ]


def preheader_checks(ctx: Context) -> list[Result]:
    preheader = _norm(ctx.issue["preheader"] or "")
    if not preheader:
        return [warn("preheader.present", "no preheader: clients show the first lines of the body instead "
                     "- re-compose with --preheader")]
    if preheader in ctx.page.hidden_text:
        found = ok("preheader.hidden", "in the HTML as hidden preview text")
    else:
        found = fail("preheader.hidden", "the preheader is not in the HTML as hidden text - keep "
                     "<mj-preview>{{ issue.preheader }}</mj-preview> in issue.mjml.j2")
    return [ok("preheader.present", preheader), found]


# --- the HTML part ------------------------------------------------------------------------------

def html_size(ctx: Context) -> list[Result]:
    """The encoded text/html part against the clipping budget (as `MessageTemplate.html_size`)."""
    if ctx.eml is None:
        return []
    budget = ctx.settings.compose.size_budget
    parts = {ctype: body for ctype, _, body in mime_parts(ctx.eml)}
    if "text/html" not in parts:
        return [fail("html.size", "the message has no text/html part")]
    size = len(parts["text/html"])
    detail = f"{size:,} of {budget:,} bytes ({size / budget:.0%})"
    if size > budget:
        return [fail("html.size", f"{detail}: Gmail clips the footer with unsubscribe link and Impressum "
                     "- re-compose with fewer items (--exclude, [compose] max_articles)")]
    if size >= WARN_AT * budget:
        return [warn("html.size", f"{detail}: close to Gmail's clipping limit")]
    return [ok("html.size", detail)]


def style_size(ctx: Context) -> list[Result]:
    size, limit = sum(len(s.encode("utf-8")) for s in ctx.page.styles), ctx.settings.check.style_max
    detail = f"{size:,} of {limit:,} bytes in {len(ctx.page.styles)} <style> blocks"
    if size > limit:
        return [fail("html.style-size", f"{detail}: Gmail drops the styles - keep only @media rules in <mj-style>")]
    return [ok("html.style-size", detail)]


def lang_check(ctx: Context) -> list[Result]:
    lang, wanted = ctx.page.lang, ctx.settings.publication.language
    if not lang or lang == "und":
        return [fail("html.lang", "<html> has no lang attribute - keep <mjml lang=\"{{ publication.language }}\">")]
    if lang.split("-")[0].lower() != wanted.split("-")[0].lower():
        return [warn("html.lang", f"lang=\"{lang}\" but [publication] language is {wanted!r}")]
    return [ok("html.lang", f"lang=\"{lang}\"")]


def _decorative(img: dict[str, str]) -> bool:
    """A 1x1 spacer or tracking pixel: the one kind of image that may have alt=\"\"."""
    return img.get("width", "").strip() in ("0", "1") and img.get("height", "").strip() in ("0", "1")


def image_checks(ctx: Context) -> list[Result]:
    images = ctx.page.images
    no_alt = [img.get("src", "?") for img in images
              if "alt" not in img or (not img["alt"].strip() and not _decorative(img))]
    insecure = [u for u in ctx.page.image_urls if not _https(u)]
    return [
        fail("html.image-alt", f"without alt text: {listing(no_alt)} - give each "
             "image an alt text (image_alt)") if no_alt else ok("html.image-alt", f"{len(images)} images, all with alt text"),
        fail("html.image-urls", f"not absolute https: {listing(insecure)} - use https:// image URLs")
        if insecure else ok("html.image-urls", f"{len(ctx.page.image_urls)} image URLs, all https"),
    ]


def _https(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme.lower() == "https" and bool(parts.netloc)


def link_checks(ctx: Context) -> list[Result]:
    links = ctx.page.links
    bad = [u or '""' for u in links if not (_https(u) or u.strip().lower().startswith("mailto:"))]
    if bad:
        return [fail("html.link-urls", f"not absolute https or mailto: {listing(bad)} - mail clients "
                     "warn about plain http and relative links go nowhere")]
    return [ok("html.link-urls", f"{len(links)} links, all https or mailto")]


def remote_font_check(ctx: Context) -> list[Result]:
    found = [f"<link href={t.get('href', '')}>" for t in ctx.page.link_tags
             if "stylesheet" in t.get("rel", "").lower() or REMOTE_FONT_HOSTS.search(t.get("href", ""))]
    css = "\n".join(ctx.page.css)
    if re.search(r"@import\b", css, re.I):
        found.append("@import")
    if re.search(r"@font-face\s*{[^}]*url\(", css, re.I):
        found.append("@font-face with url()")
    host = REMOTE_FONT_HOSTS.search(ctx.issue["html"] or "")
    if host:
        found.append(host.group(0))
    if found:
        return [fail("html.remote-fonts", f"remote fonts or stylesheets leak readers' IP addresses: "
                     f"{listing(found)} - remove them (no <mj-font>, no @import)")]
    return [ok("html.remote-fonts", "no remote fonts or stylesheets")]


# --- legal parts: unsubscribe, Impressum, Anzeige ---------------------------------------------

def unsubscribe_checks(ctx: Context) -> list[Result]:
    url = unsubscribe_url(ctx.settings.publication.base_url, PLACEHOLDERS["token"])
    fix = " - keep {{ reader.unsubscribe_url }} in the template"
    return [
        ok("unsubscribe.html", f"link to {url}") if url in ctx.page.links
        else fail("unsubscribe.html", f"no link to {url} in the HTML part{fix}"),
        ok("unsubscribe.text", url) if url in ctx.text
        else fail("unsubscribe.text", f"{url} is not in the text part{fix}"),
    ]


def impressum_checks(ctx: Context) -> list[Result]:
    imp = ctx.settings.impressum
    missing = imp.missing()
    results = [fail("impressum.complete", f"{', '.join(missing)} missing - fill [impressum] in newsletter.toml")
               if missing else ok("impressum.complete", "every field required by § 5 DDG / § 18 MStV is set")]
    for part, label, text in (("html", "HTML", ctx.page.visible_text), ("text", "text", ctx.text)):
        absent = [name for name, value in _impressum_values(imp) if _norm(value) not in text]
        results.append(fail(f"impressum.{part}", f"not in the {label} part: {', '.join(absent)} - keep the "
                            "Impressum in the footer of the template") if absent
                       else ok(f"impressum.{part}", f"all Impressum fields in the {label} part"))
    return results


def _impressum_values(imp) -> list[tuple[str, str]]:
    """(field, value) pairs to look for; a multi-line address line by line, directors one by one."""
    out = []
    for name, value in vars(imp).items():
        values = value if isinstance(value, list) else str(value).splitlines()
        out += [(name, v.strip().rstrip(",")) for v in values if v.strip()]
    return out


def ad_checks(ctx: Context) -> list[Result]:
    ads = [e["item"] for e in ctx.items if e["kind"] == "ad"]
    return [_ad_labels(ads, "html", ctx.page.visible_text), _ad_labels(ads, "text", ctx.text)]


def _ad_labels(ads: list[dict], part: str, text: str) -> Result:
    name = f"ads.label-{part}"
    if not ads:
        return ok(name, "no ads in this issue")
    unlabelled = [ad["title"] for ad in ads if not _labelled(_norm(ad["title"]), text)]
    labels = len(LABEL.findall(text))
    if unlabelled:
        return fail(name, f"no \"Anzeige\" label right before: {listing(unlabelled)} - paid content must be "
                    "labelled (§ 22 MStV)")
    if labels < len(ads):
        return fail(name, f"{len(ads)} ads but {labels} \"Anzeige\" labels - label every ad block")
    return ok(name, f"{len(ads)} ads, each labelled \"Anzeige\"")


def _labelled(title: str, text: str) -> bool:
    """Some occurrence of the title has the label in the text just before it."""
    start = text.find(title)
    while start != -1:
        if LABEL.search(text[max(0, start - LABEL_WINDOW):start]):
            return True
        start = text.find(title, start + 1)
    return False


# --- items: job deadlines, links in the text part ----------------------------------------------

def job_checks(ctx: Context) -> list[Result]:
    jobs = [e["item"] for e in ctx.items if e["kind"] == "job"]
    issue_date = dates.parse_date(ctx.issue["issue_date"])
    closed, lapsed = [], []
    for job in jobs:
        if not job.get("deadline"):
            continue
        deadline = dates.parse_date(job["deadline"])
        if deadline < issue_date:
            closed.append(f"{job['title']} ({deadline})")
        elif deadline < ctx.today:
            lapsed.append(f"{job['title']} ({deadline})")
    if closed:
        return [fail("jobs.deadline", f"deadline before the issue date {issue_date}: {listing(closed)} "
                     "- re-compose (closed job ads are left out)")]
    if lapsed:
        return [warn("jobs.deadline", f"deadline passed by today ({ctx.today}): {listing(lapsed)} "
                     "- re-compose with today's date before sending")]
    return [ok("jobs.deadline", f"{len(jobs)} job ads, all open on the issue date")]


def text_link_checks(ctx: Context) -> list[Result]:
    urls = [e["item"]["url"] for e in ctx.items]
    absent = [u for u in urls if not re.search(re.escape(u) + r"(?![^\s)>\]])", ctx.text)]
    if absent:
        return [fail("text.links", f"not in the text part: {listing(absent)} - write every item's "
                     "link out in issue.txt.j2")]
    return [ok("text.links", f"all {len(urls)} article, job and ad links in the text part")]


# --- the message (.eml): its rules are in mailrules --------------------------------------------

def message_checks(ctx: Context) -> list[Result]:
    if ctx.eml is None:
        return [fail("eml.build", f"cannot build the message: {ctx.eml_error}")]
    return check_message(ctx.settings, ctx.eml, ctx.issue["subject"] or "")


CHECKS = (subject_checks, preheader_checks, html_size, style_size, lang_check, image_checks,
          link_checks, remote_font_check, unsubscribe_checks, impressum_checks, ad_checks, job_checks,
          text_link_checks, message_checks)


# --- SpamAssassin ------------------------------------------------------------------------------

def spam_check(eml: bytes, threshold: float, timeout: float | None = None) -> Result:
    """The message's SpamAssassin score with local tests only (no network lookups)."""
    name = "spam.spamassassin"
    timeout = SPAM_TIMEOUT if timeout is None else timeout
    exe = shutil.which("spamassassin")
    if not exe:
        return warn(name, "SpamAssassin not installed - apt-get install spamassassin")
    try:
        proc = subprocess.run([exe, "-L", "-t"], input=eml, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return warn(name, f"SpamAssassin gave no answer within {timeout:g} s - run "
                    "'newsletter export ISSUE -f eml | spamassassin -L -t' to see why")
    out = proc.stdout.decode("utf-8", "replace")
    score = re.search(r"^X-Spam-Status:.*?\bscore=(-?\d+(?:\.\d+)?)", out, re.M | re.S)
    if score is None:
        reason = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        return warn(name, f"SpamAssassin gave no score (exit {proc.returncode}: {reason})")
    points = float(score.group(1))
    rules = _spam_rules(out)
    detail = f"score {points:.1f} (fail above {threshold:.1f})" + (f"; {rules}" if rules else "")
    return fail(name, detail) if points > threshold else ok(name, detail)


def _spam_rules(report: str) -> str:
    """'RULE 1.2 (description), ...' for the rules with points, from 'Content analysis details'."""
    section = report.split("Content analysis details:", 1)[-1]
    rules: list[list] = []
    for line in section.splitlines()[1:]:
        m = re.match(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$", line)
        if m:
            rules.append([float(m[1]), m[2], m[3].strip()])
        elif rules and line.startswith(" " * 10) and line.strip():
            rules[-1][2] += " " + line.strip()
        elif rules and not line.strip():
            break
    rules = sorted((r for r in rules if r[0]), key=lambda r: -r[0])
    return ", ".join(f"{rule} {pts:g} ({desc})" for pts, rule, desc in rules)


# --- the report as a table ---------------------------------------------------------------------

LABELS = {"pass": "pass", "warn": "WARN", "fail": "FAIL"}


def format_table(report: Report, width: int = 100) -> list[str]:
    """Aligned rows 'status  name  detail', details wrapped to `width` under their column."""
    name_width = max((len(r.name) for r in report.results), default=0)
    indent = 6 + name_width + 2
    lines = []
    for r in report.results:
        head = f"{LABELS[r.status]:<4}  {r.name:<{name_width}}  "
        wrapped = textwrap.wrap(r.detail, max(width - indent, 30), break_on_hyphens=False) or [""]
        lines.append(head + wrapped[0])
        lines.extend(" " * indent + rest for rest in wrapped[1:])
    return lines


def summary(report: Report) -> str:
    """'N passed, N warnings, N failed', with what to do when something failed."""
    n_warn = len(report.warnings)
    line = (f"{len(report.passed)} passed, {n_warn} warning{'s' if n_warn != 1 else ''}, "
            f"{len(report.failed)} failed")
    if report.failed:
        line += (" - not ready to send: fix the FAIL rows above "
                 f"(all details: newsletter check {report.issue['slug']} --json)")
    return line
