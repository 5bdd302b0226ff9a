"""Pieces of a returned mail, read without trusting it: MIME parts, the returned message, header
fields, addresses, reply codes, tokens and dates.

    email.message.Message → parts / returned_message / part_text → addresses, codes, tokens

Every function here takes what a broken or hostile mail gives and returns '' or None rather
than raising, so a reader built on them never stops an import.
"""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from datetime import UTC
from email.header import decode_header, make_header
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

# compat32: the one email policy whose header access never raises on broken input.
POLICY = compat32
# A token of newsletter.tokens: subscriber id in base 36, a dot, 22 characters of HMAC.
_TOKEN = r"[0-9a-z]{1,13}\.[A-Za-z0-9_-]{22}"
TOKEN_RE = re.compile(rf"(?<![\w.-])({_TOKEN})(?![\w-])")
VERP_RE = re.compile(rf"\bbounces\+({_TOKEN})@", re.IGNORECASE)
VERP_HEADERS = ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")
ENHANCED_RE = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?![\w.])")
BASIC_RE = re.compile(r"(?<![\w.\[:])([245]\d\d)(?=[ -]|$)")
BOUNCE_SENDERS = ("mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster")
AUTO_SUBJECT = re.compile(r"^(automatische antwort|automatic reply|abwesenheitsnotiz|out of office|"
                          r"auto-?reply|autoreply|auto:|abwesend)", re.IGNORECASE)


def parts(msg: Message) -> Iterator[Message]:
    """The message and its MIME parts, without descending into attached messages."""
    yield msg
    if msg.get_content_maintype() == "multipart":
        for sub in children(msg):
            yield from parts(sub)


def children(msg: Message) -> list[Message]:
    """The messages a part holds (its sub-parts, or the header blocks of a report); [] for a leaf."""
    payload = msg.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def find(msg: Message, *types: str) -> Message | None:
    return next((p for p in parts(msg) if p.get_content_type() in types), None)


def returned_message(msg: Message) -> Message | None:
    """The returned message (message/rfc822) or its headers (text/rfc822-headers)."""
    for part in parts(msg):
        kind = part.get_content_type()
        held = children(part)
        if kind in ("message/rfc822", "message/global") and held:
            return held[0]
        if kind in ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers"):
            return email.message_from_string(part_text(part).lstrip(), policy=POLICY)
    return None


def body_text(msg: Message) -> str:
    part = next((p for p in parts(msg) if p.get_content_type() == "text/plain"), None)
    return part_text(part) if part is not None else ""


def part_text(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return str(part.get_payload())
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except (LookupError, ValueError):  # an unknown or garbled charset name
        return data.decode("utf-8", "replace")


def verp_tokens(msg: Message, original: Message | None) -> list[str]:
    values = [str(v) for name in VERP_HEADERS for v in msg.get_all(name, [])]
    if original is not None:
        values += [str(v) for v in original.get_all("Return-Path", [])]
    return [t for value in values for t in VERP_RE.findall(value)]


def unsubscribe_tokens(original: Message | None) -> list[str]:
    if original is None:
        return []
    return TOKEN_RE.findall(" ".join(str(v) for v in original.get_all("List-Unsubscribe", [])))


def field_value(block: Message, name: str) -> str:
    return " ".join(str(block.get(name, "")).split())


def address_of(value) -> str:
    """'rfc822; Anna@Example.net' → 'Anna@Example.net'; '' when there is no address."""
    text = " ".join(str(value or "").split())
    _, sep, rest = text.partition(";")
    address = (rest if sep else text).strip().strip("<>").strip()
    return address if "@" in address and " " not in address else ""


def first_address(text: str | None) -> str:
    found = re.search(r"<?([^\s<>()@,;:\"]+@[^\s<>()@,;:\"]+?)>?(?=[\s:,;)]|$)", text or "")
    return found.group(1) if found else ""


def smtp_reply(diagnostic: str) -> tuple[int | None, str]:
    """'smtp; 550 5.1.1 ...' → (550, '550 5.1.1 ...'): a diagnostic's basic code and reply."""
    reply = strip_type(diagnostic)
    return basic(reply), reply


def strip_type(diagnostic: str) -> str:
    """'smtp; 550 5.1.1 ...' → '550 5.1.1 ...'."""
    return re.sub(r"^[A-Za-z][\w-]*\s*;\s*", "", diagnostic)


def enhanced(text: str) -> str:
    found = ENHANCED_RE.search(text)
    return ".".join(found.groups()) if found else ""


def basic(text: str) -> int | None:
    found = BASIC_RE.search(text)
    return int(found.group(1)) if found else None


def message_id(value) -> str | None:
    text = " ".join(str(value or "").split())
    found = re.search(r"<[^<>\s]+>", text)
    return found.group(0) if found else (text[:300] or None)


def utc(value) -> str | None:
    """An RFC 5322 date as stored in *_at columns, or None when missing or broken."""
    try:
        moment = parsedate_to_datetime(" ".join(str(value).split())) if value else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def decoded(value) -> str:
    """A header value with RFC 2047 encoded words decoded, on one line."""
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (LookupError, UnicodeError, ValueError, email.errors.MessageError):
        text = str(value)
    return " ".join(text.split())


def sender(msg: Message) -> str:
    """The From address, lower case ('' when there is none)."""
    return (getaddresses([str(msg.get("From", ""))]) or [("", "")])[0][1].lower()


def from_mail_system(msg: Message) -> bool:
    return sender(msg).partition("@")[0] in BOUNCE_SENDERS or bool(msg.get("X-Failed-Recipients"))


def auto_reply_marker(msg: Message, subject: str) -> str:
    """What marks the mail as sent by a program (RFC 3834 and common practice), or ''."""
    auto = field_value(msg, "Auto-Submitted").lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if msg.get(name):
            return name
    if field_value(msg, "Precedence").lower() == "auto_reply":
        return "Precedence: auto_reply"
    return f"Subject: {subject[:60]}" if AUTO_SUBJECT.match(subject) else ""
