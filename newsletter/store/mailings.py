"""Mails to people other than the readers (review copies, notices, summaries), each under a
key that names what it is and for whom. Claimed before it goes out, recorded after:

    claimed → sent | refused | unconfirmed

Only a refused mail (the server said no, or it could not be built) may be claimed again. A
claim left 'claimed' (the process died) or 'unconfirmed' (no answer after the message) keeps
its unknown outcome: it is never sent again on its own, so two `run-due` at once, or a retry,
never mail anyone twice.
"""

from __future__ import annotations

from newsletter.store.db import Database, Row, transaction

RETAKEABLE = ("refused",)


def claim(db: Database, key: str, recipient: str, stamp: str) -> bool:
    """Take the mail `key` for this process: False when another run sent, holds or lost it."""
    with transaction(db):
        if db.execute("insert or ignore into mail_claims (key, recipient, status, claimed_at) values (?, ?, 'claimed', ?)",
                      [key, recipient, stamp]).rowcount == 1:
            return True
        return db.execute("update mail_claims set status = 'claimed', claimed_at = ?, done_at = null, reply = null"
                          " where key = ? and status = 'refused'", [stamp, key]).rowcount == 1


def record(db: Database, key: str, status: str, stamp: str, reply: str = "") -> None:
    """What became of a claimed mail: sent, refused or unconfirmed."""
    with transaction(db):
        db.execute("update mail_claims set status = ?, done_at = ?, reply = ? where key = ?",
                   [status, stamp, reply, key])


def claims(db: Database, prefix: str) -> list[Row]:
    """The mails whose key starts with `prefix`, in the order they were claimed."""
    return db.query("select * from mail_claims where key like ? escape '\\' order by claimed_at, key",
                    [prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"])
