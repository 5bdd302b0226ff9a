"""`newsletter preview`: an issue as the editor checks it before sending, in the browser.

Data flow: store (issue row, frozen items) → `View` (the issue personalised for the sample reader
or `--as` a subscriber: HTML, text part, the .eml's header block, size, items per section) → a
local page (stdlib ThreadingHTTPServer on 127.0.0.1) showing the HTML in an iframe at 600 or 375 px.

Live reload: a thread polls the mtimes of the templates (shipped and `templates_dir`) and the
config file, and the store's content version (articles, job ads, ads, issues and subscribers:
what a compose reads, so serve's click counts and a send's log change nothing), every 0.3 s. On a
change a *draft* is re-composed and the view rebuilt; the page hears of it through Server-Sent
Events (/events) and swaps its content in place,
keeping the scroll position. Other issues are frozen: they are only re-read. An error while
re-composing (a template typo) shows on the page and in the terminal; the last good version stays.

What a re-compose keeps is what the editor saw in the draft. `compose --replace` alone selects
again, so a newly imported article could push one out while the editor only fixes a template.
The re-compose therefore pins the draft's articles (lead and list: `--lead`/`--only`), its window,
date, number, subject, preheader and editorial, and renders them with their current text from the
store and the current templates and config. Job ads and ads are chosen by date (deadline,
booking), so they are picked again by the same rules, as `compose --replace` does. A draft stored
over the size budget was composed with --allow-clipping and keeps that; any other re-compose over
the budget is refused (shown as an error), as `compose` does. Nothing is re-composed at start: the
page first shows the draft exactly as stored. Without ISSUE the page follows the latest draft.

The page itself (markup, the dark-mode views) is `newsletter.web.preview_page`; `--screenshot` is
`newsletter.web.screenshots`. The unsubscribe token in previews is always the sample one: no secret is
needed to look.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from newsletter import clock, dates
from newsletter.compose import render
from newsletter.compose.issue import ComposeRequest
from newsletter.compose.select import Options
from newsletter.config import Settings
from newsletter.errors import InputError, NewsletterError
from newsletter.store import Database, connect, translate
from newsletter.store.content import content_version
from newsletter.store.db import Row
from newsletter.store.issues import Issue, get_issue, issue_items, latest_draft
from newsletter.web.preview_page import fragments, issue_document, page
from newsletter.web.view import View, find_issue, make_view, reader
from newsletter.workflow.compose import compose_issue

POLL_SECONDS = 0.3
KEEPALIVE_SECONDS = 15


def recompose_request(issue: Issue, items: list[Row], budget: int) -> ComposeRequest:
    """`compose --replace` for a draft with its articles, window and date pinned (see above)."""
    articles = [e for e in items if e["kind"] == "article"]
    lead = next((e for e in articles if e["section"] == "lead"), None)
    options = Options(
        issue_date=dates.parse_date(issue.issue_date),
        date_from=dates.parse_date(issue.window_from) if issue.window_from else None,
        date_to=dates.parse_date(issue.window_to) if issue.window_to else None,
        lead=str(lead["item_id"]) if lead else None,
        only=[str(e["item_id"]) for e in articles],
    )
    return ComposeRequest(options=options, replace=issue,
                          allow_clipping=(issue.html_size or 0) > budget)


# --- live state ----------------------------------------------------------------------------

class LivePreview:
    """The current view of one issue, rebuilt when its sources change."""

    def __init__(self, load_settings: Callable[[], Settings], ref: str | None, email: str | None,
                 report: Callable[[str], None] = lambda message: None, clicks: bool = False) -> None:
        self.load_settings, self.ref, self.email, self.report = load_settings, ref, email, report
        self.clicks = clicks
        self.view: View | None = None
        self.error: str | None = None
        self.version = 0
        self._inputs: list[Path] = []   # templates and config
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self, recompose: bool) -> None:
        """Read the issue again (re-composing it first if asked and it is a draft)."""
        settings = self.load_settings()
        with connect(settings) as db:
            issue = self._issue(db)
            if recompose and issue.status == "draft":
                items = issue_items(db, issue.id)
                compose_issue(db, settings, recompose_request(issue, items, settings.compose.size_budget))
                issue = get_issue(db, issue.id)
            view = make_view(db, settings, issue, reader(db, self.email), self.clicks)
        self._inputs = sources(settings)
        self._publish(view, None)

    def _issue(self, db: Database) -> Issue:
        if self.ref is None and self.view is not None and latest_draft(db) is None:
            return get_issue(db, self.view.issue.id)  # the draft shown was sent meanwhile
        return find_issue(db, self.ref)

    def _publish(self, view: View | None, error: str | None) -> None:
        with self._changed:
            self.view = view or self.view
            self.error = error
            self.version += 1
            self._changed.notify_all()

    @property
    def shown(self) -> View:
        """The view on screen; `start` builds the first before anyone can ask."""
        if self.view is None:
            raise RuntimeError("the preview has no view before its first refresh")
        return self.view

    def state(self) -> tuple[int, View, str | None]:
        with self._changed:
            return self.version, self.shown, self.error

    def wait(self, seen: int, timeout: float) -> int:
        """The version once it differs from `seen` (or after `timeout`, or when stopping)."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != seen or self._stop.is_set(), timeout)
            return self.version

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def watch(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="preview-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread:
            self._thread.join(timeout=30)  # lets a running re-compose finish its transaction

    def _watch(self) -> None:
        with connect(self.load_settings()) as db:
            seen = stamps(self._inputs), content_version(db)
            while not self._stop.wait(POLL_SECONDS):
                inputs = stamps(self._inputs)
                if (inputs, content_version(db)) == seen:
                    continue
                self._rebuild()
                # Inputs as they were before the rebuild: an edit saved during it triggers another.
                # The store as it is after: our own write must not trigger one.
                seen = inputs, content_version(db)

    def _rebuild(self) -> None:
        moment = clock.now().astimezone().strftime("%H:%M:%S")
        try:
            self.refresh(recompose=True)
        except NewsletterError as e:
            message = str(e)
        except sqlite3.Error as e:
            message = str(translate(e))
        except Exception as e:  # noqa: BLE001 - the server outlives whatever a rebuild hits
            message = f"{type(e).__name__}: {e}"
        else:
            shown = self.shown.issue
            verb = "re-composed" if shown.status == "draft" else "reloaded"
            self.report(f"{moment} {verb} {shown.slug}")
            return
        self._publish(None, message)
        self.report(f"{moment} Error: {message}")


def sources(settings: Settings) -> list[Path]:
    """The files a preview watches: the templates and the config file."""
    inputs = [render.default_templates()]
    if settings.templates_dir:
        inputs.append(settings.templates_dir)
    if settings.config_path:
        inputs.append(settings.config_path)
    return inputs


def stamps(paths: list[Path]) -> dict[str, tuple[int, int]]:
    """mtime and size of each file (a folder: of each file in it; editor swap files ignored)."""
    out = {}
    for path in paths:
        try:
            entries = list(os.scandir(path)) if path.is_dir() else [path]
            for entry in entries:
                name = os.path.basename(entry)
                if name.startswith(".") or name.endswith(("~", ".swp", ".tmp")):
                    continue
                st = os.stat(entry)
                out[os.fspath(entry)] = (st.st_mtime_ns, st.st_size)
        except OSError:
            continue  # not there (yet): a -wal file, a templates folder still to be made
    return out


# --- the server ----------------------------------------------------------------------------

class PreviewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, preview: LivePreview, host: str, port: int) -> None:
        self.preview = preview
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host if isinstance(host, str) else host.decode()}:{port}/"

    def close(self) -> None:
        self.preview.stop()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: PreviewServer

    def do_GET(self) -> None:  # the name http.server calls
        host = urlsplit(f"//{self.headers.get('Host', '')}").hostname
        if host not in (self.server.server_address[0], "localhost", "127.0.0.1"):
            return self._send(403, "text/plain", b"Forbidden")  # DNS rebinding
        url = urlsplit(self.path)
        preview = self.server.preview
        version, view, error = preview.state()
        if url.path == "/":
            self._send(200, "text/html; charset=utf-8", page(version, view, error).encode())
        elif url.path == "/issue.html":
            scheme = parse_qs(url.query).get("scheme", ["light"])[0]
            self._send(200, "text/html; charset=utf-8", issue_document(view.html, scheme).encode())
        elif url.path == "/fragments.json":
            self._send(200, "application/json", json.dumps(fragments(version, view, error)).encode())
        elif url.path == "/events":
            self._events(preview)
        else:
            self._send(404, "text/plain", b"Not found")

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _events(self, preview: LivePreview) -> None:
        """Server-Sent Events: the version now and after each change; a comment keeps it alive."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        seen = -1
        try:
            while not preview.stopping:
                version = preview.wait(seen, KEEPALIVE_SECONDS)
                self.wfile.write(f"data: {version}\n\n".encode() if version != seen else b": alive\n\n")
                self.wfile.flush()
                seen = version
        except (BrokenPipeError, ConnectionResetError):
            return  # the page was closed

    def log_message(self, format: str, *args) -> None:  # http.server's signature
        return  # quiet: the terminal shows rebuilds and errors only


def start(load_settings: Callable[[], Settings], ref: str | None, email: str | None, host: str, port: int,
          report: Callable[[str], None] = lambda message: None, clicks: bool = False) -> PreviewServer:
    """Build the first view and listen on host:port (port 0: any free one); call serve_forever().
    `clicks`: show the issue as a click map, updated as clicks come in."""
    preview = LivePreview(load_settings, ref, email, report, clicks)
    preview.refresh(recompose=False)
    try:
        server = PreviewServer(preview, host, port)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise InputError(f"Port {port} on {host} is already in use - stop the other program or pass another --port") from None
        raise InputError(f"Cannot listen on {host}:{port}: {e.strerror} - pass another --port or fix [preview] host") from None
    preview.watch()
    return server
