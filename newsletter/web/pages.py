"""The pages of `newsletter serve`: German, from templates a publisher may override
(`templates/web/texts.j2` for every word, `page.html.j2` and `subscribe.html.j2` for the
markup), with strict security headers on every answer."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import HTMLResponse, JSONResponse

from newsletter.audience.consent import MAX_NAME
from newsletter.compose import render
from newsletter.config import Settings

MAX_EMAIL = 254             # RFC 5321 path limit
MAX_REASON = 300            # why a reviewer holds an issue back
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


class Pages:
    """Renders the pages and texts; templates are read once, when serve starts."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = render.environment(settings.templates_dir)
        module = render.template_module(self.env, "web/texts.j2", self._common())
        self.texts, self.form, self.errors = module.texts, module.form, module.errors
        self.page_template = self.env.get_template("web/page.html.j2")
        self.form_template = self.env.get_template("web/subscribe.html.j2")

    def _common(self) -> dict[str, Any]:
        return {"publication": self.settings.publication, "consent_text": self.settings.serve.consent_text,
                "max_name": MAX_NAME, "max_email": MAX_EMAIL}

    def text(self, kind: str) -> str:
        """A page's paragraphs as one line of plain text (the JSON answers)."""
        return " ".join(self.texts[kind]["paragraphs"])

    def page(self, kind: str, status: int = 200, *, link: bool = False, quote: str | None = None,
             background=None, headers: dict | None = None, reason_field: bool = False) -> HTMLResponse:
        """The page for `kind` (a key of texts.j2); `link`: with a link back to the sign-up form."""
        entry = self.texts[kind]
        again = {"href": f"{self.settings.publication.base_url.rstrip('/')}/subscribe", "label": self.form["again"]}
        text = self.page_template.render(**self._common(), form=self.form, title=entry["title"],
                                         paragraphs=entry["paragraphs"], button=entry.get("button"),
                                         quote=quote, link=again if link else None, reason_field=reason_field,
                                         max_reason=MAX_REASON)
        return HTMLResponse(text, status, headers={**SECURITY_HEADERS, **(headers or {})}, background=background)

    def form_page(self, values: dict | None = None, errors: dict[str, str] | None = None,
                  status: int = 200) -> HTMLResponse:
        shown = {"email": echo(values, "email", MAX_EMAIL), "name": echo(values, "name", MAX_NAME),
                 "consent": bool((values or {}).get("consent"))}
        text = self.form_template.render(**self._common(), form=self.form, title=self.texts["subscribe"]["title"],
                                         paragraphs=[], values=shown, errors=errors or {})
        return HTMLResponse(text, status, headers=SECURITY_HEADERS)

    def json(self, body: dict, status: int = 200, background=None, headers: dict | None = None) -> JSONResponse:
        return JSONResponse(body, status, background=background, headers=headers)


def echo(values: dict | None, key: str, limit: int) -> str:
    """A submitted value shown again in the form: one line and capped (escaped by the template)."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", str((values or {}).get(key) or ""))[:limit]
