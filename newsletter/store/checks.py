"""The last preflight report of each issue (what `newsletter check` found, and on what)."""

from __future__ import annotations

import json
from typing import Any

from newsletter.store.db import Database, Row


def save_result(db: Database, issue_id: int, content_hash: str, settings_hash: str, passed: bool,
                report: dict[str, Any], stamp: str) -> None:
    db.execute("insert or replace into check_results (issue_id, content_hash, settings_hash, passed, report,"
               " checked_at) values (?, ?, ?, ?, ?, ?)",
               [issue_id, content_hash, settings_hash, int(passed), json.dumps(report, ensure_ascii=False), stamp])


def last_result(db: Database, issue_id: int) -> Row | None:
    row = db.one("select * from check_results where issue_id = ?", [issue_id])
    if row:
        row["report"] = json.loads(row["report"])
    return row
