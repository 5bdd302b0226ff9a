"""The message's SpamAssassin score with local tests only (no network lookups)."""

from __future__ import annotations

import re
import shutil
import subprocess

from newsletter.checks.result import CheckResult, fail, ok, warn

SPAM_TIMEOUT = 60.0


def spam_check(eml: bytes, threshold: float, timeout: float | None = None) -> CheckResult:
    """The message's SpamAssassin score with local tests only (no network lookups)."""
    name = "spam.spamassassin"
    timeout = SPAM_TIMEOUT if timeout is None else timeout
    exe = shutil.which("spamassassin")
    if not exe:
        return warn(name, "SpamAssassin not installed - apt-get install spamassassin")
    try:
        proc = subprocess.run([exe, "-L", "-t"], input=eml, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return warn(name, f"SpamAssassin gave no answer within {timeout:g} s - run "
                    "'newsletter export ISSUE -f eml | spamassassin -L -t' to see why")
    out = proc.stdout.decode("utf-8", "replace")
    score = re.search(r"^X-Spam-Status:.*?\bscore=(-?\d+(?:\.\d+)?)", out, re.M | re.S)
    if score is None:
        reason = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        return warn(name, f"SpamAssassin gave no score (exit {proc.returncode}: {reason})")
    points = float(score.group(1))
    rules = _spam_rules(out)
    detail = f"score {points:.1f} (fail above {threshold:.1f})" + (f"; {rules}" if rules else "")
    return fail(name, detail) if points > threshold else ok(name, detail)


def _spam_rules(report: str) -> str:
    """'RULE 1.2 (description), ...' for the rules with points, from 'Content analysis details'."""
    section = report.split("Content analysis details:", 1)[-1]
    rules: list[list] = []
    for line in section.splitlines()[1:]:
        m = re.match(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$", line)
        if m:
            rules.append([float(m[1]), m[2], m[3].strip()])
        elif rules and line.startswith(" " * 10) and line.strip():
            rules[-1][2] += " " + line.strip()
        elif rules and not line.strip():
            break
    rules = sorted((r for r in rules if r[0]), key=lambda r: -r[0])
    return ", ".join(f"{rule} {pts:g} ({desc})" for pts, rule, desc in rules)
