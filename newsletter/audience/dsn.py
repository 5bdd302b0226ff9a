"""Reading returned mail: one mail in, one neutral Report out, no database and no subscriber.

    raw bytes → read_report → Report: bounce | complaint | ignored | unparseable
                              (recipients with action, status, diagnostic and kind; VERP and
                               unsubscribe tokens; the Message-ID of the message that came back)

A mail is a bounce when it carries a message/delivery-status part (RFC 3464; per recipient:
Final-Recipient, Action, Status, Diagnostic-Code) or is Exim's text bounce ("This message was
created automatically by mail delivery software", failed addresses indented under it, the
remote server's reply below each). It is a complaint when it carries a message/feedback-report
(ARF, RFC 5965) with Feedback-Type: abuse. Anything else is never guessed at: automatic replies
(out-of-office) are reported as ignored, all other mails as unparseable, each with the reason.

Kinds. Hard: the mail failed for good with a 5.x.x status. Soft: a 4.x.x status, Action:
delayed, a failure that gives no code, and 5.x.x codes that say nothing about the address:
X.2.2 (mailbox full), X.3.4 (message too big), X.4.7 (delivery time expired), X.6.X (content)
and X.7.X (policy: spam filters, block lists, DMARC) - a block list entry for our server
must not suppress every reader at that provider.

The returned message. Its Message-ID comes from the message/rfc822 or text/rfc822-headers
part, a DSN's X-Original-Message-ID, or the headers after Exim's "This is a copy" line. Exim's
text delay warnings return no headers; they name the message by the warning host's queue id
instead ("The message identifier is: 1tF7Qm-0003aD-3y"), kept as `queue_id`.

The tokens found here are unverified: newsletter.bounces checks them against the secret.
"""

from __future__ import annotations

import email
import hashlib
import re
from dataclasses import dataclass, field
from datetime import timezone
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
NOT_FAILED = ("delivered", "relayed", "expanded")
ADDRESS_CODES = (550, 551, 553)        # basic replies that mean "no such mailbox" (RFC 5321)
NOT_THE_ADDRESS = ("2.2", "3.4", "4.7")  # subject.detail of 5.x.x codes counted as soft
EXIM_MARK = "This message was created automatically by mail delivery software"
EXIM_FAILED = "could not be delivered to one or more of its recipients"
EXIM_DELAYED = "has not yet been delivered to one or more of its recipients"
EXIM_QUEUE_ID = re.compile(r"message identifier is:\s*([0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4})\b")
EXIM_COPY = re.compile(r"^-{6} (This is a copy of the message|The body of the message is)", re.MULTILINE)
BOUNCE_SENDERS = ("mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster")
BOUNCE_SUBJECT = re.compile(r"undeliver|delivery status|delivery fail|mail delivery|returned mail|"
                            r"failure notice|unzustellbar|nicht zugestellt|zustellung fehlgeschlagen", re.IGNORECASE)
AUTO_SUBJECT = re.compile(r"^(automatische antwort|automatic reply|abwesenheitsnotiz|out of office|"
                          r"auto-?reply|autoreply|auto:|abwesend)", re.IGNORECASE)
MAX_TEXT = 1000


# --- reading one mail ------------------------------------------------------------------------

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
class Report:
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


def read_report(raw: bytes) -> Report:
    """Parse one mail into a Report (bounce, complaint, ignored or unparseable)."""
    msg = email.message_from_bytes(raw, policy=POLICY)
    report = _classify(msg) if msg.keys() else Report("unparseable", "not a mail (no header lines)")
    report.mail_id = _message_id(msg.get("Message-ID")) or "sha256:" + hashlib.sha256(raw).hexdigest()
    report.received_at = utc(msg.get("Date"))
    return report


def _classify(msg: Message) -> Report:
    status_part = _find(msg, "message/delivery-status", "message/global-delivery-status")
    if status_part is not None:
        return _from_dsn(msg, status_part)
    feedback = _find(msg, "message/feedback-report")
    if feedback is not None:
        return _from_arf(msg, feedback)
    text = _body_text(msg)
    if EXIM_MARK in " ".join(text.split()) and _from_mail_system(msg):
        return _from_exim(msg, text)
    sender, subject = decoded(msg.get("From")), decoded(msg.get("Subject"))
    seen = f"From: {sender or '-'}, Subject: {subject[:80] or '-'}"
    if _from_mail_system(msg) or BOUNCE_SUBJECT.search(subject):
        return Report("unparseable", f"looks like a bounce but has no delivery status this importer reads ({seen})")
    marker = _auto_reply_marker(msg, subject)
    if marker:
        return Report("ignored", f"automatic reply ({marker}), not a bounce")
    return Report("unparseable", f"neither a delivery status notification nor a complaint report ({seen})")


def _from_dsn(msg: Message, part: Message) -> Report:
    blocks = _status_blocks(part)
    recipients = [b for b in blocks if b.get("Final-Recipient") or b.get("Original-Recipient") or b.get("Action")]
    if not recipients:
        return Report("unparseable", "delivery status without per-recipient fields (Final-Recipient, Action, Status)")
    failures = [f for f in map(_failure, recipients) if f is not None]
    if not failures:
        actions = sorted({_field(b, "Action").lower() or "-" for b in recipients})
        return Report("ignored", f"delivery report (Action: {', '.join(actions)}), not a bounce")
    original = _original(msg)
    per_message = next((b for b in blocks if b not in recipients), None)
    original_id = _message_id(original.get("Message-ID") if original else None) or \
        _message_id(per_message.get("X-Original-Message-ID") if per_message else None)
    return Report("bounce", failures=failures, verp=_verp(msg, original), original_id=original_id,
                  unsubscribe=_unsubscribe_tokens(original))


def _failure(block: Message) -> Failure | None:
    diagnostic = _field(block, "Diagnostic-Code")
    status = _enhanced(_field(block, "Status")) or _enhanced(_strip_type(diagnostic))
    action = (_field(block, "Action").lower().split() or [""])[0]
    kind = _kind(action, status, _basic(_strip_type(diagnostic)))
    if kind is None:
        return None
    return Failure(_address(block.get("Final-Recipient")), _address(block.get("Original-Recipient")),
                   action, kind, status, diagnostic[:MAX_TEXT])


def _kind(action: str, status: str, code: int | None) -> str | None:
    """'hard', 'soft' or None (this recipient did not fail); see the module docstring."""
    if action in NOT_FAILED:
        return None
    permanent = status[:1] == "5" if status else bool(code and code >= 500)
    transient = status[:1] == "4" if status else bool(code and 400 <= code < 500)
    if action not in ("failed", "delayed") and not (permanent or transient):
        return None  # neither the action nor a code says that it failed
    if action == "delayed" or not permanent:
        return "soft"
    if status:
        subject, _, detail = status[2:].partition(".")
        return "soft" if subject in ("6", "7") or f"{subject}.{detail}" in NOT_THE_ADDRESS else "hard"
    return "hard" if code in ADDRESS_CODES else "soft"


def _from_arf(msg: Message, part: Message) -> Report:
    fields = part.get_payload(0) if part.is_multipart() else \
        email.message_from_string(_part_text(part), policy=POLICY)
    feedback_type = _field(fields, "Feedback-Type").lower()
    if feedback_type != "abuse":
        return Report("ignored", f"feedback report of type {feedback_type or 'unknown'!r}, not a complaint")
    original = _original(msg)
    addresses = [_address(v) for v in fields.get_all("Original-Rcpt-To", [])]
    if original is not None:
        addresses += [a for _, a in getaddresses([str(v) for v in original.get_all("To", [])])]
    verp = _verp(msg, original) + VERP_RE.findall(_field(fields, "Original-Mail-From"))
    reporter = decoded(msg.get("From"))
    agent = _field(fields, "User-Agent")
    return Report("complaint", addresses=[a for a in addresses if "@" in a], verp=verp,
                  unsubscribe=_unsubscribe_tokens(original),
                  original_id=_message_id(original.get("Message-ID") if original else None),
                  detail=f"{agent or 'feedback report'} from {reporter or 'unknown sender'}"[:MAX_TEXT])


def _from_exim(msg: Message, text: str) -> Report:
    flat = " ".join(text.split())
    if EXIM_FAILED in flat:
        action = "failed"
    elif EXIM_DELAYED in flat:
        action = "delayed"
    else:
        return Report("unparseable", "mail delivery notice that reports neither a failure nor a delay")
    marker = EXIM_COPY.search(text)
    head, copy = (text[:marker.start()], text[marker.start():]) if marker else (text, "")
    listed = {a.lower() for _, a in getaddresses([str(v) for v in msg.get_all("X-Failed-Recipients", [])])}
    failures = []
    for address, details in _exim_blocks(head):
        if action == "failed" and listed and address.lower() not in listed:
            continue  # not among the failed recipients Exim names in the header
        status, code = _enhanced(details), _basic(details)
        failures.append(Failure(address, "", action, _kind(action, status, code), status, details[:MAX_TEXT]))
    if not failures:
        return Report("unparseable", "Exim bounce without a recognisable failed address")
    original_msg = _headers_after_marker(copy)
    return Report("bounce", failures=failures, verp=_verp(msg, original_msg),
                  original_id=_message_id(original_msg.get("Message-ID") if original_msg else None),
                  queue_id=_exim_queue_id(msg, head), unsubscribe=_unsubscribe_tokens(original_msg))


def _exim_queue_id(msg: Message, text: str) -> str | None:
    """'exim:1tF7Qm-0003aD-3y@mx.kunde-beispiel.de': the id Exim's notice gives the message,
    with the notice's host, since another host's queue may use the same id."""
    found = EXIM_QUEUE_ID.search(text)
    if not found:
        return None
    _, at, host = _sender(msg).rpartition("@")
    return f"exim:{found.group(1)}" + (f"@{host}" if at and host else "")


def _exim_blocks(text: str) -> list[tuple[str, str]]:
    """(address, details) for each address block of an Exim notice: a line indented by two
    spaces naming the address (or a pipe/file "generated by" it), then lines indented deeper."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if re.match(r"^  \S", line):
            blocks.append([line.strip()])
        elif blocks and re.match(r"^   +\S", line):
            blocks[-1].append(line.strip())
    out = []
    for head, *rest in blocks:
        details = " ".join(rest)
        generated_by = re.search(r"generated by (\S+)", details)
        address = _first_address(head) or (_first_address(generated_by.group(1)) if generated_by else "")
        if address:
            out.append((address, details))
    return out


# --- pieces of a mail ------------------------------------------------------------------------

def _parts(msg: Message):
    """The message and its MIME parts, without descending into attached messages."""
    yield msg
    if msg.get_content_maintype() == "multipart" and isinstance(msg.get_payload(), list):
        for sub in msg.get_payload():
            yield from _parts(sub)


def _find(msg: Message, *types: str) -> Message | None:
    return next((p for p in _parts(msg) if p.get_content_type() in types), None)


def _status_blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status part (per message first, then per recipient)."""
    payload = part.get_payload()
    if part.get_content_type() == "message/delivery-status" and isinstance(payload, list):
        return payload
    text = payload[0].as_string() if isinstance(payload, list) and payload else _part_text(part)
    return [email.message_from_string(block.strip() + "\n", policy=POLICY)
            for block in re.split(r"\r?\n[ \t]*\r?\n", text) if block.strip()]


def _original(msg: Message) -> Message | None:
    """The returned message (message/rfc822) or its headers (text/rfc822-headers)."""
    for part in _parts(msg):
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global") and part.is_multipart():
            return part.get_payload(0)
        if kind in ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers"):
            return email.message_from_string(_part_text(part).lstrip(), policy=POLICY)
    return None


def _headers_after_marker(copy: str) -> Message | None:
    """The returned headers that follow Exim's "------ This is a copy ..." line."""
    _, _, rest = copy.partition("\n")
    return email.message_from_string(rest.lstrip("\r\n"), policy=POLICY) if rest.strip() else None


def _body_text(msg: Message) -> str:
    part = next((p for p in _parts(msg) if p.get_content_type() == "text/plain"), None)
    return _part_text(part) if part is not None else ""


def _part_text(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return str(part.get_payload())
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except (LookupError, ValueError):  # an unknown or garbled charset name
        return data.decode("utf-8", "replace")


def _verp(msg: Message, original: Message | None) -> list[str]:
    values = [str(v) for name in VERP_HEADERS for v in msg.get_all(name, [])]
    if original is not None:
        values += [str(v) for v in original.get_all("Return-Path", [])]
    return [t for value in values for t in VERP_RE.findall(value)]


def _unsubscribe_tokens(original: Message | None) -> list[str]:
    if original is None:
        return []
    return TOKEN_RE.findall(" ".join(str(v) for v in original.get_all("List-Unsubscribe", [])))


def _field(block: Message, name: str) -> str:
    return " ".join(str(block.get(name, "")).split())


def _address(value) -> str:
    """'rfc822; Anna@Example.net' → 'Anna@Example.net'; '' when there is no address."""
    text = " ".join(str(value or "").split())
    _, sep, rest = text.partition(";")
    address = (rest if sep else text).strip().strip("<>").strip()
    return address if "@" in address and " " not in address else ""


def _first_address(text: str | None) -> str:
    found = re.search(r"<?([^\s<>()@,;:\"]+@[^\s<>()@,;:\"]+?)>?(?=[\s:,;)]|$)", text or "")
    return found.group(1) if found else ""


def smtp_reply(diagnostic: str) -> tuple[int | None, str]:
    """'smtp; 550 5.1.1 ...' → (550, '550 5.1.1 ...'): a diagnostic's basic code and reply."""
    reply = _strip_type(diagnostic)
    return _basic(reply), reply


def _strip_type(diagnostic: str) -> str:
    """'smtp; 550 5.1.1 ...' → '550 5.1.1 ...'."""
    return re.sub(r"^[A-Za-z][\w-]*\s*;\s*", "", diagnostic)


def _enhanced(text: str) -> str:
    found = ENHANCED_RE.search(text)
    return ".".join(found.groups()) if found else ""


def _basic(text: str) -> int | None:
    found = BASIC_RE.search(text)
    return int(found.group(1)) if found else None


def _message_id(value) -> str | None:
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
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def decoded(value) -> str:
    """A header value with RFC 2047 encoded words decoded, on one line."""
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (LookupError, UnicodeError, ValueError, email.errors.MessageError):
        text = str(value)
    return " ".join(text.split())


def _sender(msg: Message) -> str:
    """The From address, lower case ('' when there is none)."""
    return (getaddresses([str(msg.get("From", ""))]) or [("", "")])[0][1].lower()


def _from_mail_system(msg: Message) -> bool:
    return _sender(msg).partition("@")[0] in BOUNCE_SENDERS or bool(msg.get("X-Failed-Recipients"))


def _auto_reply_marker(msg: Message, subject: str) -> str:
    """What marks the mail as sent by a program (RFC 3834 and common practice), or ''."""
    auto = _field(msg, "Auto-Submitted").lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if msg.get(name):
            return name
    if _field(msg, "Precedence").lower() == "auto_reply":
        return "Precedence: auto_reply"
    return f"Subject: {subject[:60]}" if AUTO_SUBJECT.match(subject) else ""
