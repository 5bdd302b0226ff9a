"""The counted links of `newsletter serve`: GET or HEAD /c/CODE answers 302 to the link's stored
target and adds one to its counts; an unknown or altered code gets a plain 404 page and never a
redirect.

Each request counts as **human**, **repeated** or **automated**. Automated are HEAD requests,
known security scanners and link-preview agents (by user agent, plus `[tracking]
automated_agents`), requests without a user agent, and one client address that fetches several
different links of the same issue within seconds (a scanner following every link of a mail; the
clicks of that burst it had already made move over to automated as well); the stored counts keep
each reason apart. Repeated are a client's further clicks on one link within an hour, and any
beyond CLIENT_LIMIT a day from one client address (a script that changes its user agent each time).

Unique clicks are estimated with a keyed hash of client address and user agent. The key is
random, lives only in this process's memory and is replaced at midnight (publication's time
zone), so the hashes cannot be linked across days or recomputed by anyone later; neither they
nor any address is ever written. A reader who clicks on two days, or after serve restarted,
counts twice: the estimate errs upwards, and reports never show it above the delivered count.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import sqlite3
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from newsletter import clock
from newsletter.compose.tracking import CODE_LENGTH, valid
from newsletter.config import Settings
from newsletter.errors import NewsletterError
from newsletter.store import Database
from newsletter.store.clicks import add_counts, counting_connection, link_by_code, link_key

log = logging.getLogger("newsletter.web")

# Lower-case fragments of user agents that are not a person clicking: mail security gateways
# that open every link before delivery, and apps that fetch a link to show a preview.
AUTOMATED_AGENTS = (
    "bot", "crawler", "spider", "preview", "scanner", "safelinks", "safe links", "ms-office",
    "microsoft office existence", "proofpoint", "urldefense", "mimecast", "barracuda", "messagelabs",
    "symantec", "trendmicro", "trend micro", "fireeye", "forcepoint", "sophos", "ironport", "zscaler",
    "checkpoint", "virustotal", "facebookexternalhit", "whatsapp", "skypeuripreview", "slack",
    "python-", "python/", "curl/", "wget", "go-http-client", "java/", "okhttp", "libwww", "httpclient",
    "headlesschrome", "phantomjs", "axios/", "node-fetch",
)
BURST_LINKS = 4           # different links of one issue ...
BURST_SECONDS = 5.0       # ... within this many seconds from one client address: a scanner
REPEAT_SECONDS = 3600.0   # one client's clicks on one link within an hour count once
CLIENT_LIMIT = 20         # human clicks a day on one link from one client address; an office behind one
                          # address has a few readers, a script that changes its user agent has thousands
MAX_REMEMBERED = 1_000_000  # entries kept per day before the memory starts over (uniques then err upwards)

# What a request adds to the stored counts: a column of `clicks` -> 1 or -1.
Delta = dict[str, int]
REASONS = {"head": "auto_head", "agent": "auto_scanner", "burst": "auto_burst"}


@dataclass
class _Click:
    at: float
    link_id: int
    hour: str
    human: bool
    unique: bool
    issue_unique: bool
    visitor: bytes
    client: bytes


class ClickCounter:
    """Classifies clicks and keeps what is needed for uniques, repeats and bursts, in memory only.

    A request is automated (HEAD, a scanner's user agent, a burst), repeated (the same client on
    the same link within REPEAT_SECONDS, or past CLIENT_LIMIT for the day), or human. Only human
    clicks count as unique, per visitor (client address and user agent) and day."""

    def __init__(self, timezone_name: str, extra_agents: tuple[str, ...] = ()) -> None:
        self.zone = ZoneInfo(timezone_name)
        self.agents = AUTOMATED_AGENTS + tuple(a.lower() for a in extra_agents if a)
        self._day: str | None = None
        self._key = b""
        self._seen_links: set[tuple[int, bytes]] = set()
        self._seen_issues: set[tuple[int, bytes]] = set()
        self._last_human: dict[tuple[int, bytes], float] = {}   # (link, visitor) -> when last counted
        self._per_client: dict[tuple[int, bytes], int] = {}     # (link, client) -> human clicks today
        self._recent: dict[tuple[bytes, int], deque[_Click]] = {}

    def automated_agent(self, user_agent: str) -> bool:
        agent = user_agent.lower()
        return not agent.strip() or any(fragment in agent for fragment in self.agents)

    def count(self, link: dict, method: str, client: str, user_agent: str):
        """The changes to the stored counts for one request: ({(link id, hour): Delta},
        {(issue id, hour): unique readers})."""
        now = clock.now()
        self._rotate(now)
        hour = now.astimezone(UTC).strftime("%Y-%m-%dT%H")
        links: dict[tuple[int, str], Delta] = {}
        issues: dict[tuple[int, str], int] = {}
        visitor = self._hash(f"{client}\0{user_agent}")
        address = self._hash(client)
        issue_id, link_id = link["issue_id"], link["id"]
        moment = clock.monotonic()
        reason = "head" if method == "HEAD" else "agent" if self.automated_agent(user_agent) else None
        burst = self._burst(address, issue_id, link_id, moment)
        if reason is None and burst is not None:
            reason = "burst"
            for earlier in burst:  # the burst's earlier clicks were a scanner's too
                if earlier.human:
                    self._undo(earlier, issue_id, links, issues)
        click = _Click(moment, link_id, hour, False, False, False, visitor, address)
        if reason is not None:
            _add(links, (link_id, hour), automated=1, **{REASONS[reason]: 1})
        elif self._repeated(link_id, visitor, address, moment):
            _add(links, (link_id, hour), repeated=1)
        else:
            click.human = True
            self._last_human[(link_id, visitor)] = moment
            self._per_client[(link_id, address)] = self._per_client.get((link_id, address), 0) + 1
            click.unique = self._first(self._seen_links, (link_id, visitor))
            click.issue_unique = self._first(self._seen_issues, (issue_id, visitor))
            _add(links, (link_id, hour), human=1, unique_human=int(click.unique))
            if click.issue_unique:
                issues[(issue_id, hour)] = issues.get((issue_id, hour), 0) + 1
        self._recent[(address, issue_id)].append(click)
        return links, issues

    def _undo(self, earlier: _Click, issue_id: int, links: dict[tuple[int, str], Delta],
              issues: dict[tuple[int, str], int]) -> None:
        """A click counted as human that turns out to be part of a burst moves to automated."""
        earlier.human = False
        _add(links, (earlier.link_id, earlier.hour), human=-1, automated=1, auto_burst=1,
             unique_human=-int(earlier.unique))
        self._last_human.pop((earlier.link_id, earlier.visitor), None)
        key = (earlier.link_id, earlier.client)
        self._per_client[key] = max(self._per_client.get(key, 1) - 1, 0)
        if earlier.unique:
            self._seen_links.discard((earlier.link_id, earlier.visitor))
        if earlier.issue_unique:
            issues[(issue_id, earlier.hour)] = issues.get((issue_id, earlier.hour), 0) - 1
            self._seen_issues.discard((issue_id, earlier.visitor))

    def _hash(self, text: str) -> bytes:
        return hmac.new(self._key, text.encode(), hashlib.sha256).digest()[:16]

    def _repeated(self, link_id: int, visitor: bytes, address: bytes, moment: float) -> bool:
        last = self._last_human.get((link_id, visitor))
        if last is not None and moment - last < REPEAT_SECONDS:
            return True
        return self._per_client.get((link_id, address), 0) >= CLIENT_LIMIT

    def _rotate(self, now) -> None:
        day = now.astimezone(self.zone).date().isoformat()
        if day != self._day:
            self._day, self._key = day, secrets.token_bytes(32)
            self._seen_links, self._seen_issues, self._recent = set(), set(), {}
            self._last_human, self._per_client = {}, {}
        if len(self._last_human) >= MAX_REMEMBERED or len(self._per_client) >= MAX_REMEMBERED:
            self._last_human, self._per_client = {}, {}

    def _first(self, seen: set, entry: tuple) -> bool:
        if entry in seen:
            return False
        if len(seen) >= MAX_REMEMBERED:
            seen.clear()
        seen.add(entry)
        return True

    def _burst(self, address: bytes, issue_id: int, link_id: int, now: float) -> list[_Click] | None:
        """The client's recent clicks on this issue if, with this one, they make a burst."""
        recent = self._recent.setdefault((address, issue_id), deque())
        while recent and recent[0].at <= now - BURST_SECONDS:
            recent.popleft()
        if len(self._recent) > 10_000:  # forget clients whose window has passed
            self._recent = {k: v for k, v in self._recent.items() if v and v[-1].at > now - BURST_SECONDS}
            self._recent[(address, issue_id)] = recent
        if len({c.link_id for c in recent} | {link_id}) >= BURST_LINKS:
            return list(recent)
        return None


class Clicks:
    """The /c/CODE endpoint. One database connection in one thread of its own does all lookups
    and writes, so counting never waits for another request's connection; counts are committed
    in groups (every request waits until its count is committed, and the requests that arrive
    meanwhile share the next commit)."""

    def __init__(self, settings: Settings, not_found) -> None:
        self.settings, self.not_found = settings, not_found
        self.counter = ClickCounter(settings.publication.timezone, tuple(settings.tracking.automated_agents))
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clicks")
        self._db: Database | None = None
        self._key = b""
        self._links: dict[str, dict] = {}   # code -> link; a code's target never changes
        self._pending: deque = deque()      # counts not yet committed

    async def answer(self, request: Request) -> Response:
        code = request.path_params["code"]
        if len(code) != CODE_LENGTH:
            return self.not_found()
        link = self._links.get(code) or await self._run(self._lookup, code)
        if link is None:
            return self.not_found()
        client = request.client.host if request.client else ""
        self._pending.append(self.counter.count(link, request.method, client, request.headers.get("user-agent", "")))
        try:
            await self._run(self._commit)
        except (NewsletterError, sqlite3.Error) as e:  # the reader still gets where the link leads
            log.warning("Clicks not counted (%s) - the database could not be written", e)
        return RedirectResponse(link["url"], 302)

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.worker, fn, *args)

    def _open(self) -> Database:
        if self._db is None:
            self._db = counting_connection(self.settings)
            self._key = link_key(self._db)
        return self._db

    def _lookup(self, code: str) -> dict | None:
        link = link_by_code(self._open(), code)
        if link is None or not valid(self._key, link["issue_slug"], link["url"], code):
            return None
        if len(self._links) > 100_000:
            self._links.clear()
        self._links[code] = {"id": link["id"], "issue_id": link["issue_id"], "url": link["url"]}
        return self._links[code]

    def _commit(self) -> None:
        """Everything pending, in one transaction (nothing when an earlier call took it all)."""
        links: dict[tuple[int, str], Delta] = {}
        issues: dict[tuple[int, str], int] = {}
        while self._pending:
            link_delta, issue_delta = self._pending.popleft()
            for key, delta in link_delta.items():
                total = links.setdefault(key, {})
                for column, n in delta.items():
                    total[column] = total.get(column, 0) + n
            for key, unique in issue_delta.items():
                issues[key] = issues.get(key, 0) + unique
        if links or issues:
            add_counts(self._open(), links, issues)

    def close(self) -> None:
        self.worker.submit(self._close).result()
        self.worker.shutdown()

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _add(links: dict[tuple[int, str], Delta], key: tuple[int, str], **columns: int) -> None:
    """Add `columns` to the change of one link and hour."""
    delta = links.setdefault(key, {})
    for column, n in columns.items():
        delta[column] = delta.get(column, 0) + n
