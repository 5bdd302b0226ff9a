"""Checks a built message (the `.eml` bytes) against the mail rules in docs/checks.md.

Data flow: the raw message → its header fields (`headers_of`) and MIME parts (`mime_parts`)
→ one named `CheckResult` per rule (line ends and lengths, header line lengths, required and
forbidden headers, RFC 2047 words, Subject, From, Date, Message-ID, List-Id,
List-Unsubscribe(-Post), MIME structure, Feedback-ID). `checks.run` runs them on the sample
reader's message, whose token is as long as a real one, as part of the preflight report.
"""

from __future__ import annotations

import email
import re
from email import policy
from email.header import decode_header, make_header
from email.utils import getaddresses, parsedate_to_datetime
from urllib.parse import quote

from newsletter.audience.mailparts import children
from newsletter.checks.result import CheckResult, fail, listing, ok
from newsletter.compose.personal import SAMPLE, unsubscribe_url
from newsletter.config import Settings

REQUIRED_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
                    "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post")
SINGLE_HEADERS = REQUIRED_HEADERS + ("Reply-To", "Sender", "Feedback-ID")
ENCODED_WORD_HEADERS = {"subject", "from", "to", "reply-to"}
ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([^?\s]*)\?([^?\s]*)\?=")


def headers_of(eml: bytes) -> list[tuple[str, bytes]]:
    """The top-level header fields as (name, raw unfolded value)."""
    head = eml.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in eml else eml.split(b"\n\n", 1)[0]
    fields: list[tuple[str, bytes]] = []
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + b" " + line.strip())
        elif b":" in line:
            name, value = line.split(b":", 1)
            fields.append((name.decode("ascii", "replace").strip(), value.strip()))
    return fields


def mime_parts(eml: bytes) -> list[tuple[str, str, bytes]]:
    """(content type, transfer encoding, raw encoded body) of each part of a multipart message."""
    boundary = email.message_from_bytes(eml, policy=policy.compat32).get_boundary()
    if not boundary:
        return []
    body = b"\r\n" + eml.split(b"\r\n\r\n", 1)[-1]
    out = []
    for segment in body.split(b"\r\n--" + boundary.encode("ascii", "replace"))[1:]:
        if segment.startswith(b"--"):
            break
        head, _, content = segment.lstrip(b"\r\n").partition(b"\r\n\r\n")
        part = email.message_from_bytes(head + b"\r\n\r\n", policy=policy.compat32)
        out.append((part.get_content_type(), str(part.get("Content-Transfer-Encoding", "7bit")).lower(), content))
    return out


def check_message(settings: Settings, eml: bytes, subject: str) -> list[CheckResult]:
    """The message rules (docs/checks.md) on one built message, one named result per rule."""
    fields = headers_of(eml)
    values: dict[str, list[str]] = {}
    for name, raw in fields:
        values.setdefault(name.lower(), []).append(raw.decode("ascii", "replace"))
    first = {name: found[0] for name, found in values.items()}
    pub = settings.publication
    sender = pub.sender_address.lower()
    mime_version = first.get("mime-version", "")
    results = [
        _crlf(eml), _line_length(eml), _header_lines(eml), _encoded_lines(eml), _header_counts(values),
        _forbidden(values), _encoded_words(fields),
        _subject(first.get("subject", ""), subject), _from(first.get("from", ""), sender, pub.sender_name),
        _date(first.get("date", "")), _message_id(first.get("message-id", ""), sender.rsplit("@", 1)[-1]),
        ok("eml.mime-version", "1.0") if mime_version.strip() == "1.0"
        else fail("eml.mime-version", f"MIME-Version is {mime_version!r}, not 1.0"),
        _list_id(first.get("list-id", "")),
        _list_unsubscribe(first.get("list-unsubscribe", ""), pub.base_url),
        _list_unsubscribe_post(eml), _structure(eml),
    ]
    if "feedback-id" in values:
        results.append(_feedback_id(first["feedback-id"]))
    return results


def _crlf(eml: bytes) -> CheckResult:
    bare = len(re.findall(rb"(?<!\r)\n", eml)) + len(re.findall(rb"\r(?!\n)", eml))
    if bare:
        return fail("eml.crlf", f"{bare} line ends are not CRLF - build the message with CRLF line ends")
    return ok("eml.crlf", "every line ends in CRLF")


def _line_length(eml: bytes) -> CheckResult:
    longest = max(len(line) for line in re.split(rb"\r?\n", eml))
    if longest > 998:
        return fail("eml.line-length", f"a line of {longest:,} octets, over RFC 5322's 998 - encode the "
                    "parts (quoted-printable) and fold long headers")
    return ok("eml.line-length", f"longest line {longest} octets (at most 998)")


def _header_lines(eml: bytes) -> CheckResult:
    """RFC 5322's advice of 78 characters per header line; a longer line only where a single
    word (a URL) cannot be folded."""
    head = eml.split(b"\r\n\r\n", 1)[0]
    long = [line for line in head.split(b"\r\n") if len(line) > 78 and _foldable(line)]
    if long:
        shown = [f"{line[:40].decode('ascii', 'replace')}… ({len(line)})" for line in long]
        return fail("eml.header-lines", f"header lines over 78 characters: {listing(shown)} - fold them")
    return ok("eml.header-lines", "every header line at most 78 characters (or one unfoldable word)")


def _foldable(line: bytes) -> bool:
    """Whether a fold at some space (not the line's leading one) would shorten it to 78."""
    body = line.lstrip(b" \t")
    indent = len(line) - len(body)
    return any(0 < i + indent <= 78 for i, c in enumerate(body) if c in b" \t")


def _encoded_lines(eml: bytes) -> CheckResult:
    long_parts = []
    for ctype, cte, body in mime_parts(eml):
        longest = max((len(line) for line in body.split(b"\r\n")), default=0)
        if cte in ("quoted-printable", "base64") and longest > 76:
            long_parts.append(f"{ctype} ({longest})")
    if long_parts:
        return fail("eml.encoded-lines", f"encoded lines over 76 characters in {listing(long_parts)}")
    return ok("eml.encoded-lines", "quoted-printable/base64 lines at most 76 characters")


def _header_counts(values: dict[str, list[str]]) -> CheckResult:
    missing = [h for h in REQUIRED_HEADERS if h.lower() not in values]
    repeated = [h for h in SINGLE_HEADERS if len(values.get(h.lower(), [])) > 1]
    if missing or repeated:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + \
                   ([f"repeated {', '.join(repeated)}"] if repeated else [])
        return fail("eml.headers", "; ".join(problems))
    return ok("eml.headers", f"{len(REQUIRED_HEADERS)} required headers, each once")


def _forbidden(values: dict[str, list[str]]) -> CheckResult:
    found = [h for h in ("Bcc", "Return-Path") if h.lower() in values]
    if found:
        return fail("eml.forbidden-headers", f"{', '.join(found)} in the message - the receiving server "
                    "adds Return-Path; Bcc must never be written")
    return ok("eml.forbidden-headers", "no Bcc, no Return-Path")


def _encoded_words(fields: list[tuple[str, bytes]]) -> CheckResult:
    problems = []
    for name, raw in fields:
        if not raw.isascii():
            problems.append(f"{name} has raw non-ASCII bytes")
            continue
        value = raw.decode("ascii")
        words = ENCODED_WORD.findall(value)
        if "=?" in value and name.lower() not in ENCODED_WORD_HEADERS:
            problems.append(f"{name} contains an encoded word (Gmail rejects it)")
        if re.search(r"\?==\?", value):
            problems.append(f"{name} has adjacent encoded words")
        for charset, enc, text in words:
            word = f"=?{charset}?{enc}?{text}?="
            if len(word) > 75:
                problems.append(f"{name}: encoded word of {len(word)} characters")
            if not text:
                problems.append(f"{name}: empty encoded word")
            if enc.lower() not in ("q", "b"):
                problems.append(f"{name}: unknown encoding {enc!r}")
    if problems:
        return fail("eml.encoded-words", listing(problems))
    return ok("eml.encoded-words", "headers ASCII; RFC 2047 words valid, only in Subject and names")


def _decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, ValueError, UnicodeDecodeError):
        return "\ufffd"


def _subject(value: str, subject: str) -> CheckResult:
    decoded = _decoded(value)
    if decoded != subject:
        return fail("eml.subject", f"Subject decodes to {decoded!r}, not the issue's subject {subject!r}")
    return ok("eml.subject", "decodes to the issue's subject")


def _from(value: str, sender: str, name: str) -> CheckResult:
    mailboxes = getaddresses([value])
    if len(mailboxes) != 1 or "@" not in mailboxes[0][1]:
        return fail("eml.from", f"From must hold exactly one mailbox, not {value!r}")
    display, address = _decoded(mailboxes[0][0]) if mailboxes[0][0] else "", mailboxes[0][1].lower()
    if address != sender or (name and display != name):
        return fail("eml.from", f"From is {display!r} <{address}>, expected {name!r} <{sender}>")
    return ok("eml.from", f"{display} <{address}>")


def _date(value: str) -> CheckResult:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        return fail("eml.date", f"Date {value!r} is not an RFC 5322 date with a time zone")
    return ok("eml.date", value)


def _message_id(value: str, domain: str) -> CheckResult:
    m = re.fullmatch(r"<[^<>@\s]+@([^<>@\s]+)>", value.strip())
    if not m:
        return fail("eml.message-id", f"Message-ID {value!r} is not <id@domain>")
    if m.group(1).lower() != domain:
        return fail("eml.message-id", f"Message-ID domain {m.group(1)} is not the sender's domain {domain}")
    return ok("eml.message-id", f"domain {domain}")


def _list_id(value: str) -> CheckResult:
    if not re.fullmatch(r"[^<>]*<[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+>", value.strip()):
        return fail("eml.list-id", f"List-Id {value!r} is not 'Name <label.example.org>' (RFC 2919) "
                    "- fix [publication] list_id")
    return ok("eml.list-id", value)


def _list_unsubscribe(value: str, base_url: str) -> CheckResult:
    uris = re.findall(r"<([^<>]*)>", value)
    https = [u for u in uris if u.lower().startswith("https://")]
    mailto = [u for u in uris if u.lower().startswith("mailto:")]
    problems = []
    if len(https) != 1:
        problems.append(f"{len(https)} https URIs instead of exactly one")
    elif https[0] != unsubscribe_url(base_url, SAMPLE.token):
        problems.append(f"{https[0]} is not the reader's unsubscribe URL")
    if not mailto:
        problems.append("no mailto: URI")
    if "=?" in value:
        problems.append("folded into encoded words")
    if SAMPLE.email.lower() in value.lower() or quote(SAMPLE.email).lower() in value.lower():
        problems.append("the reader's address is in it - use the opaque token")
    if problems:
        return fail("eml.list-unsubscribe", "; ".join(problems))
    return ok("eml.list-unsubscribe", "one https URI with the token and a mailto")


def _list_unsubscribe_post(eml: bytes) -> CheckResult:
    head = eml.split(b"\r\n\r\n", 1)[0]
    lines = [line for line in head.split(b"\r\n") if line.lower().startswith(b"list-unsubscribe-post:")]
    if lines != [b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"]:
        return fail("eml.list-unsubscribe-post", f"expected exactly 'List-Unsubscribe-Post: "
                    f"List-Unsubscribe=One-Click', found {[line.decode('ascii', 'replace') for line in lines]}")
    return ok("eml.list-unsubscribe-post", "List-Unsubscribe=One-Click (RFC 8058)")


def _structure(eml: bytes) -> CheckResult:
    msg = email.message_from_bytes(eml, policy=policy.compat32)
    if msg.get_content_type() != "multipart/alternative":
        return fail("eml.structure", f"{msg.get_content_type()}, not multipart/alternative")
    parts = [(p.get_content_type(), p.get_content_charset(), str(p.get("Content-Transfer-Encoding", "")).lower())
             for p in children(msg)]
    if [t for t, _, _ in parts] != ["text/plain", "text/html"]:
        return fail("eml.structure", f"parts {[t for t, _, _ in parts]}: expected text/plain, then text/html")
    bad = [f"{t} {c} {e}" for t, c, e in parts if c != "utf-8" or e not in ("quoted-printable", "base64")]
    if bad:
        return fail("eml.structure", f"expected charset=utf-8 and quoted-printable or base64: {listing(bad)}")
    encodings = " and ".join(sorted({e for _, _, e in parts}))
    return ok("eml.structure", f"multipart/alternative: text/plain, then text/html; utf-8, {encodings}")


def _feedback_id(value: str) -> CheckResult:
    fields = value.strip().split(":")
    if not 2 <= len(fields) <= 4 or not all(fields) or not 5 <= len(fields[-1]) <= 15:
        return fail("eml.feedback-id", f"Feedback-ID {value!r} is not 1 to 3 fields and a SenderId "
                    "('campaign:customer:type:SenderId'), the SenderId 5-15 characters - fix [send] feedback_id")
    return ok("eml.feedback-id", value)
