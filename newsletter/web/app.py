"""`newsletter serve`: the small web app behind the publisher's web server.

Routes: the sign-up form (GET/POST /subscribe, also JSON), the confirmation link
(GET shows a button, POST /confirm/TOKEN activates), the unsubscribe link (GET shows a button,
POST /u/TOKEN unsubscribes; also the RFC 8058 one-click POST), the static web archive
(/archive/...), the counted links (/c/CODE, `web.clicks`), the review links of the weekly
routine (/review/..., `web.review`) and /health. Requests are parsed and answered here; everything else happens in
`newsletter.audience.consent`, on a database connection opened per request in a worker thread.

Every answer carries strict security headers; pages are German (`web.pages`), plain HTML with
inline CSS and no external assets. A sign-up answer never tells whether an address is already
known, and the confirmation mail goes out after the answer (a background task), so timing
does not tell either.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, Router

from newsletter import clock, config
from newsletter.audience import consent
from newsletter.audience.confirmations import Refused, send_confirmation
from newsletter.config import Settings
from newsletter.delivery import transports
from newsletter.errors import NewsletterError
from newsletter.store import connect
from newsletter.web import forms
from newsletter.web.clicks import Clicks
from newsletter.web.pages import ARCHIVE_CSP, Pages, SecurityHeaders
from newsletter.web.review import Reviews

log = logging.getLogger("newsletter.web")

MAX_TOKEN = 100
CONFIRM_STATUS = {"confirmed": 200, "already": 200, "expired": 400, "gone": 400, "unknown": 404}


class SignupThrottle:
    """At most `limit` hits per client address within `window` seconds (limit 0: no limit)."""

    def __init__(self, limit: int, window: float, clock_fn: Callable[[], float] | None = None) -> None:
        self.limit, self.window, self.clock = limit, window, clock_fn or clock.monotonic
        self.hits: dict[str, deque] = {}

    def allow(self, client: str) -> bool:
        if self.limit <= 0:
            return True
        now = self.clock()
        hits = self.hits.setdefault(client, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        if len(self.hits) > 10_000:  # forget clients whose window has passed
            self.hits = {c: h for c, h in self.hits.items() if h and h[-1] > now - self.window}
        return True


class Site:
    """The endpoints, sharing settings, key, pages, sign-up throttle and transport."""

    def __init__(self, settings: Settings, key: bytes, transport_factory: Callable) -> None:
        self.settings, self.key, self.transport_factory = settings, key, transport_factory
        self.base_url = settings.publication.base_url.rstrip("/")
        self.throttle = SignupThrottle(settings.serve.rate_limit, settings.serve.rate_window)
        self.pages = Pages(settings)

    async def _db(self, fn, *args):
        """Run `fn(db, *args)` in a worker thread on a connection of its own."""
        def call():
            with connect(self.settings) as db:
                return fn(db, *args)
        return await run_in_threadpool(call)

    # sign-up

    async def subscribe_form(self, request: Request) -> Response:
        return self.pages.form_page()

    async def subscribe(self, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        if not self.throttle.allow(client):
            return self._too_many(request)
        try:
            fields, as_json = await forms.read_fields(request)
        except forms.BadBody as error:
            return self._rejected(error.status, {"form": self.pages.errors[error.reason]}, {}, forms.is_json(request))
        if fields.get("website"):  # the honeypot: a bot filled the hidden field
            return self._accepted(as_json)
        wrong = forms.check_signup(fields)
        if wrong:
            return self._rejected(400, {field: self.pages.errors[field] for field in wrong}, fields, as_json)
        form = consent.Signup(email=fields["email"], source=f"{self.base_url}/subscribe", name=fields.get("name", ""),
                              ip=client, user_agent=request.headers.get("user-agent"))
        consent_id = await self._db(consent.signup, self.settings, form)
        task = BackgroundTask(self._send_confirmation, consent_id) if consent_id else None
        return self._accepted(as_json, task)

    def _accepted(self, as_json: bool, background=None) -> Response:
        if as_json:
            return self.pages.json({"status": "ok", "message": self.pages.text("accepted")}, background=background)
        return self.pages.page("accepted", background=background)

    def _rejected(self, status: int, errors: dict[str, str], fields: dict, as_json: bool) -> Response:
        if as_json:
            return self.pages.json({"status": "error", "errors": errors}, status)
        return self.pages.form_page(fields, errors, status)

    def _too_many(self, request: Request) -> Response:
        retry = {"retry-after": str(self.settings.serve.rate_window)}
        if forms.is_json(request):
            return self.pages.json({"status": "error", "message": self.pages.text("too_many")}, 429, headers=retry)
        return self.pages.page("too_many", 429, headers=retry)

    def _send_confirmation(self, consent_id: int) -> None:
        """After the answer: mail the link. On failure the sign-up stays pending without a mail,
        and 'newsletter confirmations send' picks it up."""
        transport = None
        try:
            with connect(self.settings) as db:
                transport = self.transport_factory()
                send_confirmation(db, self.settings, self.key, consent_id, transport)
        except (NewsletterError, Refused, sqlite3.Error) as e:
            log.warning("Confirmation mail for sign-up %s not sent (%s) - 'newsletter confirmations send' "
                        "sends it later", consent_id, e)
        finally:
            if transport is not None:
                transport.close()

    # confirmation

    async def confirm_page(self, request: Request) -> Response:
        token = request.path_params["token"]
        state, _ = await self._db(consent.lookup_confirmation, self.settings, self.key, token[:MAX_TOKEN + 1])
        if state != "valid":
            return self._confirm_answer(state)
        return self.pages.page("confirm", quote=self.settings.serve.consent_text)

    async def confirm(self, request: Request) -> Response:
        token = request.path_params["token"]
        client = request.client.host if request.client else None
        state = await self._db(consent.confirm, self.settings, self.key, token[:MAX_TOKEN + 1], client)
        return self._confirm_answer(state)

    def _confirm_answer(self, state: str) -> Response:
        status = CONFIRM_STATUS[state]
        return self.pages.page(state, status, link=status != 200)

    # unsubscribe

    async def unsubscribe_page(self, request: Request) -> Response:
        token = request.path_params["token"][:MAX_TOKEN + 1]
        row = await self._db(consent.unsubscriber, self.settings, self.key, token)
        if row is None:
            return self._unsubscribe_answer("unknown")
        if row["status"] not in ("active", "pending"):
            return self._unsubscribe_answer("already")
        return self.pages.page("unsubscribe")

    async def unsubscribe(self, request: Request) -> Response:
        """The button's POST and the RFC 8058 one-click POST alike; the body is not needed."""
        token = request.path_params["token"][:MAX_TOKEN + 1]
        return self._unsubscribe_answer(await self._db(consent.unsubscribe, self.settings, self.key, token))

    def _unsubscribe_answer(self, state: str) -> Response:
        if state == "unknown":
            return self.pages.page("unsubscribe_unknown", 404)
        return self.pages.page("unsubscribed" if state == "unsubscribed" else "unsubscribed_before")

    # archive and health

    async def archive(self, request: Request) -> Response:
        target = archive_file(self.settings, request.path_params.get("path", ""))
        if target is None:
            return self.not_found()
        kind = {".html": "text/html; charset=utf-8", ".xml": "application/xml; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".txt": "text/plain; charset=utf-8"}.get(target.suffix)
        return FileResponse(target, media_type=kind, content_disposition_type="inline", headers={
            "content-security-policy": ARCHIVE_CSP, "cache-control": "public, max-age=300"})

    async def archive_root(self, request: Request) -> Response:
        return RedirectResponse(f"{request.url.path}/", 308)

    async def health(self, request: Request) -> Response:
        try:
            await self._db(lambda db: db)
        except (NewsletterError, sqlite3.Error):
            return JSONResponse({"status": "unavailable"}, 503)
        return JSONResponse({"status": "ok"})

    # errors

    def not_found(self) -> Response:
        return self.pages.page("not_found", 404)

    def link_unknown(self) -> Response:
        return self.pages.page("link_unknown", 404)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # registered for HTTPException only
        if exc.status_code == 404:
            return self.not_found()
        kind = {405: "not_allowed", 413: "too_large"}.get(exc.status_code, "bad_request")
        return self.pages.page(kind, exc.status_code, headers=dict(exc.headers or {}))

    async def unavailable(self, request: Request, exc: Exception) -> Response:
        log.warning("%s %s failed: %s", request.method, request.url.path, exc)
        return self.pages.page("unavailable", 503)

    async def server_error(self, request: Request, exc: Exception) -> Response:
        return self.pages.page("error", 500)


def create_app(settings: Settings, *, key: bytes | None = None, transport_factory: Callable | None = None,
               routes: list[Route] | None = None) -> Starlette:
    """The ASGI app. Needs NEWSLETTER_SECRET (or `key`) and an https base_url; `routes` adds
    more (the click counter, the approval links)."""
    key = key if key is not None else config.signing_key()
    settings.require_base_url("newsletter serve (confirmation and unsubscribe links)")
    site = Site(settings, key, transport_factory or (lambda: transports.make(settings)))
    clicks = Clicks(settings, site.link_unknown)
    reviews = Reviews(site)
    routes = with_trailing_slash([
        Route("/subscribe", by_method(site.subscribe_form, site.subscribe), methods=["GET", "POST"]),
        Route("/confirm/{token}", by_method(site.confirm_page, site.confirm), methods=["GET", "POST"]),
        Route("/u/{token}", by_method(site.unsubscribe_page, site.unsubscribe), methods=["GET", "POST"]),
        Route("/health", site.health, methods=["GET"]),
        Route("/c/{code}", clicks.answer, methods=["GET"]),  # and HEAD, which counts as automated
        Route("/review/{action:str}/{index:int}/{token}", by_method(reviews.page, reviews.act), methods=["GET", "POST"]),
        *(routes or []),
    ]) + [
        Route("/archive", site.archive_root, methods=["GET"]),
        Route("/archive/{path:path}", site.archive, methods=["GET"]),
    ]
    # Starlette's own router answers '/u/TOKEN/' with a redirect built from the Host header (an
    # open redirect, and no one-click answer): a router without that serves every path, and each
    # route takes its trailing slash itself.
    app = Starlette(routes=[Mount("", app=Router(routes=routes, redirect_slashes=False))],
                    exception_handlers={HTTPException: site.http_error, NewsletterError: site.unavailable,
                                        sqlite3.Error: site.unavailable, Exception: site.server_error})
    app.add_middleware(SecurityHeaders)
    app.state.site, app.state.clicks = site, clicks
    return app


def with_trailing_slash(routes: list[Route]) -> list[Route]:
    """Each route, and the same route with a trailing slash ('/u/TOKEN/' acts as '/u/TOKEN')."""
    return [*routes, *(Route(r.path + "/", r.endpoint, methods=sorted(r.methods or [])) for r in routes)]


def by_method(get, post):
    """One endpoint for a GET page and its POST action (so a 405 lists both methods)."""
    async def endpoint(request: Request) -> Response:
        return await (post if request.method == "POST" else get)(request)
    return endpoint


def archive_file(settings: Settings, path: str) -> Path | None:
    """The archive file for a URL path, or None: archive off, missing, hidden or outside the folder."""
    if not settings.archive.enabled or any(part.startswith(".") for part in path.split("/") if part):
        return None
    try:
        root = settings.archive_dir.resolve()
        target = (root / path).resolve()
        if target.is_dir():
            target = target / "index.html"
        found = target.is_relative_to(root) and target.is_file()
    except (OSError, ValueError):  # a NUL byte or an over-long name
        return None
    return target if found else None
