"""The state of each feed the routine pulls: its ETag and Last-Modified for conditional
requests, and its last error (reported once, not every five minutes)."""

from __future__ import annotations

from typing import Any

from newsletter.store.db import Database, Row


def feed_state(db: Database, url: str) -> Row:
    return db.one("select * from feed_state where url = ?", [url]) or {"url": url}


def save_feed_state(db: Database, url: str, **values: Any) -> None:
    current = feed_state(db, url)
    row = {**current, **values, "url": url}
    db.execute("insert or replace into feed_state (url, etag, last_modified, checked_at, ok_at, error)"
               " values (:url, :etag, :last_modified, :checked_at, :ok_at, :error)",
               {key: row.get(key) for key in ("url", "etag", "last_modified", "checked_at", "ok_at", "error")})
