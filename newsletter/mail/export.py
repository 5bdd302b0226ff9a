"""One reader's version of a stored issue, in each format an editor can export."""

from __future__ import annotations

from newsletter.compose.personal import SAMPLE, Recipient, personalise
from newsletter.config import Settings
from newsletter.errors import InputError
from newsletter.mail.message import IssueMessage
from newsletter.store.issues import Issue

FORMATS = ("html", "mjml", "txt", "eml")


def message(settings: Settings, issue: Issue, *, test: bool = False) -> IssueMessage:
    """The issue's message, encoded once, ready to build for any reader."""
    return IssueMessage(settings, issue.subject, issue.html, issue.text, test=test)


def export(settings: Settings, issue: Issue, fmt: str, recipient: Recipient = SAMPLE,
           built: IssueMessage | None = None) -> bytes:
    """One output of a stored issue, personalised for `recipient` (the sample reader by default)."""
    if fmt == "mjml":
        return issue.mjml.encode("utf-8")
    if fmt == "html":
        return personalise(issue.html, recipient, markup=True).encode("utf-8")
    if fmt == "txt":
        return personalise(issue.text, recipient).encode("utf-8")
    if fmt == "eml":
        return (built or message(settings, issue)).build(recipient)[0]
    raise InputError(f"Unknown format {fmt!r} - use one of {', '.join(FORMATS)}")
