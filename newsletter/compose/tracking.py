"""Counted links: with `[tracking] clicks = "aggregate"`, each content link of an issue becomes a
short link on the publisher's own site, the same for every reader.

    rendered issue → compose.links.rewrite_links(…, LinkRewriter) → <base_url>/c/<code>

The code is an HMAC (the database's link key) over the issue's slug and the target, so it
cannot be guessed or altered into another target; `newsletter serve` looks it up, answers 302
to the stored target and counts the request. It carries nothing of a reader. Links that are
the reader's own or the publisher's own pages for readers stay as they are: the unsubscribe
link, the privacy page, the web archive ("Im Browser ansehen"), and mailto: links.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

from newsletter.config import Settings

CODE_LENGTH = 12          # base64url characters: 72 bits
PATH = "/c/"
# The app's own routes under base_url: never counted, never rewritten.
OWN_ROUTES = ("/u/", "/archive", PATH, "/confirm/", "/subscribe", "/review/")


def code(key: bytes, slug: str, url: str) -> str:
    digest = hmac.new(key, f"{slug}\0{url}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:CODE_LENGTH]


def valid(key: bytes, slug: str, url: str, given: str) -> bool:
    return hmac.compare_digest(code(key, slug, url).encode(), given.encode())


def short_url(base_url: str, link_code: str) -> str:
    return f"{base_url.rstrip('/')}{PATH}{link_code}"


@dataclass(frozen=True)
class Role:
    """What a link is in the issue: its kind, the item it belongs to, the section, a label."""

    kind: str                 # article, job, ad, logo, social, link
    section: str              # lead, articles, jobs, ads, header, footer, text
    label: str
    item_id: int | None = None


def roles(settings: Settings, selection) -> dict[str, Role]:
    """Each known target of an issue and its role; the first place a target appears wins."""
    found: dict[str, Role] = {}

    def add(url: str | None, role: Role) -> None:
        if url and url not in found:
            found[url] = role

    lead = selection.lead
    add(lead["url"], Role("article", "lead", lead["title"], lead["id"]))
    for a in selection.articles:
        add(a["url"], Role("article", "articles", a["title"], a["id"]))
    for j in selection.jobs:
        add(j["url"], Role("job", "jobs", j["title"], j["id"]))
    for ad in selection.ads:
        add(ad["url"], Role("ad", "ads", ad["title"], ad["id"]))
    pub = settings.publication
    add(pub.web_url or pub.base_url, Role("logo", "header", "Logo / Website"))
    for label, url in pub.social.items():
        add(url, Role("social", "footer", label))
    return found


@dataclass
class LinkRewriter:
    """A `compose.links.Rewrite` that turns content links into counted short links and keeps
    the list of them (`links`) for the store."""

    base_url: str
    key: bytes
    slug: str
    known: dict[str, Role]
    keep: tuple[str, ...] = ()
    links: dict[str, dict] = field(default_factory=dict)

    def __call__(self, url: str, where: str) -> str:
        if not self.counted(url):
            return url
        link = self.links.get(url)
        if link is None:
            role = self.known.get(url) or Role("link", "text", url)
            link = {"code": code(self.key, self.slug, url), "url": url, "kind": role.kind,
                    "item_id": role.item_id, "section": role.section, "label": role.label,
                    "position": len(self.links)}
            self.links[url] = link
        return short_url(self.base_url, link["code"])

    def counted(self, url: str) -> bool:
        if not url.startswith("https://") or url in self.keep:
            return False
        own = self.base_url.rstrip("/")
        return not any(url.startswith(own + route) for route in OWN_ROUTES)


def rewriter(settings: Settings, key: bytes, slug: str, selection) -> LinkRewriter:
    pub = settings.publication
    return LinkRewriter(pub.base_url, key, slug, roles(settings, selection), keep=tuple(u for u in (pub.privacy_url,) if u))
