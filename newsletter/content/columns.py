"""Column names as editors write them: the German headers of a spreadsheet ("Titel", "Link",
"Bewerbungsschluss", "Inserent") and a few English variants, mapped to the store's fields; and a
one-line answer when a file's columns name none of the required fields.
"""

from __future__ import annotations

import re

from newsletter.errors import InputError

# Header (lower case, spaces, hyphens and underscores removed, umlauts kept) -> field, for every kind.
ALIASES = {
    "titel": "title", "überschrift": "title", "headline": "title", "stelle": "title", "stellenbezeichnung": "title",
    "link": "url", "adresse": "url", "webadresse": "url", "weblink": "url", "permalink": "url",
    "datum": "published", "veröffentlicht": "published", "veröffentlichung": "published", "publiziert": "published",
    "erschienen": "published", "date": "published", "pubdate": "published",
    "autor": "author", "autorin": "author", "verfasser": "author", "verfasserin": "author",
    "rubrik": "category", "kategorie": "category", "ressort": "category",
    "teaser": "teaser", "anriss": "teaser", "vorspann": "teaser", "kurztext": "teaser", "zusammenfassung": "teaser",
    "bild": "image", "bildurl": "image", "foto": "image", "bildlink": "image",
    "bildunterschrift": "image_caption", "bildtext": "image_caption",
    "bildnachweis": "image_credit", "fotograf": "image_credit", "fotografin": "image_credit", "credit": "image_credit",
    "alttext": "image_alt", "bildbeschreibung": "image_alt",
    "arbeitgeber": "employer", "unternehmen": "employer", "firma": "employer",
    "ort": "location", "standort": "location", "einsatzort": "location", "arbeitsort": "location",
    "anstellung": "employment", "beschäftigung": "employment", "beschäftigungsart": "employment",
    "arbeitszeit": "employment", "umfang": "employment",
    "befristung": "term", "laufzeit": "term", "vertragsart": "term", "vertrag": "term",
    "bewerbungsschluss": "deadline", "bewerbungsfrist": "deadline", "frist": "deadline",
    "inserent": "advertiser", "auftraggeber": "advertiser", "kunde": "advertiser", "werbekunde": "advertiser",
    "anzeigentext": "text", "beginn": "starts", "start": "starts", "ab": "starts", "von": "starts",
    "ende": "ends", "bis": "ends",
}
# "Text" is an ad's text, but an article's body.
FOR_KIND = {"article": {"text": "body", "inhalt": "body", "artikeltext": "body"}}
GERMAN = {"url": "Link", "title": "Titel", "published": "Datum", "author": "Autor", "category": "Rubrik",
          "teaser": "Teaser", "body": "Text", "image": "Bild", "image_caption": "Bildunterschrift",
          "image_credit": "Bildnachweis", "image_alt": "Alt-Text", "employer": "Arbeitgeber", "location": "Ort",
          "employment": "Anstellung", "term": "Befristung", "deadline": "Bewerbungsschluss",
          "advertiser": "Inserent", "text": "Text", "starts": "Beginn", "ends": "Ende"}


def key(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", str(name).strip().lower())


def canonical(name: str, kind: str | None = None) -> str:
    """The store's field for a column name (the name itself, lower case, if it is no alias)."""
    k = key(name)
    if kind and k in FOR_KIND.get(kind, {}):
        return FOR_KIND[kind][k]
    return ALIASES.get(k, str(name).strip().lower())


def rename(data, kind: str | None = None):
    """A row with its keys mapped to the store's fields (a field given twice keeps the first)."""
    if not isinstance(data, dict):
        return data
    out: dict = {}
    for name, value in data.items():
        out.setdefault(canonical(name, kind), value)
    return out


def require(found: set[str], fields: dict, required: tuple[str, ...], name: str, kind: str) -> None:
    """Refuse a file whose columns hold none of a required field, naming what was not
    recognised and what is expected (in the store's and in German words)."""
    absent = [f for f in required if f not in found]
    if not absent:
        return
    unknown = sorted(found - set(fields))
    expected = ", ".join(f"{f} ({GERMAN[f]})" if f in GERMAN else f for f in fields)
    shown = ", ".join(unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
    raise InputError(
        f"{name}: no column for {' and '.join(absent)} ({kind}s need {', '.join(required)})"
        + (f"; not recognised: {shown}" if unknown else "")
        + f" - name the columns as expected: {expected}")
