"""The per-recipient contract, in one place: which parts of an issue are personal, the values
one reader brings, and how a rendered issue is personalised.

An issue is rendered once, for nobody in particular: the templates see `reader.*` as the
placeholders below, which pass through MJML, premailer and the text wrapper unchanged. Whoever
needs one reader's version (the message builder for each recipient, previews, exports, the web
archive) fills them with `personalise`, and nothing is rendered again.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

PLACEHOLDERS = {"salutation": "%%salutation%%", "email": "%%email%%", "token": "%%token%%"}

_ANREDE = {"frau": "Frau", "fr.": "Frau", "fr": "Frau",
           "herr": "Herr", "herrn": "Herr", "hr.": "Herr", "hr": "Herr"}
NEUTRAL = "Guten Tag"


@dataclass(frozen=True)
class Recipient:
    """One reader's values for the placeholders."""

    email: str
    salutation: str = NEUTRAL
    token: str = ""

    def values(self) -> dict[str, str]:
        return {"salutation": self.salutation, "email": self.email, "token": self.token}


# The reader exports and previews show; no secret is needed to make them. The token has the
# form and the greatest length of a real one (`tokens.make` for a six-digit base-36 id), so
# header lengths measured on the sample hold for every reader.
SAMPLE = Recipient(email="erika.muster@example.org", salutation="Sehr geehrte Frau Dr. Muster",
                   token="zzzzzz.BEISPIEL-TOKEN-0123456")
# A web visitor of the archive is nobody in particular and gets no token.
VISITOR = Recipient(email="alle Abonnentinnen und Abonnenten", salutation=NEUTRAL, token="")


def anrede(value: str) -> str:
    """'fr.' -> 'Frau', 'Hr' -> 'Herr'; anything else as given."""
    return _ANREDE.get(value.strip().lower(), value.strip())


def salutation(row: dict) -> str:
    """The German greeting for a subscriber row, without the trailing comma.

    "Sehr geehrte Frau Dr. Müller", "Sehr geehrter Herr Schmidt", "Guten Tag Alex Beispiel"
    (no or another Anrede) or plain "Guten Tag" (no Nachname).
    """
    def get(key: str) -> str:
        return " ".join(str(row.get(key) or "").split())

    form = _ANREDE.get(get("anrede").lower())
    nachname, vorname = get("nachname"), get("vorname")
    if nachname and form:
        opening = "Sehr geehrte Frau" if form == "Frau" else "Sehr geehrter Herr"
        return " ".join(part for part in (opening, get("titel"), nachname) if part)
    if nachname and vorname:
        return f"{NEUTRAL} {vorname} {nachname}"
    return NEUTRAL


def unsubscribe_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/u/{token}"


def template_context(base_url: str) -> dict:
    """What the templates see as `reader`: the placeholders."""
    return {
        "salutation": PLACEHOLDERS["salutation"],
        "email": PLACEHOLDERS["email"],
        "unsubscribe_url": unsubscribe_url(base_url, PLACEHOLDERS["token"]),
    }


def personalise(text: str, recipient: Recipient, *, markup: bool = False) -> str:
    """A rendered part with the placeholders filled for `recipient` (`markup`: HTML-escaped)."""
    values = recipient.values()
    for name, marker in PLACEHOLDERS.items():
        value = values[name]
        text = text.replace(marker, html.escape(value) if markup else value)
    return text
