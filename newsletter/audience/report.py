"""What one returned mail says, and whether a failure is hard or soft.

    a reader (dsn, detectors) → Failure per recipient, kind() → ReturnedMail → newsletter.audience.bounces

Kinds. Hard: the mail failed for good with a 5.x.x status. Soft: a 4.x.x status, Action:
delayed, a failure that gives no code, and 5.x.x codes that say nothing about the address:
X.2.2 (mailbox full), X.3.4 (message too big), X.4.7 (delivery time expired), X.6.X (content)
and X.7.X (policy: spam filters, block lists, DMARC) - a block list entry for our server
must not suppress every reader at that provider.

No code. A failure that gives no code at all is soft, unless its words say the address does
not exist ("user unknown", "Benutzer unbekannt", "Empfänger unbekannt", "existiert nicht").

Generic codes. A 5.0.0, or a bare SMTP reply code without an enhanced one, says only that the
mail failed; Postfix writes 5.0.0 for every 5xx reply that lacks an enhanced code ("552 Mailbox
full") and for its error transport ("X-Postfix; mailbox full"). There the server's words decide:
mailbox full, quota, message too large, spam or block lists, an unreachable host, a mail loop or
a temporary error: soft; user unknown, no such user, does not exist, account disabled: hard.
Otherwise 5.0.0 is hard, and a bare code is hard only when it is one that means "no such
mailbox" (550, 551, 553).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

NOT_FAILED = ("delivered", "relayed", "expanded")
ADDRESS_CODES = (550, 551, 553)        # basic replies that mean "no such mailbox" (RFC 5321)
NOT_THE_ADDRESS = ("2.2", "3.4", "4.7")  # subject.detail of 5.x.x codes counted as soft
MAX_TEXT = 1000
# What a server writes about a generic failure (see "Generic codes" above), English and German.
NOT_THE_ADDRESS_TEXT = re.compile("|".join([
    r"\b(mail ?box|mail ?folder|inbox|postfach|account|disk)\b[^.]{0,20}\b(full|voll)\b", r"quota",
    r"storage allocation", r"insufficient (storage|space)",                              # a full mailbox
    r"over ?size", r"too (large|big)", r"exceed\w*\W+(\w+\W+){0,4}size", r"size\W+(\w+\W+){0,4}exceed",  # too big
    r"spam", r"unsolicited", r"black ?list", r"block ?list", r"blocked",                # a filter or policy
    r"not reachable", r"unreachable", r"not responding", r"timed? ?out", r"name service error",
    r"host not found", r"too many hops", r"loop", r"temporar",                          # the way there
]), re.IGNORECASE)
ADDRESS_TEXT = re.compile("|".join([
    r"(user|addressee|recipient) (unknown|not known)", r"unknown (user|recipient|address)",
    r"no such (user|mailbox|recipient|address)", r"does ?n[o']t exist", r"(user|recipient|mailbox) not found",
    r"no mailbox here", r"not listed in", r"invalid (recipient|address|mailbox|user)", r"no longer (valid|exists)",
    r"(account|address|mailbox) (has been |is )?(disabled|discontinued|deactivated|closed|deleted)",
    r"(benutzer|empf\S*nger|adresse|postfach|mailbox|konto) (ist )?(unbekannt|nicht vorhanden|nicht gefunden)",
    r"unbekannte?r? (benutzer|empf\S*nger|adresse)", r"existiert nicht", r"gibt es nicht", r"n'existe pas",
]), re.IGNORECASE)


@dataclass(frozen=True)
class Failure:
    """One failed recipient of a bounce."""

    address: str       # Final-Recipient ('' when missing)
    original: str      # Original-Recipient ('' when missing)
    action: str        # failed | delayed | '' (a failure that names no action)
    kind: str          # hard | soft
    status: str        # RFC 3463 code such as 5.1.1 ('' when the report gives none)
    diagnostic: str    # the remote server's reply as reported


@dataclass
class ReturnedMail:
    """What one mail says, before anything is looked up."""

    kind: str                                           # bounce | complaint | ignored | unparseable
    reason: str = ""                                    # why ignored or unparseable
    failures: list[Failure] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)  # complaint: who the original went to
    verp: list[str] = field(default_factory=list)       # VERP tokens (unverified)
    unsubscribe: list[str] = field(default_factory=list)  # tokens in the returned List-Unsubscribe
    original_id: str | None = None                      # Message-ID of the message that came back
    queue_id: str | None = None                         # else the warning MTA's id of it ('exim:ID@host')
    detail: str = ""                                    # complaint: who reported it, with what
    mail_id: str = ""                                   # the bounce mail's Message-ID (or hash)
    received_at: str | None = None                      # the bounce mail's Date, UTC


def kind(action: str, status: str, code: int | None, text: str = "") -> str | None:
    """'hard', 'soft' or None (this recipient did not fail), from the action, the RFC 3463
    status, the basic reply code and the server's `text`; see the module docstring."""
    if action in NOT_FAILED:
        return None
    permanent = status[:1] == "5" if status else bool(code and code >= 500)
    transient = status[:1] == "4" if status else bool(code and 400 <= code < 500)
    if action not in ("failed", "delayed") and not (permanent or transient):
        return None  # neither the action nor a code says that it failed
    if action == "failed" and not (permanent or transient):  # no code at all: the words decide
        return "hard" if ADDRESS_TEXT.search(text) and not NOT_THE_ADDRESS_TEXT.search(text) else "soft"
    if action == "delayed" or not permanent:
        return "soft"
    if status and status != "5.0.0":
        subject, _, detail = status[2:].partition(".")
        return "soft" if subject in ("6", "7") or f"{subject}.{detail}" in NOT_THE_ADDRESS else "hard"
    if NOT_THE_ADDRESS_TEXT.search(text):
        return "soft"
    if ADDRESS_TEXT.search(text):
        return "hard"
    return "hard" if status or code in ADDRESS_CODES else "soft"
