"""Bounces without an RFC 3464 delivery status: Exim's text notices and Dovecot's rejections.

    Message (no message/delivery-status part) → from_exim | from_rejection → ReturnedMail | None (not this kind)

Exim's text bounce says "This message was created automatically by mail delivery software",
lists the failed addresses indented under it and the remote server's reply below each. Its
delay warnings return no headers; they name the message by the warning host's queue id
instead ("The message identifier is: 1tF7Qm-0003aD-3y"), kept as `queue_id`. The returned
headers of a failure follow its "------ This is a copy of the message" line.

Dovecot's LDA, and Sieve's reject, refuse a message in the recipient's own mailbox ("Quota
exceeded (mailbox for user is full)") with a disposition notification (RFC 8098, Disposition:
automatic-action/...; deleted) marked Auto-Submitted: auto-replied (rejected). It is a failure
of that recipient, not an automatic reply, and always soft: the mailbox that refused the
message exists.
"""

from __future__ import annotations

import email
import re
from email.message import Message
from email.utils import getaddresses

from newsletter.audience.mailparts import (
    POLICY,
    address_of,
    basic,
    body_text,
    children,
    enhanced,
    field_value,
    find,
    first_address,
    from_mail_system,
    message_id,
    part_text,
    returned_message,
    sender,
    unsubscribe_tokens,
    verp_tokens,
)
from newsletter.audience.report import MAX_TEXT, Failure, ReturnedMail, kind

EXIM_MARK = "This message was created automatically by mail delivery software"
EXIM_FAILED = "could not be delivered to one or more of its recipients"
EXIM_DELAYED = "has not yet been delivered to one or more of its recipients"
EXIM_QUEUE_ID = re.compile(r"message identifier is:\s*([0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4})\b")
EXIM_COPY = re.compile(r"^-{6} (This is a copy of the message|The body of the message is)", re.MULTILINE)


def from_exim(msg: Message) -> ReturnedMail | None:
    """The Exim text bounce or warning `msg` is, or None when it is none."""
    text = body_text(msg)
    flat = " ".join(text.split())
    if EXIM_MARK not in flat or not from_mail_system(msg):
        return None
    if EXIM_FAILED in flat:
        action = "failed"
    elif EXIM_DELAYED in flat:
        action = "delayed"
    else:
        return ReturnedMail("unparseable", "mail delivery notice that reports neither a failure nor a delay")
    marker = EXIM_COPY.search(text)
    head, copy = (text[:marker.start()], text[marker.start():]) if marker else (text, "")
    listed = {a.lower() for _, a in getaddresses([str(v) for v in msg.get_all("X-Failed-Recipients", [])])}
    failures = []
    blocks, after = _exim_blocks(head)
    for address, details in blocks:
        if action == "failed" and listed and address.lower() not in listed:
            continue  # not among the failed recipients Exim names in the header
        details = details or after  # older Exim: the server's reply below the list, unindented
        status, code = enhanced(details), basic(details)
        severity = kind(action, status, code, details) or "soft"  # "failed" and "delayed" always fail
        failures.append(Failure(address, "", action, severity, status, details[:MAX_TEXT]))
    if not failures:
        return ReturnedMail("unparseable", "Exim bounce without a recognisable failed address")
    original = _headers_after_marker(copy)
    return ReturnedMail("bounce", failures=failures, verp=verp_tokens(msg, original),
                  original_id=message_id(original.get("Message-ID") if original else None),
                  queue_id=_exim_queue_id(msg, head), unsubscribe=unsubscribe_tokens(original))


def from_rejection(msg: Message) -> ReturnedMail | None:
    """The rejection by the recipient's mailbox (Dovecot, Sieve) `msg` is, or None."""
    part = find(msg, "message/disposition-notification")
    if part is None:
        return None
    held = children(part)
    fields = held[0] if held else \
        email.message_from_string(part_text(part) if isinstance(part.get_payload(), str) else "", policy=POLICY)
    if not re.match(r"automatic-action/[\w-]+;\s*deleted", field_value(fields, "Disposition"), re.IGNORECASE):
        return None  # a read receipt or another notification, not a refusal
    address = address_of(fields.get("Final-Recipient"))
    if not address:
        return ReturnedMail("unparseable", "rejection notice without a Final-Recipient")
    reason = " ".join(body_text(msg).split())
    original = returned_message(msg)
    return ReturnedMail("bounce", failures=[Failure(address, address_of(fields.get("Original-Recipient")), "failed", "soft",
                                              enhanced(reason), reason[:MAX_TEXT])],
                  verp=verp_tokens(msg, original), unsubscribe=unsubscribe_tokens(original),
                  original_id=message_id(fields.get("Original-Message-ID"))
                  or message_id(original.get("Message-ID") if original else None))


def _exim_queue_id(msg: Message, text: str) -> str | None:
    """'exim:1tF7Qm-0003aD-3y@mx.kunde-beispiel.de': the id Exim's notice gives the message,
    with the notice's host, since another host's queue may use the same id."""
    found = EXIM_QUEUE_ID.search(text)
    if not found:
        return None
    _, at, host = sender(msg).rpartition("@")
    return f"exim:{found.group(1)}" + (f"@{host}" if at and host else "")


def _exim_blocks(text: str) -> tuple[list[tuple[str, str]], str]:
    """(address, details) for each address block of an Exim notice: a line indented by two
    spaces naming the address (or a pipe/file "generated by" it), then lines indented deeper;
    and the notice's unindented paragraph after the list, where older Exim writes the reply
    ("SMTP error from remote server after RCPT command: ... 550 user unknown")."""
    blocks: list[list[str]] = []
    after: list[str] = []
    for line in text.splitlines():
        if re.match(r"^-{3,}", line):
            break  # the returned message's headers or body follow
        if re.match(r"^  \S", line):
            blocks.append([line.strip()])
            after = []
        elif blocks and re.match(r"^   +\S", line):
            blocks[-1].append(line.strip())
        elif blocks and line.strip():
            after.append(line.strip())
    out = []
    for head, *rest in blocks:
        details = " ".join(rest)
        generated_by = re.search(r"generated by (\S+)", details)
        address = first_address(head) or (first_address(generated_by.group(1)) if generated_by else "")
        if address:
            out.append((address, details))
    return out, " ".join(after)


def _headers_after_marker(copy: str) -> Message | None:
    """The returned headers that follow Exim's "------ This is a copy ..." line."""
    _, _, rest = copy.partition("\n")
    return email.message_from_string(rest.lstrip("\r\n"), policy=POLICY) if rest.strip() else None
