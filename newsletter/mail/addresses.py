"""E-mail addresses as the product stores and mails them.

An address is trimmed and syntax-checked without DNS lookups (so imports work offline and
stay fast); its domain is stored lower-case and as punycode, because many relays (Amazon SES
among them) lack SMTPUTF8. The local part is kept as typed; the store compares addresses
case-insensitively.
"""

from __future__ import annotations

import functools
import hashlib
import re

from newsletter.errors import InputError

# An ASCII dot-atom local part (RFC 5322 atext), which needs no more checking than this.
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalise_email(text: str) -> str:
    """The address as stored, or InputError saying what is wrong with it.

    A list has thousands of addresses at a few dozen domains: a plain ASCII address at a domain
    already checked reuses that check (checking a domain's IDNA rules is what costs)."""
    address = text.strip()
    if not address:
        raise InputError("The e-mail address is empty - give one like name@example.de")
    if _CONTROL.search(address):
        raise InputError(f"{address!r} contains a line break or control character - remove it")
    local, at, domain = address.rpartition("@")
    if at and len(local) <= 64 and len(address) <= 254 and domain.isascii() and _PLAIN_LOCAL.match(local):
        checked = _checked_domain(domain)
        if checked:
            return f"{local}@{checked}"
    return _validated(address)


@functools.lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> str:
    """The domain as stored (lower case, punycode), or '' when it does not pass as given."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(f"a@{domain}", check_deliverability=False).ascii_domain.lower()
    except EmailNotValidError:
        return ""


def _validated(address: str) -> str:
    from email_validator import EmailNotValidError, validate_email  # ~25 ms of regexes: only when needed

    try:
        valid = validate_email(address, check_deliverability=False)
    except EmailNotValidError as e:
        reason = str(e).rstrip(".")
        raise InputError(f"{address!r} is not a valid e-mail address ({reason}) - correct it") from None
    if valid.smtputf8:
        raise InputError(
            f"{address!r} has non-ASCII characters before the @, which needs SMTPUTF8 and many "
            "mail relays lack it - ask the subscriber for an address without them"
        )
    return f"{valid.local_part}@{valid.ascii_domain.lower()}"


def email_hash(address: str) -> str:
    """The suppression-list key of an address: sha256 of its normalised, lower-cased form.

    Deliberately not keyed with NEWSLETTER_SECRET: `add` and `import` must recognise an erased
    address without the secret, and a changed secret must not revive the list. The price is
    that someone holding the database can test whether a known address was erased.
    """
    return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()
