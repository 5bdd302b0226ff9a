"""The preview page's markup: the HTML, CSS and JavaScript of the page `newsletter preview` serves,
and the issue as the page's iframe shows it.

Data flow: a `newsletter.web.view.View` → `page()` (the whole page, on load) and `fragments()` (the
regions that change with the issue, as JSON; the page's script fetches them after each live-reload
event and swaps them in) → the browser. `issue_document()` → the iframe at /issue.html.

Dark mode: an iframe cannot get a `prefers-color-scheme` of its own, so the page offers two views.
"Dunkel (eigenes CSS)" rewrites the mail's `prefers-color-scheme: dark` rules to always apply (what
Apple Mail shows); "Dunkel invertiert (Näherung)" imitates clients that recolour mail themselves
(Gmail app, Outlook) by inverting the frame with a hue rotation and re-inverting the images.
`INVERT` is shared with `web.screenshots` for dark.png.
"""

from __future__ import annotations

import re

import jinja2
from markupsafe import Markup

from newsletter import dates
from newsletter.compose.personal import SAMPLE
from newsletter.web.view import View

SECTIONS = (("lead", "Aufmacher"), ("articles", "Weitere Meldungen"), ("jobs", "Stellenmarkt"), ("ads", "Anzeigen"))
STATUS = {"draft": "Entwurf", "scheduled": "geplant", "sending": "wird verschickt", "sent": "verschickt"}
INVERT = "filter: invert(1) hue-rotate(180deg)"
_STYLE = re.compile(r"(<style\b[^>]*>)(.*?)(</style>)", re.S | re.I)
_DARK = re.compile(r"\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.I)
_LIGHT = re.compile(r"\(\s*prefers-color-scheme\s*:\s*light\s*\)", re.I)


# --- the issue in the frame ----------------------------------------------------------------

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


# --- the page ------------------------------------------------------------------------------

_PAGES = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_PAGES.filters["german_date"] = dates.german_long
_PAGES.filters["bytes"] = lambda n: f"{n:,}".replace(",", ".")
_REGIONS = {
    "kopf": """<h1>Vorschau: {{ issue.subject }}</h1>
<p>{{ status }} {{ issue.slug }} · {% if issue.number %}Ausgabe {{ issue.number }} · {% endif %}
{{- issue.issue_date | german_date }}
· Vorschautext: {{ issue.preheader or "–" }}</p>
<p>Persönlich für: {{ view.recipient.salutation }} &lt;{{ view.recipient.email }}&gt;{% if sample %} (Beispiel){% endif %}</p>""",
    "fehler": """{% if error %}<strong>Neuaufbau fehlgeschlagen:</strong> {{ error }}
<br>Angezeigt wird die letzte fehlerfreie Fassung.{% endif %}""",
    "groesse": """{% set size = issue.html_size or 0 %}{% set ratio = size / view.budget %}
<span class="meter {{ 'over' if ratio > 1 else 'warn' if ratio >= 0.9 else '' }}">
  <span style="width:{{ [ratio * 100, 100] | min | round(1) }}%"></span></span>
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
.meter { display: inline-block; width: 140px; height: 8px; background: #d9dee4; border-radius: 4px; overflow: hidden;
         vertical-align: middle; }
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
    <button data-tab="html">HTML</button><button data-tab="text">Textteil</button>
    <button data-tab="kopfzeilen">Kopfzeilen</button>
  </div>
  <div class="gruppe" role="group" aria-label="Breite">
    <button data-width="600">Desktop (600 px)</button><button data-width="375">Mobil (375 px)</button>
  </div>
  <div class="gruppe" role="group" aria-label="Farbschema">
    <button data-scheme="light">Hell</button>
    <button data-scheme="dark" title="Die Dark-Mode-Regeln der Mail selbst, wie Apple Mail sie anwendet">
      Dunkel (eigenes CSS)</button>
    <button data-scheme="invert"
      title="Näherung: Farben invertiert, Bilder nicht – so färben Gmail-App und Outlook Mails um">
      Dunkel invertiert (Näherung)</button>
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
              "status": STATUS.get(view.issue.status, view.issue.status),
              "sections": [(label, by_section[key]) for key, label in SECTIONS]}
    return {name: Markup(t.render(values)) for name, t in _REGION_TEMPLATES.items()}


def page(version: int, view: View, error: str | None) -> str:
    return _PAGE.render(title=_title(view), regions=regions(view, error), version=version, invert=Markup(INVERT))


def fragments(version: int, view: View, error: str | None) -> dict:
    return {"version": version, "title": _title(view), "regions": regions(view, error)}


def _title(view: View) -> str:
    return f"Vorschau: {view.issue.subject}"
