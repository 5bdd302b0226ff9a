"""`newsletter preview`: an issue as the editor checks it before sending, in the browser.

Data flow: store (issue row, frozen items) → `View` (the issue personalised for the sample reader
or `--as` a subscriber: HTML, text part, the .eml's header block, size, items per section) → a
local page (stdlib ThreadingHTTPServer on 127.0.0.1) showing the HTML in an iframe at 600 or 375 px.

Live reload: a thread polls the mtimes of the templates (shipped and `templates_dir`), the config
file and the database (and its -wal) every 0.3 s. On a change a *draft* is re-composed and the view
rebuilt; the page hears of it through Server-Sent Events (/events) and swaps its content in place,
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

Dark mode: an iframe cannot get a `prefers-color-scheme` of its own, so the page offers two views.
"Dunkel (eigenes CSS)" rewrites the mail's `prefers-color-scheme: dark` rules to always apply (what
Apple Mail shows); "Dunkel invertiert (Näherung)" imitates clients that recolour mail themselves
(Gmail app, Outlook) by inverting the frame with a hue rotation and re-inverting the images. The
screenshot dark.png is taken with the browser in dark mode, so the mail's own dark CSS applies; a
mail without such rules gets the inversion instead, as those clients would do.

Screenshots (`--screenshot DIR`) render the personalised HTML directly in headless Chromium; each
image request gets a generated grey PNG and every other request is aborted, so they work offline.
The unsubscribe token in previews is always the sample one: no secret is needed to look.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sqlite3
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import jinja2
import sqlite_utils
from markupsafe import Markup

from newsletter import dates, render, store
from newsletter.config import Settings
from newsletter.errors import ConfigError, InputError, NewsletterError, NotFound
from newsletter.issue import ComposeRequest, compose, export
from newsletter.message import SAMPLE, Recipient
from newsletter.select import Options
from newsletter.subscribers import normalise_email, salutation

POLL_SECONDS = 0.3
KEEPALIVE_SECONDS = 15
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = (("desktop.png", 600, "light"), ("mobile.png", 375, "light"), ("dark.png", 600, "dark"))
SECTIONS = (("lead", "Aufmacher"), ("articles", "Weitere Meldungen"), ("jobs", "Stellenmarkt"), ("ads", "Anzeigen"))
STATUS = {"draft": "Entwurf", "scheduled": "geplant", "sending": "wird verschickt", "sent": "verschickt"}
INVERT = "filter: invert(1) hue-rotate(180deg)"
_STYLE = re.compile(r"(<style\b[^>]*>)(.*?)(</style>)", re.S | re.I)
_DARK = re.compile(r"\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.I)
_LIGHT = re.compile(r"\(\s*prefers-color-scheme\s*:\s*light\s*\)", re.I)


@dataclass(frozen=True)
class View:
    """One issue as the preview shows it."""

    issue: dict
    recipient: Recipient
    html: str
    text: str
    headers: str
    items: list[dict]
    budget: int

    @property
    def has_dark_css(self) -> bool:
        return has_dark_css(self.html)


def has_dark_css(html: str) -> bool:
    """Whether a <style> block has `prefers-color-scheme: dark` rules."""
    return any(_DARK.search(m.group(2)) for m in _STYLE.finditer(html))


# --- what is shown -------------------------------------------------------------------------

def find_issue(db: sqlite_utils.Database, ref: str | None) -> dict:
    """The issue `ref` (id or slug), or the latest draft."""
    if ref:
        return store.get_issue(db, ref)
    draft = latest_draft(db)
    if draft is None:
        raise NotFound("There is no draft to preview - compose one with 'newsletter compose', "
                       "or name an issue: newsletter preview ISSUE")
    return draft


def latest_draft(db: sqlite_utils.Database) -> dict | None:
    drafts = [row for row in store.list_issues(db) if row["status"] == "draft"]
    return store.get_issue(db, drafts[0]["id"]) if drafts else None


def reader(db: sqlite_utils.Database, email: str | None) -> Recipient:
    """The sample reader, or the subscriber `email` with the sample token."""
    if not email:
        return SAMPLE
    rows = list(db["subscribers"].rows_where("email = ? collate nocase", [normalise_email(email)], limit=1))
    if not rows:
        raise NotFound(f"No subscriber {email} - see 'newsletter subscribers list', or leave out --as")
    return Recipient(email=rows[0]["email"], salutation=salutation(rows[0]), token=SAMPLE.token)


def make_view(db: sqlite_utils.Database, settings: Settings, issue: dict, recipient: Recipient) -> View:
    eml = export(settings, issue, "eml", recipient)
    headers = eml.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace").replace("\r\n", "\n")
    return View(issue, recipient, export(settings, issue, "html", recipient).decode("utf-8"),
                export(settings, issue, "txt", recipient).decode("utf-8"), headers,
                store.issue_items(db, issue["id"]), settings.compose.size_budget)


def load_view(settings: Settings, ref: str | None, email: str | None) -> View:
    db = store.open_db(settings.db_path, create=False)
    try:
        return make_view(db, settings, find_issue(db, ref), reader(db, email))
    finally:
        db.close()


def recompose_request(issue: dict, items: list[dict], budget: int) -> ComposeRequest:
    """`compose --replace` for a draft with its articles, window and date pinned (see above)."""
    articles = [e for e in items if e["kind"] == "article"]
    lead = next((e for e in articles if e["section"] == "lead"), None)
    options = Options(
        issue_date=dates.parse_date(issue["issue_date"]),
        date_from=dates.parse_date(issue["window_from"]) if issue["window_from"] else None,
        date_to=dates.parse_date(issue["window_to"]) if issue["window_to"] else None,
        lead=str(lead["item_id"]) if lead else None,
        only=[str(e["item_id"]) for e in articles],
    )
    return ComposeRequest(options=options, replace=str(issue["id"]),
                          allow_clipping=(issue["html_size"] or 0) > budget)


def issue_document(html: str, scheme: str) -> str:
    """The issue for the iframe: links open a new tab; `dark` forces the mail's dark rules,
    `invert` re-inverts images (the page inverts the whole frame)."""
    head = '<base target="_blank">'
    if scheme == "dark":
        html = _STYLE.sub(lambda m: m.group(1) + _force_dark(m.group(2)) + m.group(3), html)
    elif scheme == "invert":
        head += f"<style>img {{ {INVERT}; }}</style>"
    return re.sub(r"<head\b[^>]*>", lambda m: m.group(0) + head, html, count=1)


def _force_dark(css: str) -> str:
    return _LIGHT.sub("(max-width: 0px)", _DARK.sub("(min-width: 0px)", css))


# --- live state ----------------------------------------------------------------------------

class Preview:
    """The current view of one issue, rebuilt when its sources change."""

    def __init__(self, load_settings: Callable[[], Settings], ref: str | None, email: str | None,
                 report: Callable[[str], None] = lambda message: None) -> None:
        self.load_settings, self.ref, self.email, self.report = load_settings, ref, email, report
        self.view: View | None = None
        self.error: str | None = None
        self.version = 0
        self._inputs: list[Path] = []   # templates and config
        self._store: list[Path] = []    # the database and its WAL, which a re-compose writes
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self, recompose: bool) -> None:
        """Read the issue again (re-composing it first if asked and it is a draft)."""
        settings = self.load_settings()
        db = store.open_db(settings.db_path, create=False)
        try:
            issue = self._issue(db)
            if recompose and issue["status"] == "draft":
                items = store.issue_items(db, issue["id"])
                compose(db, settings, recompose_request(issue, items, settings.compose.size_budget))
                issue = store.get_issue(db, issue["id"])
            view = make_view(db, settings, issue, reader(db, self.email))
        finally:
            db.close()
        self._inputs, self._store = sources(settings)
        self._publish(view, None)

    def _issue(self, db: sqlite_utils.Database) -> dict:
        if self.ref is None and self.view is not None and latest_draft(db) is None:
            return store.get_issue(db, self.view.issue["id"])  # the draft shown was sent meanwhile
        return find_issue(db, self.ref)

    def _publish(self, view: View | None, error: str | None) -> None:
        with self._changed:
            self.view = view or self.view
            self.error = error
            self.version += 1
            self._changed.notify_all()

    def state(self) -> tuple[int, View, str | None]:
        with self._changed:
            return self.version, self.view, self.error

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
        seen = stamps(self._inputs), stamps(self._store)
        while not self._stop.wait(POLL_SECONDS):
            inputs = stamps(self._inputs)
            if (inputs, stamps(self._store)) == seen:
                continue
            self._rebuild()
            # Inputs as they were before the rebuild: an edit saved during it triggers another.
            # The store as it is after: our own write must not trigger one.
            seen = inputs, stamps(self._store)

    def _rebuild(self) -> None:
        clock = time.strftime("%H:%M:%S")
        try:
            self.refresh(recompose=True)
        except NewsletterError as e:
            message = str(e)
        except sqlite3.Error as e:
            message = str(store.translate(e))
        except Exception as e:  # noqa: BLE001 - the server outlives whatever a rebuild hits
            message = f"{type(e).__name__}: {e}"
        else:
            verb = "re-composed" if self.view.issue["status"] == "draft" else "reloaded"
            self.report(f"{clock} {verb} {self.view.issue['slug']}")
            return
        self._publish(None, message)
        self.report(f"{clock} Error: {message}")


def sources(settings: Settings) -> tuple[list[Path], list[Path]]:
    """What a preview watches: templates and the config file; the database and its WAL."""
    inputs = [render.default_templates()]
    if settings.templates_dir:
        inputs.append(settings.templates_dir)
    if settings.config_path:
        inputs.append(settings.config_path)
    return inputs, [settings.db_path, Path(f"{settings.db_path}-wal")]


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


# --- the page ------------------------------------------------------------------------------

_PAGES = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_PAGES.filters["german_date"] = dates.german_long
_PAGES.filters["bytes"] = lambda n: f"{n:,}".replace(",", ".")
_REGIONS = {
    "kopf": """<h1>Vorschau: {{ issue.subject }}</h1>
<p>{{ status }} {{ issue.slug }} · {% if issue.number %}Ausgabe {{ issue.number }} · {% endif %}{{ issue.issue_date | german_date }}
· Vorschautext: {{ issue.preheader or "–" }}</p>
<p>Persönlich für: {{ view.recipient.salutation }} &lt;{{ view.recipient.email }}&gt;{% if sample %} (Beispiel){% endif %}</p>""",
    "fehler": """{% if error %}<strong>Neuaufbau fehlgeschlagen:</strong> {{ error }}
<br>Angezeigt wird die letzte fehlerfreie Fassung.{% endif %}""",
    "groesse": """{% set size = issue.html_size or 0 %}{% set ratio = size / view.budget %}
<span class="meter {{ 'over' if ratio > 1 else 'warn' if ratio >= 0.9 else '' }}"><span style="width:{{ [ratio * 100, 100] | min | round(1) }}%"></span></span>
HTML-Teil {{ size | bytes }} von {{ view.budget | bytes }} Bytes ({{ (ratio * 100) | round | int }}&nbsp;%)
{%- if ratio > 1 %} – Gmail kürzt die Mail{% elif ratio >= 0.9 %} – knapp unter der Grenze{% endif %}""",
    "hinweis": """{% if not view.has_dark_css %}Das HTML hat keine Dark-Mode-Regeln (prefers-color-scheme: dark).{% endif %}""",
    "textteil": """{{ view.text }}""",
    "kopfzeilen": """{{ view.headers }}""",
    "inhalt": """<h2>Inhalt</h2>
{%- for label, entries in sections %}{% if entries %}
<h3>{{ label }} ({{ entries | length }})</h3>
<ol>{% for e in entries %}
<li><a href="{{ e.item.url }}" target="_blank" rel="noopener">{{ e.item.title }}</a>
{%- if e.is_new %} <span class="neu">neu</span>{% endif %}
{%- if e.kind == "ad" %} <span class="klein">({{ e.item.advertiser }})</span>{% endif %}</li>{% endfor %}
</ol>{% endif %}{% endfor %}""",
}
_REGION_TEMPLATES = {name: _PAGES.from_string(text) for name, text in _REGIONS.items()}
_PAGE = _PAGES.from_string("""<!doctype html>
<html lang="de"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
:root { font: 14px/1.45 system-ui, sans-serif; color: #1f2933; }
body { margin: 0; background: #e4e7eb; }
#kopf { background: #1f2933; color: #fff; padding: 10px 16px; }
#kopf h1 { font-size: 17px; margin: 0; } #kopf p { margin: 2px 0 0; color: #c3c9d0; }
#fehler:not(:empty) { background: #fde2e4; color: #8a1020; padding: 8px 16px; border-bottom: 1px solid #f4b4bc; }
.leiste { display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center; padding: 8px 16px;
  background: #fff; border-bottom: 1px solid #d9dee4; }
.gruppe { display: flex; gap: 4px; }
button { font: inherit; padding: 3px 10px; border: 1px solid #b8c0c8; background: #fff; border-radius: 3px; cursor: pointer; }
button[aria-pressed="true"] { background: #8a1c3c; border-color: #8a1c3c; color: #fff; }
.meter { display: inline-block; width: 140px; height: 8px; background: #d9dee4; border-radius: 4px; overflow: hidden; vertical-align: middle; }
.meter span { display: block; height: 100%; background: #2f855a; }
.meter.warn span { background: #b7791f; } .meter.over span { background: #c53030; }
#hinweis, #verbindung, .klein { color: #5b6670; font-size: 12px; }
main { display: flex; gap: 16px; padding: 16px; align-items: flex-start; }
#buehne { flex: 1; display: flex; justify-content: center; min-width: 0; }
#rahmen { width: 600px; height: calc(100vh - 170px); border: 0; background: #fff; box-shadow: 0 1px 4px rgba(0,0,0,.3); }
#rahmen.invertiert { {{ invert }}; }
pre { margin: 0; padding: 16px; background: #fff; white-space: pre-wrap; font: 13px/1.4 ui-monospace, monospace;
  max-width: 82ch; box-shadow: 0 1px 4px rgba(0,0,0,.3); }
aside { width: 300px; flex: none; background: #fff; padding: 4px 16px 12px; box-shadow: 0 1px 4px rgba(0,0,0,.3); }
aside h2 { font-size: 15px; } aside h3 { font-size: 13px; margin: 12px 0 4px; }
aside ol { margin: 0; padding-left: 20px; } aside li { margin: 0 0 4px; } aside a { color: #8a1c3c; }
.neu { background: #8a1c3c; color: #fff; font-size: 11px; padding: 0 4px; border-radius: 2px; }
[hidden] { display: none !important; }
</style></head>
<body>
<header id="kopf">{{ regions.kopf }}</header>
<div id="fehler" role="alert">{{ regions.fehler }}</div>
<div class="leiste">
  <div class="gruppe" role="group" aria-label="Ansicht">
    <button data-tab="html">HTML</button><button data-tab="text">Textteil</button><button data-tab="kopfzeilen">Kopfzeilen</button>
  </div>
  <div class="gruppe" role="group" aria-label="Breite">
    <button data-width="600">Desktop (600 px)</button><button data-width="375">Mobil (375 px)</button>
  </div>
  <div class="gruppe" role="group" aria-label="Farbschema">
    <button data-scheme="light">Hell</button>
    <button data-scheme="dark" title="Die Dark-Mode-Regeln der Mail selbst, wie Apple Mail sie anwendet">Dunkel (eigenes CSS)</button>
    <button data-scheme="invert" title="Näherung: Farben invertiert, Bilder nicht – so färben Gmail-App und Outlook Mails um">Dunkel invertiert (Näherung)</button>
  </div>
  <div id="groesse">{{ regions.groesse }}</div>
  <div id="hinweis">{{ regions.hinweis }}</div>
  <div id="verbindung"></div>
</div>
<main>
  <div id="buehne">
    <iframe id="rahmen" title="Ausgabe"></iframe>
    <pre id="textteil" hidden>{{ regions.textteil }}</pre>
    <pre id="kopfzeilen" hidden>{{ regions.kopfzeilen }}</pre>
  </div>
  <aside id="inhalt">{{ regions.inhalt }}</aside>
</main>
<script>
"use strict";
let version = {{ version }};
const frame = document.getElementById("rahmen");
const choice = Object.assign({tab: "html", width: "600", scheme: "light"},
                             JSON.parse(sessionStorage.getItem("vorschau") || "{}"));
function apply() {
  sessionStorage.setItem("vorschau", JSON.stringify(choice));
  for (const key of ["tab", "width", "scheme"]) {
    document.querySelectorAll(`[data-${key}]`).forEach(b => b.setAttribute("aria-pressed", b.dataset[key] === choice[key]));
  }
  frame.hidden = choice.tab !== "html";
  document.getElementById("textteil").hidden = choice.tab !== "text";
  document.getElementById("kopfzeilen").hidden = choice.tab !== "kopfzeilen";
  frame.style.width = choice.width + "px";
  frame.classList.toggle("invertiert", choice.scheme === "invert");
  const src = `/issue.html?scheme=${choice.scheme}&v=${version}`;
  if (frame.getAttribute("src") !== src) {
    const y = frame.contentWindow ? frame.contentWindow.scrollY : 0;
    frame.addEventListener("load", () => frame.contentWindow.scrollTo(0, y), {once: true});
    frame.setAttribute("src", src);
  }
}
document.querySelectorAll("[data-tab],[data-width],[data-scheme]").forEach(
  b => b.addEventListener("click", () => { Object.assign(choice, b.dataset); apply(); }));
const events = new EventSource("/events");
const connection = document.getElementById("verbindung");
events.onopen = () => { connection.textContent = "live"; };
events.onerror = () => { connection.textContent = "Verbindung zur Vorschau unterbrochen"; };
events.onmessage = async (event) => {
  if (Number(event.data) === version) return;
  const data = await (await fetch("/fragments.json")).json();
  version = data.version;
  document.title = data.title;
  for (const [id, html] of Object.entries(data.regions)) document.getElementById(id).innerHTML = html;
  apply();
};
apply();
</script>
</body></html>
""")


def regions(view: View, error: str | None) -> dict[str, Markup]:
    """The parts of the page that change with the issue, as HTML."""
    by_section = {key: [e for e in view.items if e["section"] == key] for key, _ in SECTIONS}
    values = {"view": view, "issue": view.issue, "error": error, "sample": view.recipient == SAMPLE,
              "status": STATUS.get(view.issue["status"], view.issue["status"]),
              "sections": [(label, by_section[key]) for key, label in SECTIONS]}
    return {name: Markup(t.render(values)) for name, t in _REGION_TEMPLATES.items()}


def page(version: int, view: View, error: str | None) -> str:
    return _PAGE.render(title=_title(view), regions=regions(view, error), version=version, invert=Markup(INVERT))


def fragments(version: int, view: View, error: str | None) -> dict:
    return {"version": version, "title": _title(view), "regions": regions(view, error)}


def _title(view: View) -> str:
    return f"Vorschau: {view.issue['subject']}"


# --- the server ----------------------------------------------------------------------------

class PreviewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, preview: Preview, host: str, port: int) -> None:
        self.preview = preview
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

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

    def _events(self, preview: Preview) -> None:
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
          report: Callable[[str], None] = lambda message: None) -> PreviewServer:
    """Build the first view and listen on host:port (port 0: any free one); call serve_forever()."""
    preview = Preview(load_settings, ref, email, report)
    preview.refresh(recompose=False)
    try:
        server = PreviewServer(preview, host, port)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise InputError(f"Port {port} on {host} is already in use - stop the other program or pass another --port") from None
        raise InputError(f"Cannot listen on {host}:{port}: {e.strerror} - pass another --port or fix [preview] host") from None
    preview.watch()
    return server


# --- screenshots ---------------------------------------------------------------------------

def screenshots(html: str, folder: Path) -> list[Path]:
    """desktop.png (600 px), mobile.png (375 px) and dark.png (600 px), full page height."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ConfigError("Playwright is not installed - pip install playwright") from None
    if not CHROMIUM.exists():
        raise ConfigError("Chromium is not installed - apt-get install chromium")
    dark_css = has_dark_css(html)
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"Cannot write to {folder}: {e.strerror} - choose another folder") from None
    paths = []
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        except PlaywrightError as e:
            raise ConfigError(f"Chromium at {CHROMIUM} does not start ({str(e).splitlines()[0]}) - "
                              "reinstall it: apt-get install --reinstall chromium") from None
        try:
            for name, width, scheme in SHOTS:
                paths.append(_shoot(browser, html, folder / name, width, scheme, invert=scheme == "dark" and not dark_css))
        finally:
            browser.close()
    return paths


def _shoot(browser, html: str, path: Path, width: int, scheme: str, invert: bool) -> Path:
    context = browser.new_context(viewport={"width": width, "height": 800}, device_scale_factor=1, color_scheme=scheme)
    try:
        page = context.new_page()
        page.route("**/*", _offline)
        page.set_content(html, wait_until="load")
        if invert:
            page.add_style_tag(content=f"html, img {{ {INVERT}; }}")
        data = page.screenshot(full_page=True)
    finally:
        context.close()
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        raise InputError(f"Cannot write {path}: {e.strerror} - choose another folder") from None
    return path


def _offline(route) -> None:
    """Images get a grey placeholder; nothing else leaves the machine."""
    request = route.request
    if request.url.startswith(("data:", "about:")):
        route.continue_()
    elif request.resource_type == "image":
        route.fulfill(status=200, content_type="image/png", body=PLACEHOLDER_PNG)
    else:
        route.abort()


def placeholder_png(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (200, 205, 210)) -> bytes:
    """A solid-colour 8-bit RGB PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = (b"\x00" + bytes(rgb) * width) * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PLACEHOLDER_PNG = placeholder_png()
