"""The 117 real bounces that ship with flufl.bounce 6.0.0 (tests/fixtures/bounces/flufl/), read
by dsn.read_report alone and held against what flufl.bounce's own tests expect of them.

Measured: flufl.bounce 6.0.0 recognises 112 of the 117 (all_failures finds an address; the other
five are an auto-reply, a reply and three notices it finds no address in). read_report
recognised 19 when it read only RFC 3464 DSNs and Exim's text, 22 once it read three-digit
Status codes, forwarded bounces and Dovecot's rejections, and 112 with flufl.bounce as its
fallback, with every address flufl.bounce's tests expect. Of its 144 failures 103 are hard and
41 soft: none hard where flufl.bounce says temporary (delay warnings), and 30 (in 26 messages)
soft where flufl.bounce says permanent, because the notice or the status speaks of a full
mailbox, quota, a size limit, a timeout, a loop or a spam filter.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsletter.audience.dsn import ReturnedMail, read_report

CORPUS = Path(__file__).parent / "fixtures" / "bounces" / "flufl"
MESSAGES = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))["messages"]


def recognised_by_flufl(entry: dict) -> bool:
    return bool(entry["all_failures"]["temporary"] or entry["all_failures"]["permanent"])


def expected_addresses(entry: dict) -> set[str]:
    """What flufl.bounce's tests expect; all_failures' result where they expect nothing."""
    found = {a for e in entry["expected"] for a in e["addresses"]}
    return {a.lower() for a in found or set(entry["all_failures"]["temporary"] + entry["all_failures"]["permanent"])}


def temporary(entry: dict) -> bool:
    return any(e["temporary"] for e in entry["expected"]) or \
        bool(entry["all_failures"]["temporary"] and not entry["all_failures"]["permanent"])


def named(report: ReturnedMail) -> set[str]:
    return {a.lower() for f in report.failures for a in (f.address, f.original) if a}


def read(name: str) -> ReturnedMail:
    return read_report((CORPUS / name).read_bytes())


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_corpus_message_is_read_as_flufl_bounce_expects(name):
    entry, report = MESSAGES[name], read(name)
    hard = [f for f in report.failures if f.kind == "hard"]
    if not recognised_by_flufl(entry):
        assert hard == [], "no hard bounce where flufl.bounce finds none"
        return
    assert report.kind == "bounce", report.reason
    assert expected_addresses(entry) <= named(report)
    if temporary(entry):
        assert hard == [], "a temporary failure is never a hard bounce"
    for failure in hard:  # a hard bounce only for an address flufl.bounce reports
        assert {failure.address.lower(), failure.original.lower()} & expected_addresses(entry), failure


def test_corpus_coverage_is_at_least_flufl_bounce():
    ours = sum(read(name).kind == "bounce" for name in MESSAGES)
    theirs = sum(map(recognised_by_flufl, MESSAGES.values()))
    print(f"flufl.bounce corpus: read_report {ours}, flufl.bounce {theirs} of {len(MESSAGES)}")
    assert (len(MESSAGES), theirs) == (117, 112)
    assert ours >= theirs


def test_heuristic_failures_name_their_detector():
    [failure] = read("qmail_03.txt").failures
    assert (failure.address, failure.kind, failure.status) == ("userx@example.jp", "hard", "5.1.1")
    assert failure.diagnostic == ("detected by flufl.bounce: <userx@example.jp>: Sorry, no mailbox here "
                                  "by that name. vpopmail (#5.1.1)")


@pytest.mark.parametrize("name,address,words", [
    ("qmail_06.txt", "ntl@xxx.com", "User's Disk Quota Exceeded"),        # permanent to flufl.bounce: quota
    ("yahoo_01.txt", "userx@example.com", "(#4.4.1)"),                    # gave up after a 4.4.1
    ("netscape_01.txt", "aaaaa@corel.com", "not reachable"),
])
def test_what_flufl_bounce_calls_permanent_is_soft_when_the_notice_says_why(name, address, words):
    failure = next(f for f in read(name).failures if f.address == address)
    assert failure.kind == "soft" and words in failure.diagnostic
