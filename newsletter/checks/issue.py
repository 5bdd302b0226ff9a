"""The checks of a composed issue: subject and preheader, the HTML part, the legal parts
(unsubscribe, Impressum, "Anzeige"), its items, and its message (rules in `checks.message`).

Each check takes the `Context` (the issue parsed once) and returns named `CheckResult`s, so a
failure says exactly which rule broke. The rules come from the product's docs/checks.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlsplit

from newsletter import dates
from newsletter.checks.message import check_message, mime_parts
from newsletter.checks.page import Page, norm
from newsletter.checks.result import CheckResult, fail, listing, ok, warn
from newsletter.compose.personal import PLACEHOLDERS, unsubscribe_url
from newsletter.compose.tracking import PATH, short_url
from newsletter.config import Settings
from newsletter.store.issues import Issue

WARN_AT = 0.9  # of the size budget
REPLY_PREFIX = re.compile(r"^\s*(re|aw|fwd?|wg|antw)\s*:", re.I)
LABEL = re.compile(r"\banzeige\b", re.I)
LABEL_WINDOW = 120  # characters of text before an ad's title in which its label must stand
REMOTE_FONT_HOSTS = re.compile(r"fonts\.googleapis\.com|fonts\.gstatic\.com|use\.typekit\.net", re.I)


@dataclass
class Context:
    settings: Settings
    issue: Issue
    items: list[dict]
    page: Page
    text: str           # the stored text part, whitespace normalised
    today: date
    eml: bytes | None   # the message for the sample reader (None: it cannot be built)
    eml_error: str = ""
    links: list[dict] = field(default_factory=list)  # the issue's counted links ([tracking] clicks)
    sent_elsewhere: dict[int, str] = field(default_factory=dict)  # article id -> the other issue that sent it

    def short_links(self) -> dict[str, str]:
        """Target -> the counted short link that stands for it."""
        return {link["url"]: short_url(self.settings.publication.base_url, link["code"]) for link in self.links}


# --- subject and preheader ----------------------------------------------------------------------

def subject_checks(ctx: Context) -> list[CheckResult]:
    subject = (ctx.issue.subject or "").strip()
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


def preheader_checks(ctx: Context) -> list[CheckResult]:
    preheader = norm(ctx.issue.preheader or "")
    if not preheader:
        return [warn("preheader.present", "no preheader: clients show the first lines of the body instead "
                     "- re-compose with --preheader")]
    if preheader in ctx.page.hidden_text:
        found = ok("preheader.hidden", "in the HTML as hidden preview text")
    else:
        found = fail("preheader.hidden", "the preheader is not in the HTML as hidden text - keep "
                     "the hidden preheader <div> with {{ issue.preheader }} at the top of issue.mjml.j2")
    return [ok("preheader.present", preheader), found]


# --- the HTML part ------------------------------------------------------------------------------

def html_size(ctx: Context) -> list[CheckResult]:
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


def style_size(ctx: Context) -> list[CheckResult]:
    size, limit = sum(len(s.encode("utf-8")) for s in ctx.page.styles), ctx.settings.check.style_max
    detail = f"{size:,} of {limit:,} bytes in {len(ctx.page.styles)} <style> blocks"
    if size > limit:
        return [fail("html.style-size", f"{detail}: Gmail drops the styles - keep only @media rules in <mj-style>")]
    return [ok("html.style-size", detail)]


def lang_check(ctx: Context) -> list[CheckResult]:
    lang, wanted = ctx.page.lang, ctx.settings.publication.language
    if not lang or lang == "und":
        return [fail("html.lang", "<html> has no lang attribute - keep <mjml lang=\"{{ publication.language }}\">")]
    if lang.split("-")[0].lower() != wanted.split("-")[0].lower():
        return [warn("html.lang", f"lang=\"{lang}\" but [publication] language is {wanted!r}")]
    return [ok("html.lang", f"lang=\"{lang}\"")]


def _decorative(img: dict[str, str]) -> bool:
    """A 1x1 spacer or tracking pixel: the one kind of image that may have alt=\"\"."""
    return img.get("width", "").strip() in ("0", "1") and img.get("height", "").strip() in ("0", "1")


def image_checks(ctx: Context) -> list[CheckResult]:
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


def link_checks(ctx: Context) -> list[CheckResult]:
    links = ctx.page.links
    bad = [u or '""' for u in links if not (_https(u) or u.strip().lower().startswith("mailto:"))]
    if bad:
        return [fail("html.link-urls", f"not absolute https or mailto: {listing(bad)} - mail clients "
                     "warn about plain http and relative links go nowhere")]
    return [ok("html.link-urls", f"{len(links)} links, all https or mailto")]


def remote_font_check(ctx: Context) -> list[CheckResult]:
    found = [f"<link href={t.get('href', '')}>" for t in ctx.page.link_tags
             if "stylesheet" in t.get("rel", "").lower() or REMOTE_FONT_HOSTS.search(t.get("href", ""))]
    css = "\n".join(ctx.page.css)
    if re.search(r"@import\b", css, re.I):
        found.append("@import")
    if re.search(r"@font-face\s*{[^}]*url\(", css, re.I):
        found.append("@font-face with url()")
    host = REMOTE_FONT_HOSTS.search(ctx.issue.html or "")
    if host:
        found.append(host.group(0))
    if found:
        return [fail("html.remote-fonts", f"remote fonts or stylesheets leak readers' IP addresses: "
                     f"{listing(found)} - remove them (no <mj-font>, no @import)")]
    return [ok("html.remote-fonts", "no remote fonts or stylesheets")]


# --- legal parts: unsubscribe, Impressum, Anzeige ---------------------------------------------

def unsubscribe_checks(ctx: Context) -> list[CheckResult]:
    url = unsubscribe_url(ctx.settings.publication.base_url, PLACEHOLDERS["token"])
    fix = " - keep {{ reader.unsubscribe_url }} in the template"
    return [
        ok("unsubscribe.html", f"link to {url}") if url in ctx.page.links
        else fail("unsubscribe.html", f"no link to {url} in the HTML part{fix}"),
        ok("unsubscribe.text", url) if url in ctx.text
        else fail("unsubscribe.text", f"{url} is not in the text part{fix}"),
    ]


def impressum_checks(ctx: Context) -> list[CheckResult]:
    imp = ctx.settings.impressum
    missing = imp.missing()
    results = [fail("impressum.complete", f"{', '.join(missing)} missing - fill [impressum] in newsletter.toml")
               if missing else ok("impressum.complete", "every field required by § 5 DDG / § 18 MStV is set")]
    for part, label, text in (("html", "HTML", ctx.page.visible_text), ("text", "text", ctx.text)):
        absent = [name for name, value in _impressum_values(imp) if norm(value) not in text]
        results.append(fail(f"impressum.{part}", f"not in the {label} part: {', '.join(absent)} - keep the "
                            "Impressum in the footer of the template") if absent
                       else ok(f"impressum.{part}", f"all Impressum fields in the {label} part"))
    return results


def _impressum_values(imp) -> list[tuple[str, str]]:
    """(field, value) pairs to look for; a multi-line address line by line, directors one by one."""
    out = []
    for name, value in vars(imp).items():
        if value is False or name == "representatives_label":
            continue
        values = value if isinstance(value, list) else str(value).splitlines()
        out += [(name, v.strip().rstrip(",")) for v in values if v.strip()]
    return out


def ad_checks(ctx: Context) -> list[CheckResult]:
    ads = [e["item"] for e in ctx.items if e["kind"] == "ad"]
    return [_ad_labels(ads, "html", ctx.page.visible_text), _ad_labels(ads, "text", ctx.text)]


def _ad_labels(ads: list[dict], part: str, text: str) -> CheckResult:
    name = f"ads.label-{part}"
    if not ads:
        return ok(name, "no ads in this issue")
    unlabelled = [ad["title"] for ad in ads if not _labelled(norm(ad["title"]), text)]
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

def job_checks(ctx: Context) -> list[CheckResult]:
    jobs = [e["item"] for e in ctx.items if e["kind"] == "job"]
    issue_date = dates.parse_date(ctx.issue.issue_date)
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


def repeat_check(ctx: Context) -> list[CheckResult]:
    """An issue whose articles all went out in another issue would mail readers the same again."""
    articles = [e["item"] for e in ctx.items if e["kind"] == "article"]
    repeated = [a for a in articles if a["id"] in ctx.sent_elsewhere]
    if articles and len(repeated) == len(articles):
        others = sorted(set(ctx.sent_elsewhere.values()))
        return [fail("items.repeat", f"all {len(articles)} articles already went out in issue {listing(others)} - "
                     "compose a new issue (readers would get the same articles twice), or send anyway with --force")]
    if repeated:
        named = [f"{a['title']} ({ctx.sent_elsewhere[a['id']]})" for a in repeated]
        return [warn("items.repeat", f"{len(repeated)} of {len(articles)} articles already went out in another "
                     f"issue: {listing(named)}")]
    return [ok("items.repeat", f"none of the {len(articles)} articles went out in another issue")]


def text_link_checks(ctx: Context) -> list[CheckResult]:
    urls = [e["item"]["url"] for e in ctx.items]
    short = ctx.short_links()
    absent = [u for u in urls if not any(re.search(re.escape(link) + r"(?![^\s)>\]])", ctx.text)
                                         for link in (u, short.get(u)) if link)]
    if absent:
        return [fail("text.links", f"not in the text part: {listing(absent)} - write every item's "
                     "link out in issue.txt.j2")]
    return [ok("text.links", f"all {len(urls)} article, job and ad links in the text part")]


# --- counted links ([tracking] clicks) -------------------------------------------------------

def tracking_checks(ctx: Context) -> list[CheckResult]:
    on = ctx.settings.tracking.clicks == "aggregate"
    base = ctx.settings.publication.base_url.rstrip("/")
    pattern = re.compile(re.escape(base + PATH) + r"[A-Za-z0-9_-]*")
    found = {m.group(0) for m in pattern.finditer("\n".join(ctx.page.links) + "\n" + ctx.text)}
    if not on and not found:
        return []
    results = []
    if on and not base.startswith("https://"):
        results.append(warn("tracking.base-url", f"[publication] base_url {base!r} is not https: counted "
                            "links would send readers over plain http - set an https base_url"))
    known = set(ctx.short_links().values())
    unknown = sorted(found - known)
    if unknown:
        results.append(fail("tracking.links", f"short links this issue does not know: {listing(unknown)} "
                            "- re-compose the issue (compose --replace)"))
    elif on and not found:
        results.append(warn("tracking.links", "[tracking] clicks is on, but this issue's links are not counted "
                            "- re-compose it (compose --replace) to count them"))
    else:
        results.append(ok("tracking.links", f"{len(known)} counted links via {base}{PATH} - newsletter serve "
                          "must answer there"))
    return results


# --- the message (.eml): its rules are in checks.message --------------------------------------------

def message_checks(ctx: Context) -> list[CheckResult]:
    if ctx.eml is None:
        return [fail("eml.build", f"cannot build the message: {ctx.eml_error}")]
    return check_message(ctx.settings, ctx.eml, ctx.issue.subject or "")


CHECKS = (subject_checks, preheader_checks, html_size, style_size, lang_check, image_checks,
          link_checks, remote_font_check, unsubscribe_checks, impressum_checks, ad_checks, job_checks,
          repeat_check, text_link_checks, tracking_checks, message_checks)
