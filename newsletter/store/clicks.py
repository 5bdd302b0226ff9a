"""Counted links and their click counts (`[tracking] clicks = "aggregate"`).

    links         one row per issue and target: the short code, where it leads, what it is
    clicks        per link and hour: human, automated, estimated unique human clicks
    issue_clicks  per issue and hour: estimated different readers who clicked anything
    keys          the key that signs the short codes (made once per database)

Nothing here names, numbers or singles out a reader: no address, token, subscriber id, client
address or hash of one is ever written (a test holds the tables to that).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable

from newsletter import clock
from newsletter.config import Settings
from newsletter.store.db import Database, Row, connect, transaction

LINK_KEY = "links"


def counting_connection(settings: Settings) -> Database:
    """A connection for counting clicks: counts are not money, so commits skip the fsync
    (WAL with synchronous=NORMAL: a power cut may lose the last counts, never corrupt them)."""
    db = connect(settings)
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def link_key(db: Database) -> bytes:
    """The key that signs this database's short links (made on first use)."""
    value = db.value("select value from keys where name = ?", [LINK_KEY])
    if value is None:
        db.execute("insert or ignore into keys (name, value, created_at) values (?, ?, ?)",
                   [LINK_KEY, base64.b64encode(secrets.token_bytes(32)).decode(), clock.stamp()])
        value = db.value("select value from keys where name = ?", [LINK_KEY])
    return base64.b64decode(value)


def save_links(db: Database, issue_id: int, slug: str, links: Iterable[Row]) -> None:
    """Store an issue's counted links (inside the caller's transaction). Links a re-composed draft
    no longer has keep their row, so a copy already mailed still leads somewhere, but lose their
    position and drop out of the issue's report."""
    links = list(links)
    db.execute("update links set position = null where issue_id = ?", [issue_id])
    db.executemany(
        "insert into links (code, issue_id, issue_slug, url, kind, item_id, section, label, position, created_at)"
        " values (:code, :issue_id, :slug, :url, :kind, :item_id, :section, :label, :position, :now)"
        " on conflict (code) do update set kind = excluded.kind, item_id = excluded.item_id,"
        " section = excluded.section, label = excluded.label, position = excluded.position",
        [{**link, "issue_id": issue_id, "slug": slug, "now": clock.stamp()} for link in links])


def link_by_code(db: Database, code: str) -> Row | None:
    return db.one("select * from links where code = ?", [code])


COUNTS = ("human", "automated", "unique_human", "repeated", "auto_head", "auto_scanner", "auto_burst")
_SUMS = ", ".join(f"coalesce(sum(c.{column}), 0) as {column}" for column in COUNTS)


def links_of(db: Database, issue_id: int) -> list[Row]:
    """The issue's current links in the order they appear, with their counts summed."""
    return db.query(
        f"select l.*, {_SUMS} from links l left join clicks c on c.link_id = l.id"
        " where l.issue_id = ? and l.position is not null group by l.id order by l.position", [issue_id])


def add_counts(db: Database, links: dict[tuple[int, str], dict[str, int]], issues: dict[tuple[int, str], int]) -> None:
    """Add counts in one transaction: `links` maps (link id, hour) to changes per column of
    COUNTS (negative numbers move a click that turned out automated); `issues` maps (issue id,
    hour) to estimated unique readers."""
    rows = [(lid, hour, *(delta.get(column, 0) for column in COUNTS))
            for (lid, hour), delta in links.items() if any(delta.values())]
    issue_rows = [(iid, hour, u) for (iid, hour), u in issues.items() if u]
    if not rows and not issue_rows:
        return
    columns = ", ".join(COUNTS)
    updates = ", ".join(f"{c} = {c} + excluded.{c}" for c in COUNTS)
    with transaction(db):
        db.executemany(
            f"insert into clicks (link_id, hour, {columns}) values (?, ?, {', '.join('?' * len(COUNTS))})"
            f" on conflict (link_id, hour) do update set {updates}", rows)
        db.executemany(
            "insert into issue_clicks (issue_id, hour, unique_human) values (?, ?, ?)"
            " on conflict (issue_id, hour) do update set unique_human = unique_human + excluded.unique_human",
            issue_rows)


def hourly(db: Database, issue_id: int) -> list[Row]:
    """Per hour: human, repeated and automated clicks on all of the issue's links, and unique readers."""
    return db.query(
        "select hour, sum(human) as human, sum(automated) as automated, sum(repeated) as repeated,"
        " (select coalesce(sum(unique_human), 0) from issue_clicks i where i.issue_id = ? and i.hour = c.hour)"
        " as readers from clicks c join links l on l.id = c.link_id where l.issue_id = ?"
        " group by hour order by hour", [issue_id, issue_id])


def issue_readers(db: Database, issue_id: int) -> int:
    """Estimated different readers who clicked anything in the issue (summed per day)."""
    return db.count("select coalesce(sum(unique_human), 0) from issue_clicks where issue_id = ?", [issue_id])
