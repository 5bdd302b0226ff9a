"""`newsletter serve`: the small web app behind the publisher's web server.

Routes: the sign-up form (GET/POST /subscribe, also JSON), the confirmation link
(GET shows a button, POST /confirm/TOKEN activates), the unsubscribe link (GET shows a button,
POST /u/TOKEN unsubscribes; also the RFC 8058 one-click POST), the static web archive
(/archive/...) and /health. Requests are parsed and answered here; everything else happens in
`newsletter.consent`, on a database connection opened per request in a worker thread.

Every answer carries strict security headers; pages are German, plain HTML with inline CSS and
no external assets. A sign-up answer never tells whether an address is already known, and the
confirmation mail goes out after the answer (a background task), so timing does not tell either.
"""

from __future__ import annotations

import html
import json
import logging
import re
import socket
import sqlite3
from collections import deque
from pathlib import Path
from typing import Callable

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from newsletter import clock as clock_module
from newsletter import store, tokens
from newsletter.audience import consent
from newsletter.delivery import transports
from newsletter.config import Settings
from newsletter.errors import ConfigError, InputError, NewsletterError
from newsletter.audience.subscribers import normalise_email

log = logging.getLogger("newsletter.web")

MAX_BODY = 16 * 1024        # a sign-up form is a few hundred bytes
MAX_EMAIL = 254             # RFC 5321 path limit
MAX_TOKEN = 100
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
# Archive pages are the HTML: its images are remote https images.
ARCHIVE_CSP = ("default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; "
               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}
TRUE = {"on", "1", "true", "yes", "ja"}


class SecurityHeaders:
    """ASGI middleware: adds SECURITY_HEADERS to every response that does not set its own."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RateLimiter:
    """At most `limit` hits per client address within `window` seconds (limit 0: no limit)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] | None = None) -> None:
        self.limit, self.window, self.clock = limit, window, clock or clock_module.monotonic
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


# --- pages -------------------------------------------------------------------------------------

STYLE = ("body{font-family:system-ui,-apple-system,'Segoe UI',Arial,sans-serif;line-height:1.5;color:#1a1a1a;"
         "background:#fff;max-width:36rem;margin:2rem auto;padding:0 1rem}h1{font-size:1.5rem}"
         "label{display:block;font-weight:bold;margin-top:1rem}input[type=email],input[type=text]{width:100%;"
         "box-sizing:border-box;padding:.5rem;font-size:1rem;border:1px solid #555}"
         ".check{display:flex;gap:.5rem;font-weight:normal}.hp{display:none}"
         "button{margin-top:1.25rem;padding:.6rem 1.2rem;font-size:1rem;background:#1d4f91;color:#fff;"
         "border:0;border-radius:4px;cursor:pointer}button:focus,input:focus{outline:3px solid #f0a500}"
         ".error{border-left:4px solid #b00020;padding:.25rem 1rem;background:#fdecee}"
         "footer{margin-top:3rem;font-size:.875rem;color:#555}a{color:#1d4f91}")


def page(settings: Settings, title: str, body: str, status: int = 200, background=None,
         headers: dict | None = None) -> HTMLResponse:
    """A complete German page; `body` is HTML that the caller has escaped."""
    pub = settings.publication
    e = html.escape
    footer = f'<footer><a href="{e(pub.privacy_url)}">Datenschutz</a></footer>' if pub.privacy_url else ""
    text = (f'<!doctype html>\n<html lang="de"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="robots" content="noindex"><title>{e(title)} – {e(pub.name)}</title>'
            f"<style>{STYLE}</style></head>\n<body><main><p>{e(pub.name)}</p><h1>{e(title)}</h1>\n{body}\n"
            f"</main>{footer}</body></html>\n")
    return HTMLResponse(text, status, headers={**SECURITY_HEADERS, **(headers or {})}, background=background)


def _button(label: str) -> str:
    return f'<form method="post"><button type="submit">{html.escape(label)}</button></form>'


def _echo(value: object, limit: int) -> str:
    """A submitted value shown again in the form: one line, capped and escaped."""
    return html.escape(re.sub(r"[\x00-\x1f\x7f]", " ", str(value or ""))[:limit])


def _paragraphs(*texts: str) -> str:
    return "".join(f"<p>{html.escape(t)}</p>" for t in texts)


# --- the app -------------------------------------------------------------------------------------

class Site:
    """The endpoints, sharing settings, key, rate limiter and transport."""

    def __init__(self, settings: Settings, key: bytes, transport_factory: Callable) -> None:
        self.settings, self.key, self.transport_factory = settings, key, transport_factory
        self.base_url = settings.publication.base_url.rstrip("/")
        self.limiter = RateLimiter(settings.serve.rate_limit, settings.serve.rate_window)

    async def _db(self, fn, *args):
        """Run `fn(db, *args)` in a worker thread on a connection of its own."""
        def call():
            db = store.open_db(self.settings.db_path, create=False)
            try:
                return fn(db, *args)
            finally:
                db.close()
        return await run_in_threadpool(call)

    # sign-up

    async def subscribe_form(self, request: Request) -> Response:
        return self._form_page()

    def _form_page(self, values: dict | None = None, errors: list[tuple[str, str]] | None = None,
                   status: int = 200) -> Response:
        e, values, errors = html.escape, values or {}, errors or []
        bad = {f for f, _ in errors}

        def invalid(name: str) -> str:
            return ' aria-invalid="true" aria-describedby="fehler"' if name in bad else ""

        alert = ('<div class="error" id="fehler" role="alert"><p>Bitte korrigieren Sie:</p><ul>'
                 + "".join(f"<li>{e(msg)}</li>" for _, msg in errors) + "</ul></div>") if errors else ""
        checked = " checked" if values.get("consent") else ""
        body = (
            f"{alert}<form method=\"post\" novalidate>"
            f'<label for="email">E-Mail-Adresse (Pflichtfeld)</label>'
            f'<input type="email" id="email" name="email" required maxlength="{MAX_EMAIL}" autocomplete="email"'
            f' value="{_echo(values.get("email"), MAX_EMAIL)}"{invalid("email")}>'
            f'<label for="name">Name (freiwillig)</label>'
            f'<input type="text" id="name" name="name" maxlength="{consent.MAX_NAME}" autocomplete="name"'
            f' value="{_echo(values.get("name"), consent.MAX_NAME)}"{invalid("name")}>'
            f'<div class="hp" aria-hidden="true"><label for="website">Bitte leer lassen</label>'
            f'<input type="text" id="website" name="website" tabindex="-1" autocomplete="off"></div>'
            f'<label class="check"><input type="checkbox" name="consent" value="ja" required{checked}{invalid("consent")}>'
            f"<span>{e(self.settings.serve.consent_text)}</span></label>"
            f'<button type="submit">Newsletter abonnieren</button></form>'
        )
        return page(self.settings, "Newsletter abonnieren", body, status)

    async def subscribe(self, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        if not self.limiter.allow(client):
            return self._too_many(request)
        try:
            fields, as_json = await _read_fields(request)
        except _BadBody as error:
            return self._rejected(error.status, [("form", error.message)], {}, json_wanted=_is_json(request))
        if fields.get("website"):  # the honeypot: a bot filled the hidden field
            return self._accepted(as_json)
        errors = _check_signup(fields)
        if errors:
            return self._rejected(400, errors, fields, as_json)
        form = consent.Signup(email=fields["email"], source=f"{self.base_url}/subscribe", name=fields.get("name", ""),
                              ip=client, user_agent=request.headers.get("user-agent"))
        consent_id = await self._db(consent.signup, self.settings, form)
        task = BackgroundTask(self._send_confirmation, consent_id) if consent_id else None
        return self._accepted(as_json, task)

    def _accepted(self, as_json: bool, background=None) -> Response:
        message = ("Vielen Dank! Falls diese Adresse noch nicht angemeldet ist, erhalten Sie in wenigen Minuten "
                   "eine E-Mail mit einem Bestätigungslink. Erst mit Ihrer Bestätigung ist die Anmeldung abgeschlossen.")
        if as_json:
            return JSONResponse({"status": "ok", "message": message}, background=background)
        return page(self.settings, "Bitte bestätigen Sie Ihre Anmeldung", _paragraphs(message), background=background)

    def _rejected(self, status: int, errors: list[tuple[str, str]], fields: dict, json_wanted: bool) -> Response:
        if json_wanted:
            return JSONResponse({"status": "error", "errors": {f: m for f, m in errors}}, status)
        return self._form_page(fields, errors, status)

    def _too_many(self, request: Request) -> Response:
        message = "Zu viele Anmeldungen von Ihrem Anschluss. Bitte versuchen Sie es in einigen Minuten erneut."
        retry = {"retry-after": str(self.settings.serve.rate_window)}
        if _is_json(request):
            return JSONResponse({"status": "error", "message": message}, 429, headers=retry)
        return page(self.settings, "Bitte etwas Geduld", _paragraphs(message), 429, headers=retry)

    def _send_confirmation(self, consent_id: int) -> None:
        """After the answer: mail the link. On failure the sign-up stays pending without a mail,
        and 'newsletter confirmations send' picks it up."""
        db = store.open_db(self.settings.db_path, create=False)
        transport = self.transport_factory()
        try:
            consent.send_confirmation(db, self.settings, self.key, consent_id, transport)
        except (NewsletterError, transports.DeliveryError, sqlite3.Error) as e:
            log.warning("Confirmation mail for sign-up %s not sent (%s) - 'newsletter confirmations send' "
                        "sends it later", consent_id, e)
        finally:
            transport.close()
            db.close()

    # confirmation

    async def confirm_page(self, request: Request) -> Response:
        token = request.path_params["token"]
        state, _ = await self._db(consent.lookup_confirmation, self.settings, self.key, token[:MAX_TOKEN + 1])
        if state != "valid":
            return self._confirm_answer(state)
        body = (_paragraphs("Bitte bestätigen Sie Ihre Anmeldung zum Newsletter mit einem Klick auf den Knopf. "
                            "Damit erteilen Sie diese Einwilligung:")
                + f"<blockquote>{html.escape(self.settings.serve.consent_text)}</blockquote>"
                + _button("Anmeldung bestätigen"))
        return page(self.settings, "Anmeldung bestätigen", body)

    async def confirm(self, request: Request) -> Response:
        token = request.path_params["token"]
        client = request.client.host if request.client else None
        state = await self._db(consent.confirm, self.settings, self.key, token[:MAX_TOKEN + 1], client)
        return self._confirm_answer(state)

    def _confirm_answer(self, state: str) -> Response:
        again = f'<p><a href="{html.escape(self.base_url)}/subscribe">Zum Anmeldeformular</a></p>'
        title, text, status = {
            "confirmed": ("Anmeldung bestätigt", "Vielen Dank! Ihre Anmeldung ist bestätigt. Sie erhalten den "
                          "Newsletter ab der nächsten Ausgabe. Abmelden können Sie sich jederzeit über den Link "
                          "am Ende jeder Ausgabe.", 200),
            "already": ("Bereits bestätigt", "Diese Anmeldung ist bereits bestätigt. Sie müssen nichts weiter tun.", 200),
            "expired": ("Link abgelaufen", "Dieser Bestätigungslink ist abgelaufen. Bitte melden Sie sich erneut an; "
                        "Sie erhalten dann einen neuen Link.", 400),
            "gone": ("Link nicht mehr gültig", "Diese Anmeldung kann nicht mehr bestätigt werden. Bitte melden Sie "
                     "sich erneut an oder wenden Sie sich an die Redaktion.", 400),
            "unknown": ("Link ungültig", "Diesen Bestätigungslink kennen wir nicht. Bitte prüfen Sie, ob er "
                        "vollständig kopiert wurde, oder melden Sie sich erneut an.", 404),
        }[state]
        return page(self.settings, title, _paragraphs(text) + (again if status != 200 else ""), status)

    # unsubscribe

    async def unsubscribe_page(self, request: Request) -> Response:
        token = request.path_params["token"][:MAX_TOKEN + 1]
        row = await self._db(consent.unsubscriber, self.settings, self.key, token)
        if row is None:
            return self._unsubscribe_answer("unknown")
        if row["status"] not in ("active", "pending"):
            return self._unsubscribe_answer("already")
        body = _paragraphs(f"Möchten Sie den Newsletter „{self.settings.publication.name}“ abbestellen? "
                           "Ein Klick genügt.") + _button("Newsletter abbestellen")
        return page(self.settings, "Newsletter abbestellen", body)

    async def unsubscribe(self, request: Request) -> Response:
        """The button's POST and the RFC 8058 one-click POST alike; the body is not needed."""
        token = request.path_params["token"][:MAX_TOKEN + 1]
        return self._unsubscribe_answer(await self._db(consent.unsubscribe, self.settings, self.key, token))

    def _unsubscribe_answer(self, state: str) -> Response:
        if state == "unknown":
            return page(self.settings, "Link ungültig", _paragraphs(
                "Diesen Abmeldelink kennen wir nicht, oder die Adresse steht nicht mehr in unserer Liste. "
                "Bitte prüfen Sie, ob der Link vollständig kopiert wurde."), 404)
        title = "Abgemeldet" if state == "unsubscribed" else "Bereits abgemeldet"
        return page(self.settings, title, _paragraphs(
            "Sie erhalten den Newsletter nicht mehr. Falls das ein Versehen war, können Sie sich jederzeit neu anmelden."))

    # archive and health

    async def archive(self, request: Request) -> Response:
        target = _archive_file(self.settings, request.path_params.get("path", ""))
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
            await self._db(lambda db: db.execute("select count(*) from subscribers").fetchone())
        except (NewsletterError, sqlite3.Error):
            return JSONResponse({"status": "unavailable"}, 503)
        return JSONResponse({"status": "ok"})

    # errors

    def not_found(self) -> Response:
        return page(self.settings, "Seite nicht gefunden", _paragraphs("Diese Seite gibt es nicht."), 404)

    async def http_error(self, request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return self.not_found()
        text = {405: "Diese Anfrage ist hier nicht möglich.", 413: "Die Anfrage ist zu groß."}.get(
            exc.status_code, "Die Anfrage konnte nicht bearbeitet werden.")
        return page(self.settings, "Fehler", _paragraphs(text), exc.status_code, headers=exc.headers)

    async def unavailable(self, request: Request, exc: Exception) -> Response:
        log.warning("%s %s failed: %s", request.method, request.url.path, exc)
        return page(self.settings, "Vorübergehend nicht erreichbar", _paragraphs(
            "Der Dienst ist gerade nicht erreichbar. Bitte versuchen Sie es später noch einmal."), 503)

    async def server_error(self, request: Request, exc: Exception) -> Response:
        return page(self.settings, "Fehler", _paragraphs(
            "Es ist ein Fehler aufgetreten. Bitte versuchen Sie es später noch einmal."), 500)


def create_app(settings: Settings, *, key: bytes | None = None, transport_factory: Callable | None = None) -> Starlette:
    """The ASGI app. Needs NEWSLETTER_SECRET (or `key`) and an https base_url."""
    key = key if key is not None else tokens.secret()
    if not settings.publication.base_url.startswith("https://"):
        raise ConfigError("[publication] base_url must be an https URL - the confirmation and unsubscribe links use it")
    site = Site(settings, key, transport_factory or (lambda: transports.make(settings)))
    routes = [
        Route("/subscribe", _by_method(site.subscribe_form, site.subscribe), methods=["GET", "POST"]),
        Route("/confirm/{token}", _by_method(site.confirm_page, site.confirm), methods=["GET", "POST"]),
        Route("/u/{token}", _by_method(site.unsubscribe_page, site.unsubscribe), methods=["GET", "POST"]),
        Route("/archive", site.archive_root, methods=["GET"]),
        Route("/archive/{path:path}", site.archive, methods=["GET"]),
        Route("/health", site.health, methods=["GET"]),
    ]
    handlers = {HTTPException: site.http_error, NewsletterError: site.unavailable, sqlite3.Error: site.unavailable,
                Exception: site.server_error}
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.add_middleware(SecurityHeaders)
    app.state.site = site
    return app


# --- request helpers -----------------------------------------------------------------------------

def _by_method(get, post):
    """One endpoint for a GET page and its POST action (so a 405 lists both methods)."""
    async def endpoint(request: Request) -> Response:
        return await (post if request.method == "POST" else get)(request)
    return endpoint


class _BadBody(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


async def _read_fields(request: Request) -> tuple[dict[str, str], bool]:
    """The text fields of a form (urlencoded or multipart) or JSON body of at most MAX_BODY bytes."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _BadBody(413, "Die Anfrage ist zu groß.")
    if _is_json(request):
        try:
            data = json.loads(body)
        except ValueError:
            raise _BadBody(400, "Die Anfrage ist kein gültiges JSON.") from None
        if not isinstance(data, dict):
            raise _BadBody(400, "Die Anfrage ist kein JSON-Objekt.")
        fields = {k: ("ja" if v is True else v) for k, v in data.items() if isinstance(v, (str, bool)) and v is not False}
        return fields, True

    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=0, max_fields=20, max_part_size=MAX_BODY)
    except (HTTPException, MultiPartException):
        raise _BadBody(400, "Das Formular konnte nicht gelesen werden.") from None
    return {k: v for k, v in form.items() if isinstance(v, str)}, False


def _check_signup(fields: dict[str, str]) -> list[tuple[str, str]]:
    """German messages for what is wrong with a sign-up, by field."""
    errors = []
    try:
        if len(fields.get("email", "")) > MAX_EMAIL:
            raise InputError("too long")
        normalise_email(fields.get("email", ""))
    except InputError:
        errors.append(("email", "Bitte geben Sie eine gültige E-Mail-Adresse an (z. B. name@example.de)."))
    try:
        consent.check_name(fields.get("name", ""))
    except InputError:
        errors.append(("name", f"Bitte geben Sie den Namen in einer Zeile und mit höchstens "
                               f"{consent.MAX_NAME} Zeichen an."))
    if str(fields.get("consent", "")).strip().lower() not in TRUE:
        errors.append(("consent", "Bitte bestätigen Sie die Einwilligung mit dem Häkchen."))
    return errors


def _archive_file(settings: Settings, path: str) -> Path | None:
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


# --- running ---------------------------------------------------------------------------------------

def listen(host: str, port: int) -> socket.socket:
    """A bound socket for host:port, or one line saying the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"Cannot listen on {host}:{port} ({e.strerror}) - stop the other server "
                          "or choose another port with --port or [serve] port") from None
    return sock


def run(settings: Settings, host: str, port: int, announce: Callable[[str], None] = print) -> None:
    """Serve until interrupted (uvicorn; trusts X-Forwarded-For from 127.0.0.1 only)."""
    import uvicorn

    app = create_app(settings)
    store.open_db(settings.db_path).close()  # create or upgrade the database before the first request
    sock = listen(host, port)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", server_header=False)
    announce(f"Serving on http://{host}:{port} - stop with Ctrl+C")
    uvicorn.Server(config).run(sockets=[sock])
