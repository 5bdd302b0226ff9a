"""Reading returned mail: one mail in, one neutral ReturnedMail out, no database and no subscriber.

    raw bytes → read_report → the formats read here (RFC 3464 DSN, ARF, a mailbox's rejection, Exim)
                            → else the bounce attached to it (forwarded)
                            → else flufl.bounce's detectors (newsletter.audience.fallback)
                            → ReturnedMail: bounce | complaint | ignored | unparseable
                              (recipients with action, status, diagnostic and kind; VERP and
                               unsubscribe tokens; the Message-ID of the message that came back)

A mail is a bounce when it carries a message/delivery-status part (RFC 3464; per recipient:
Final-Recipient, Action, Status, Diagnostic-Code), is a refusal by the recipient's mailbox
(Dovecot's "Quota exceeded" rejection) or Exim's text bounce (both read in
newsletter.audience.detectors). It is a complaint when it carries a message/feedback-report
(ARF, RFC 5965) with Feedback-Type: abuse. These readers come first: they know the status
codes, the returned message and the VERP address, where a heuristic knows only an address.
Whether a failure is hard or soft is decided in newsletter.audience.report.

Forwarded bounces. A mail in none of these formats that has a bounce or complaint attached
(message/rfc822, as mail programs forward) is read as that attached mail: its report, dated
by its own Date; the forwarding mail's Message-ID keeps it from being imported twice.

Everything else goes to flufl.bounce's detectors (qmail, Yahoo, Exchange, old Postfix and
others), unless it is an automatic reply that does not look like a bounce: an out-of-office
note is reported as ignored. What no detector recognises is unparseable, with the reason.

The returned message. Its Message-ID comes from the message/rfc822 or text/rfc822-headers
part, a DSN's X-Original-Message-ID, the headers after Exim's "This is a copy" line, or those
quoted below a text notice ("--- Below this line is a copy of the message.").

The tokens found here are unverified: newsletter.audience.bounces checks them against the secret."""

from __future__ import annotations

import email
import hashlib
import re
from email.message import Message
from email.utils import getaddresses

from newsletter.audience.detectors import from_exim, from_rejection
from newsletter.audience.fallback import from_flufl
from newsletter.audience.mailparts import (
    POLICY,
    VERP_RE,
    address_of,
    auto_reply_marker,
    basic,
    children,
    decoded,
    enhanced,
    field_value,
    find,
    from_mail_system,
    message_id,
    part_text,
    parts,
    returned_message,
    strip_type,
    unsubscribe_tokens,
    utc,
    verp_tokens,
)
from newsletter.audience.report import MAX_TEXT, Failure, ReturnedMail, kind

__all__ = ["Failure", "ReturnedMail", "read_report"]

MAX_FORWARDS = 3  # a bounce forwarded as an attachment of a forward of a forward, and no deeper
BOUNCE_SUBJECT = re.compile(r"undeliver|delivery status|delivery fail|mail delivery|returned mail|"
                            r"failure notice|unzustellbar|nicht zugestellt|zustellung fehlgeschlagen", re.IGNORECASE)


def read_report(raw: bytes) -> ReturnedMail:
    """Parse one mail into a ReturnedMail (bounce, complaint, ignored or unparseable)."""
    msg = email.message_from_bytes(raw, policy=POLICY)
    report = _classify(msg) if msg.keys() else ReturnedMail("unparseable", "not a mail (no header lines)")
    report.mail_id = message_id(msg.get("Message-ID")) or "sha256:" + hashlib.sha256(raw).hexdigest()
    report.received_at = report.received_at or utc(msg.get("Date"))
    return report


def _classify(msg: Message, depth: int = 0) -> ReturnedMail:
    report = _read_as_is(msg)
    if report is not None and report.kind != "unparseable":
        return report
    sender, subject = decoded(msg.get("From")), decoded(msg.get("Subject"))
    looks_like_bounce = from_mail_system(msg) or bool(BOUNCE_SUBJECT.search(subject))
    marker = auto_reply_marker(msg, subject)
    # flufl.bounce's heuristics are not let loose on an out-of-office note: an address in it is no failure.
    report = _forwarded(msg, depth) or (from_flufl(msg) if looks_like_bounce or not marker else None) or report
    if report is not None:
        return report
    seen = f"From: {sender or '-'}, Subject: {subject[:80] or '-'}"
    if looks_like_bounce:
        return ReturnedMail("unparseable", f"looks like a bounce but is in no format this importer reads ({seen})")
    if marker:
        return ReturnedMail("ignored", f"automatic reply ({marker}), not a bounce")
    return ReturnedMail("unparseable", f"neither a delivery status notification nor a complaint report ({seen})")


def _read_as_is(msg: Message) -> ReturnedMail | None:
    """The report of a mail in a format read here, or None."""
    status_part = find(msg, "message/delivery-status", "message/global-delivery-status")
    if status_part is not None:
        return _from_dsn(msg, status_part)
    feedback = find(msg, "message/feedback-report")
    if feedback is not None:
        return _from_arf(msg, feedback)
    return from_rejection(msg) or from_exim(msg)


def _forwarded(msg: Message, depth: int) -> ReturnedMail | None:
    """The bounce or complaint in an attached message: someone forwarded it to the bounce
    mailbox. It is dated by its own Date, when the remote server wrote it."""
    if depth >= MAX_FORWARDS:
        return None
    for part in parts(msg):
        held = children(part) if part is not msg else []
        if held and part.get_content_type() in ("message/rfc822", "message/global"):
            inner = held[0]
            report = _classify(inner, depth + 1)
            if report.kind in ("bounce", "complaint"):
                report.received_at = utc(inner.get("Date"))
                return report
    return None


def _from_dsn(msg: Message, part: Message) -> ReturnedMail:
    blocks = _status_blocks(part)
    recipients = [b for b in blocks if b.get("Final-Recipient") or b.get("Original-Recipient") or b.get("Action")]
    if not recipients:
        return ReturnedMail("unparseable", "delivery status without per-recipient fields (Final-Recipient, Action, Status)")
    failures = [f for f in map(_failure, recipients) if f is not None]
    if not failures:
        actions = sorted({field_value(b, "Action").lower() or "-" for b in recipients})
        return ReturnedMail("ignored", f"delivery report (Action: {', '.join(actions)}), not a bounce")
    original = returned_message(msg)
    per_message = next((b for b in blocks if b not in recipients), None)
    original_id = message_id(original.get("Message-ID") if original else None) or \
        message_id(per_message.get("X-Original-Message-ID") if per_message else None)
    return ReturnedMail("bounce", failures=failures, verp=verp_tokens(msg, original), original_id=original_id,
                  unsubscribe=unsubscribe_tokens(original))


def _failure(block: Message) -> Failure | None:
    diagnostic, status_field = field_value(block, "Diagnostic-Code"), field_value(block, "Status")
    status, said = enhanced(status_field), enhanced(strip_type(diagnostic))
    if not status or (status[1:] == ".0.0" and said[:1] == status[:1]):
        status = said or status  # the remote server's 5.7.1 says more than a relay's generic 5.0.0
    # Some MTAs write an SMTP reply where the RFC 3463 code belongs ("Status: 550 ..."): its
    # basic code still says whether the mail failed, and its text is all the diagnosis there is.
    code = basic(strip_type(diagnostic)) or (None if enhanced(status_field) else basic(status_field))
    if not diagnostic and status_field != status:
        diagnostic = status_field
    action = (field_value(block, "Action").lower().split() or [""])[0]
    if action.startswith("fail") or action == "error":
        action = "failed"  # "Action: failure" and OpenSMTPD's "Action: error" are seen too
    found = kind(action, status, code, f"{status_field} {diagnostic}")
    if found is None:
        return None
    return Failure(address_of(block.get("Final-Recipient")), address_of(block.get("Original-Recipient")),
                   action, found, status, diagnostic[:MAX_TEXT])


def _from_arf(msg: Message, part: Message) -> ReturnedMail:
    held = children(part)
    fields = held[0] if held else email.message_from_string(part_text(part), policy=POLICY)
    feedback_type = field_value(fields, "Feedback-Type").lower()
    if feedback_type != "abuse":
        return ReturnedMail("ignored", f"feedback report of type {feedback_type or 'unknown'!r}, not a complaint")
    original = returned_message(msg)
    addresses = [address_of(v) for v in fields.get_all("Original-Rcpt-To", [])]
    if original is not None:
        addresses += [a for _, a in getaddresses([str(v) for v in original.get_all("To", [])])]
    verp = verp_tokens(msg, original) + VERP_RE.findall(field_value(fields, "Original-Mail-From"))
    reporter = decoded(msg.get("From"))
    agent = field_value(fields, "User-Agent")
    return ReturnedMail("complaint", addresses=[a for a in addresses if "@" in a], verp=verp,
                  unsubscribe=unsubscribe_tokens(original),
                  original_id=message_id(original.get("Message-ID") if original else None),
                  detail=f"{agent or 'feedback report'} from {reporter or 'unknown sender'}"[:MAX_TEXT])


def _status_blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status part (per message first, then per recipient)."""
    held = children(part)
    if part.get_content_type() == "message/delivery-status" and isinstance(part.get_payload(), list):
        return held
    text = held[0].as_string() if held else part_text(part)
    return [email.message_from_string(block.strip() + "\n", policy=POLICY)
            for block in re.split(r"\r?\n[ \t]*\r?\n", text) if block.strip()]
