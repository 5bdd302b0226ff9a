"""Golden files for the rendered demo issue. Regenerate with NEWSLETTER_REGEN_GOLDEN=1."""

from __future__ import annotations

import os
import re

import pytest
from conftest import GOLDEN, load_demo_content

from newsletter import demo

REFERENCE = demo.REFERENCE_DATE.isoformat()

REGEN = os.environ.get("NEWSLETTER_REGEN_GOLDEN") == "1"


def mask(name: str, data: bytes) -> bytes:
    """Blank out what changes from run to run: Date, Message-ID and the MIME boundary."""
    if name == "issue.eml":
        data = re.sub(rb"^Date: .*$", b"Date: <masked>", data, flags=re.M)
        data = re.sub(rb"^Message-ID: .*$", b"Message-ID: <masked>", data, flags=re.M)
        data = re.sub(rb"=_[0-9a-f]{24}", b"=_BOUNDARY", data)
    return data


@pytest.fixture
def reference_issue(project):
    """The demo issue at the date its content is written for, whatever day the suite runs."""
    load_demo_content(project, demo.REFERENCE_DATE)
    # The demo counts clicks: short links are signed with the database's own random key. A fixed
    # key makes them the same in every run.
    project.db()["keys"].upsert({"name": "links", "value": "R09MREVOLUtFWS1PRi1USEUtREVNTy1JU1NVRS0wMDA="}, pk="name")
    result = project.run("compose", "--date", REFERENCE, "--number", "11/2026")
    assert result.exit_code == 0, result.output
    return project.root / "out" / REFERENCE


@pytest.mark.parametrize("name", ["issue.mjml", "issue.html", "issue.txt", "issue.eml"])
def test_demo_issue_matches_golden(reference_issue, name):
    actual = mask(name, (reference_issue / name).read_bytes())
    golden = GOLDEN / name
    if REGEN or not golden.exists():
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(actual)
        if not REGEN:
            pytest.fail(f"wrote missing golden file {golden}; check it and commit it")
    assert actual == golden.read_bytes(), (
        f"{name} differs from {golden} - if the change is intended, regenerate with NEWSLETTER_REGEN_GOLDEN=1"
    )
