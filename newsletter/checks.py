"""Preflight checks of a composed issue: what must hold before it goes to the readers.

Data flow: the stored issue (subject, preheader, HTML and text with placeholders) and its
frozen item list → the HTML parsed once (`Page`) → the `.eml` built for the sample reader →
named checks, each a `Result` (pass / warn / fail) → a `Report`. Optional last step: the
message's SpamAssassin score (`spamassassin -L -t`, local tests only).

The rules come from EMAIL-RULES.md (providers, RFCs, German law); each rule is one named check
so a failure says exactly which rule broke. `newsletter check` prints the report; `send` can
refuse an issue whose report has failures.
"""

from __future__ import annotations

import email
import re
import shutil
import subprocess
import textwrap
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import date
from email import policy
from email.header import decode_header, make_header
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from urllib.parse import quote, urlsplit

import sqlite_utils

from newsletter import dates, store
from newsletter.config import Settings
from newsletter.errors import NewsletterError
from newsletter.issue import WARN_AT, export
from newsletter.message import SAMPLE
from newsletter.render import PLACEHOLDERS, unsubscribe_url

SPAM_TIMEOUT = 60.0
REPLY_PREFIX = re.compile(r"^\s*(re|aw|fwd?|wg|antw)\s*:", re.I)
LABEL = re.compile(r"\banzeige\b", re.I)
LABEL_WINDOW = 120  # characters of text before an ad's title in which its label must stand
REQUIRED_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
                    "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post")
SINGLE_HEADERS = REQUIRED_HEADERS + ("Reply-To", "Sender", "Feedback-ID")
ENCODED_WORD_HEADERS = {"subject", "from", "to", "reply-to"}
ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([^?\s]*)\?([^?\s]*)\?=")
REMOTE_FONT_HOSTS = re.compile(r"fonts\.googleapis\.com|fonts\.gstatic\.com|use\.typekit\.net", re.I)


@dataclass(frozen=True)
class Result:
    name: str
    status: str  # pass | warn | fail
    detail: str


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


def ok(name: str, detail: str) -> Result:
    return Result(name, "pass", detail)


def warn(name: str, detail: str) -> Result:
    return Result(name, "warn", detail)


def fail(name: str, detail: str) -> Result:
    return Result(name, "fail", detail)


def _listing(things: list[str], limit: int = 3) -> str:
    shown = ", ".join(things[:limit])
    return shown + (f" and {len(things) - limit} more" if len(things) > limit else "")


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
        fail("html.image-alt", f"without alt text: {_listing(no_alt)} - give each "
             "image an alt text (image_alt)") if no_alt else ok("html.image-alt", f"{len(images)} images, all with alt text"),
        fail("html.image-urls", f"not absolute https: {_listing(insecure)} - use https:// image URLs")
        if insecure else ok("html.image-urls", f"{len(ctx.page.image_urls)} image URLs, all https"),
    ]


def _https(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme.lower() == "https" and bool(parts.netloc)


def link_checks(ctx: Context) -> list[Result]:
    links = ctx.page.links
    bad = [u or '""' for u in links if not (_https(u) or u.strip().lower().startswith("mailto:"))]
    if bad:
        return [fail("html.link-urls", f"not absolute https or mailto: {_listing(bad)} - mail clients "
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
                     f"{_listing(found)} - remove them (no <mj-font>, no @import)")]
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
        return fail(name, f"no \"Anzeige\" label right before: {_listing(unlabelled)} - paid content must be "
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
        return [fail("jobs.deadline", f"deadline before the issue date {issue_date}: {_listing(closed)} "
                     "- re-compose (closed job ads are left out)")]
    if lapsed:
        return [warn("jobs.deadline", f"deadline passed by today ({ctx.today}): {_listing(lapsed)} "
                     "- re-compose with today's date before sending")]
    return [ok("jobs.deadline", f"{len(jobs)} job ads, all open on the issue date")]


def text_link_checks(ctx: Context) -> list[Result]:
    urls = [e["item"]["url"] for e in ctx.items]
    absent = [u for u in urls if not re.search(re.escape(u) + r"(?![^\s)>\]])", ctx.text)]
    if absent:
        return [fail("text.links", f"not in the text part: {_listing(absent)} - write every item's "
                     "link out in issue.txt.j2")]
    return [ok("text.links", f"all {len(urls)} article, job and ad links in the text part")]


# --- the message (.eml) ------------------------------------------------------------------------

def headers_of(eml: bytes) -> list[tuple[str, bytes]]:
    """The top-level header fields as (name, raw unfolded value)."""
    head = eml.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in eml else eml.split(b"\n\n", 1)[0]
    fields: list[tuple[str, bytes]] = []
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + b" " + line.strip())
        elif b":" in line:
            name, value = line.split(b":", 1)
            fields.append((name.decode("ascii", "replace").strip(), value.strip()))
    return fields


def mime_parts(eml: bytes) -> list[tuple[str, str, bytes]]:
    """(content type, transfer encoding, raw encoded body) of each part of a multipart message."""
    boundary = email.message_from_bytes(eml, policy=policy.compat32).get_boundary()
    if not boundary:
        return []
    body = b"\r\n" + eml.split(b"\r\n\r\n", 1)[-1]
    out = []
    for segment in body.split(b"\r\n--" + boundary.encode("ascii", "replace"))[1:]:
        if segment.startswith(b"--"):
            break
        head, _, content = segment.lstrip(b"\r\n").partition(b"\r\n\r\n")
        part = email.message_from_bytes(head + b"\r\n\r\n", policy=policy.compat32)
        out.append((part.get_content_type(), str(part.get("Content-Transfer-Encoding", "7bit")).lower(), content))
    return out


def message_checks(ctx: Context) -> list[Result]:
    if ctx.eml is None:
        return [fail("eml.build", f"cannot build the message: {ctx.eml_error}")]
    return check_message(ctx.settings, ctx.eml, ctx.issue["subject"] or "")


def check_message(settings: Settings, eml: bytes, subject: str) -> list[Result]:
    """The EMAIL-RULES.md rules on one built message, one named result per rule."""
    fields = headers_of(eml)
    values: dict[str, list[str]] = {}
    for name, raw in fields:
        values.setdefault(name.lower(), []).append(raw.decode("ascii", "replace"))
    first = {name: found[0] for name, found in values.items()}
    pub = settings.publication
    sender = pub.sender_address.lower()
    mime_version = first.get("mime-version", "")
    results = [
        _crlf(eml), _line_length(eml), _encoded_lines(eml), _header_counts(values),
        _forbidden(values), _encoded_words(fields),
        _subject(first.get("subject", ""), subject), _from(first.get("from", ""), sender, pub.sender_name),
        _date(first.get("date", "")), _message_id(first.get("message-id", ""), sender.rsplit("@", 1)[-1]),
        ok("eml.mime-version", "1.0") if mime_version.strip() == "1.0"
        else fail("eml.mime-version", f"MIME-Version is {mime_version!r}, not 1.0"),
        _list_id(first.get("list-id", "")),
        _list_unsubscribe(first.get("list-unsubscribe", ""), pub.base_url),
        _list_unsubscribe_post(eml), _structure(eml),
    ]
    if "feedback-id" in values:
        results.append(_feedback_id(first["feedback-id"]))
    return results


def _crlf(eml: bytes) -> Result:
    bare = len(re.findall(rb"(?<!\r)\n", eml)) + len(re.findall(rb"\r(?!\n)", eml))
    if bare:
        return fail("eml.crlf", f"{bare} line ends are not CRLF - build the message with CRLF line ends")
    return ok("eml.crlf", "every line ends in CRLF")


def _line_length(eml: bytes) -> Result:
    longest = max(len(line) for line in re.split(rb"\r?\n", eml))
    if longest > 998:
        return fail("eml.line-length", f"a line of {longest:,} octets, over RFC 5322's 998 - encode the "
                    "parts (quoted-printable) and fold long headers")
    return ok("eml.line-length", f"longest line {longest} octets (at most 998)")


def _encoded_lines(eml: bytes) -> Result:
    long_parts = []
    for ctype, cte, body in mime_parts(eml):
        longest = max((len(line) for line in body.split(b"\r\n")), default=0)
        if cte in ("quoted-printable", "base64") and longest > 76:
            long_parts.append(f"{ctype} ({longest})")
    if long_parts:
        return fail("eml.encoded-lines", f"encoded lines over 76 characters in {_listing(long_parts)}")
    return ok("eml.encoded-lines", "quoted-printable/base64 lines at most 76 characters")


def _header_counts(values: dict[str, list[str]]) -> Result:
    missing = [h for h in REQUIRED_HEADERS if h.lower() not in values]
    repeated = [h for h in SINGLE_HEADERS if len(values.get(h.lower(), [])) > 1]
    if missing or repeated:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + \
                   ([f"repeated {', '.join(repeated)}"] if repeated else [])
        return fail("eml.headers", "; ".join(problems))
    return ok("eml.headers", f"{len(REQUIRED_HEADERS)} required headers, each once")


def _forbidden(values: dict[str, list[str]]) -> Result:
    found = [h for h in ("Bcc", "Return-Path") if h.lower() in values]
    if found:
        return fail("eml.forbidden-headers", f"{', '.join(found)} in the message - the receiving server "
                    "adds Return-Path; Bcc must never be written")
    return ok("eml.forbidden-headers", "no Bcc, no Return-Path")


def _encoded_words(fields: list[tuple[str, bytes]]) -> Result:
    problems = []
    for name, raw in fields:
        if not raw.isascii():
            problems.append(f"{name} has raw non-ASCII bytes")
            continue
        value = raw.decode("ascii")
        words = ENCODED_WORD.findall(value)
        if "=?" in value and name.lower() not in ENCODED_WORD_HEADERS:
            problems.append(f"{name} contains an encoded word (Gmail rejects it)")
        if re.search(r"\?==\?", value):
            problems.append(f"{name} has adjacent encoded words")
        for charset, enc, text in words:
            word = f"=?{charset}?{enc}?{text}?="
            if len(word) > 75:
                problems.append(f"{name}: encoded word of {len(word)} characters")
            if not text:
                problems.append(f"{name}: empty encoded word")
            if enc.lower() not in ("q", "b"):
                problems.append(f"{name}: unknown encoding {enc!r}")
    if problems:
        return fail("eml.encoded-words", _listing(problems))
    return ok("eml.encoded-words", "headers ASCII; RFC 2047 words valid, only in Subject and names")


def _decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, ValueError, UnicodeDecodeError):
        return "\ufffd"


def _subject(value: str, subject: str) -> Result:
    decoded = _decoded(value)
    if decoded != subject:
        return fail("eml.subject", f"Subject decodes to {decoded!r}, not the issue's subject {subject!r}")
    return ok("eml.subject", "decodes to the issue's subject")


def _from(value: str, sender: str, name: str) -> Result:
    mailboxes = getaddresses([value])
    if len(mailboxes) != 1 or "@" not in mailboxes[0][1]:
        return fail("eml.from", f"From must hold exactly one mailbox, not {value!r}")
    display, address = _decoded(mailboxes[0][0]) if mailboxes[0][0] else "", mailboxes[0][1].lower()
    if address != sender or (name and display != name):
        return fail("eml.from", f"From is {display!r} <{address}>, expected {name!r} <{sender}>")
    return ok("eml.from", f"{display} <{address}>")


def _date(value: str) -> Result:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        return fail("eml.date", f"Date {value!r} is not an RFC 5322 date with a time zone")
    return ok("eml.date", value)


def _message_id(value: str, domain: str) -> Result:
    m = re.fullmatch(r"<[^<>@\s]+@([^<>@\s]+)>", value.strip())
    if not m:
        return fail("eml.message-id", f"Message-ID {value!r} is not <id@domain>")
    if m.group(1).lower() != domain:
        return fail("eml.message-id", f"Message-ID domain {m.group(1)} is not the sender's domain {domain}")
    return ok("eml.message-id", f"domain {domain}")


def _list_id(value: str) -> Result:
    if not re.fullmatch(r"[^<>]*<[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+>", value.strip()):
        return fail("eml.list-id", f"List-Id {value!r} is not 'Name <label.example.org>' (RFC 2919) "
                    "- fix [publication] list_id")
    return ok("eml.list-id", value)


def _list_unsubscribe(value: str, base_url: str) -> Result:
    uris = re.findall(r"<([^<>]*)>", value)
    https = [u for u in uris if u.lower().startswith("https://")]
    mailto = [u for u in uris if u.lower().startswith("mailto:")]
    problems = []
    if len(https) != 1:
        problems.append(f"{len(https)} https URIs instead of exactly one")
    elif https[0] != unsubscribe_url(base_url, SAMPLE.token):
        problems.append(f"{https[0]} is not the reader's unsubscribe URL")
    if not mailto:
        problems.append("no mailto: URI")
    if "=?" in value:
        problems.append("folded into encoded words")
    if SAMPLE.email.lower() in value.lower() or quote(SAMPLE.email).lower() in value.lower():
        problems.append("the reader's address is in it - use the opaque token")
    if problems:
        return fail("eml.list-unsubscribe", "; ".join(problems))
    return ok("eml.list-unsubscribe", "one https URI with the token and a mailto")


def _list_unsubscribe_post(eml: bytes) -> Result:
    head = eml.split(b"\r\n\r\n", 1)[0]
    lines = [line for line in head.split(b"\r\n") if line.lower().startswith(b"list-unsubscribe-post:")]
    if lines != [b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"]:
        return fail("eml.list-unsubscribe-post", f"expected exactly 'List-Unsubscribe-Post: "
                    f"List-Unsubscribe=One-Click', found {[line.decode('ascii', 'replace') for line in lines]}")
    return ok("eml.list-unsubscribe-post", "List-Unsubscribe=One-Click (RFC 8058)")


def _structure(eml: bytes) -> Result:
    msg = email.message_from_bytes(eml, policy=policy.compat32)
    if msg.get_content_type() != "multipart/alternative":
        return fail("eml.structure", f"{msg.get_content_type()}, not multipart/alternative")
    parts = [(p.get_content_type(), p.get_content_charset(), str(p.get("Content-Transfer-Encoding", "")).lower())
             for p in msg.get_payload()]
    if [t for t, _, _ in parts] != ["text/plain", "text/html"]:
        return fail("eml.structure", f"parts {[t for t, _, _ in parts]}: expected text/plain, then text/html")
    bad = [f"{t} {c} {e}" for t, c, e in parts if c != "utf-8" or e not in ("quoted-printable", "base64")]
    if bad:
        return fail("eml.structure", f"expected charset=utf-8 and quoted-printable or base64: {_listing(bad)}")
    return ok("eml.structure", "multipart/alternative: text/plain, then text/html; utf-8, quoted-printable")


def _feedback_id(value: str) -> Result:
    fields = value.strip().split(":")
    if not 2 <= len(fields) <= 4 or not all(fields) or not 5 <= len(fields[-1]) <= 15:
        return fail("eml.feedback-id", f"Feedback-ID {value!r} is not 'a:b:c:SenderId' with a SenderId "
                    "of 5-15 characters - fix [send] feedback_id")
    return ok("eml.feedback-id", value)


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
