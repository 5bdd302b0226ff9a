"""The last resort for returned mail in no format read elsewhere: flufl.bounce's detectors.

    Message (no delivery status, rejection or Exim notice) → from_flufl → ReturnedMail | None

flufl.bounce (Mailman's bounce detectors, kept as a library) knows the text notices of qmail,
Yahoo, SMTP32, Exchange, GroupWise, old Postfix, Sendmail and dozens of other servers. It says which
addresses failed and whether temporarily or for good, not why; it runs its detectors in order
and stops at the first that finds an address. It is used through its public `all_failures()`
only; a detector that trips over a hostile mail makes it raise, and that mail is then left to
the caller as unrecognised.

What it says is weighed as our own readers weigh a DSN (newsletter.audience.report.kind): a
temporary failure is soft (Action: delayed); a permanent one counts as a generic 5.0.0, so the
notice's own words near the address decide: an enhanced code there is taken as it is
("#5.1.1": hard, "#4.4.1": soft), a full mailbox, quota or size is soft, and only what says
nothing else stays hard. Each failure's diagnostic says that flufl.bounce found it, so an editor
can see that a heuristic, not a delivery status, did.
"""

from __future__ import annotations

import email
import html
import logging
import re
from email.message import Message

from flufl.bounce import all_failures

from newsletter.audience.mailparts import (
    POLICY,
    basic,
    enhanced,
    message_id,
    part_text,
    parts,
    returned_message,
    unsubscribe_tokens,
    verp_tokens,
)
from newsletter.audience.report import ADDRESS_TEXT, MAX_TEXT, NOT_THE_ADDRESS_TEXT, Failure, ReturnedMail, kind

# Where a text notice starts quoting the returned message: nothing below it is the notice.
COPY_MARK = re.compile(r"^.*(below this line is a copy|this is a copy of|here is a copy|original message follows|"
                       r"returned mail follows|start of returned message|message header follows|"
                       r"headers? of the original|copy of the original|unsent message below|"
                       r"-{3,} ?original message).*$", re.IGNORECASE | re.MULTILINE)
NOTICE_CODE = re.compile(r"(?<![\w.])[45]\.\d{1,3}\.\d{1,3}(?![\w.])")  # not 2.0.13, a version number
WINDOW = 3  # lines read after each line that names the address
# flufl.bounce logs a detector's exception with its traceback before it re-raises; the import
# reports such a mail as unrecognised instead, so the traceback goes nowhere.
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())


def from_flufl(msg: Message) -> ReturnedMail | None:
    """The bounce flufl.bounce finds in `msg`, or None when no detector finds an address."""
    found = _detect(msg)
    if found is None:
        return None
    temporary, permanent = found
    notice, copy = _notice(msg)
    failures = [_failure(address, address not in permanent, notice)
                for address in sorted(permanent) + sorted(temporary - permanent)]
    original = returned_message(msg) or _headers(copy)
    return ReturnedMail("bounce", failures=failures, verp=verp_tokens(msg, original),
                  original_id=message_id(original.get("Message-ID") if original else None),
                  unsubscribe=unsubscribe_tokens(original))


def _detect(msg: Message) -> tuple[set[str], set[str]] | None:
    """(temporary, permanent) as the first of flufl.bounce's detectors that finds an address says."""
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001 - a heuristic tripping over a hostile mail must not stop the import
        return None
    if not (temporary or permanent):
        return None
    return _addresses(temporary), _addresses(permanent)


def _addresses(found) -> set[str]:
    return {a.decode("ascii", "replace") if isinstance(a, bytes) else str(a) for a in found}


def _failure(address: str, temporary: bool, notice: str) -> Failure:
    evidence, near = _evidence(notice, address)
    enhanced_code = NOTICE_CODE.search(evidence)
    status = enhanced_code.group(0) if enhanced_code else ""
    code = basic(evidence) if near else None  # far from the address, "480-624-2500" is a phone number
    # permanent as flufl.bounce sees it: a generic 5.0.0 unless the notice says more
    hard_or_soft = "soft" if temporary else kind("failed", status or ("" if code else "5.0.0"), code, evidence)
    note = "detected by flufl.bounce"
    return Failure(address, "", "delayed" if temporary else "failed", hard_or_soft or "soft", status,
                   f"{note}: {evidence}"[:MAX_TEXT] if evidence else note)


def _notice(msg: Message) -> tuple[str, str]:
    """The text the reporting server wrote (its text parts), and the returned message when the
    text quotes it below a line like qmail's "--- Below this line is a copy of the message."."""
    texts = []
    for part in parts(msg):
        if part.get_content_maintype() == "text":
            text = part_text(part)
            texts.append(html.unescape(re.sub(r"<[^>]*>", " ", text)) if part.get_content_subtype() == "html" else text)
    text = "\n".join(texts)
    mark = COPY_MARK.search(text)
    return (text[:mark.start()], text[mark.end():].lstrip("\r\n")) if mark else (text, "")


def _headers(copy: str) -> Message | None:
    """The quoted returned message, when it starts with its header lines."""
    return email.message_from_string(copy, policy=POLICY) if re.match(r"[\w-]+:", copy) else None


def _evidence(notice: str, address: str) -> tuple[str, bool]:
    """What the notice says about `address`, and whether it is near the address: each line
    naming it with the few lines after; when that holds no code and no telling words, the
    whole notice (it is about one mail)."""
    lines = notice.splitlines()
    near = []
    for i, line in enumerate(lines):
        if address.lower() in line.lower():
            block = [line]
            for after in lines[i + 1:i + 1 + WINDOW]:
                if not after.strip():
                    break  # a blank line ends what is said about this address
                block.append(after)
            near += [s.strip() for s in block]
    text = " ".join(" ".join(dict.fromkeys(near)).split())
    if enhanced(text) or basic(text) or NOT_THE_ADDRESS_TEXT.search(text) or ADDRESS_TEXT.search(text):
        return text, True
    return " ".join(notice.split()), False
