"""The delivery log: one row per issue and subscriber, the source of truth of a send.

A row is `queued`, then `sending` (committed before the message goes to the server), then
`sent`, `deferred` (try again in a later run), `failed` or `skipped`. A crash leaves at most
one `sending` row per connection; those are reported and resent only on request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from newsletter.store.db import Database, Row, transaction
from newsletter.store.subscribers import set_status

STATES = ("queued", "sending", "sent", "deferred", "failed", "skipped")

Write = Callable[[Database], object]


def enqueue(db: Database, issue_id: int, stamp: str, resend_unconfirmed: bool) -> list[str]:
    """Queue every active subscriber once and requeue deferred rows; returns the addresses a
    crash left unconfirmed (`sending`), requeued too when `resend_unconfirmed`."""
    with transaction(db):
        db.execute(
            "insert or ignore into deliveries (issue_id, subscriber_id, email, status, attempts, queued_at, updated_at)"
            " select ?, id, email, 'queued', 0, ?, ? from subscribers where status = 'active'",
            [issue_id, stamp, stamp])
        db.execute("update deliveries set status = 'queued' where issue_id = ? and status = 'deferred'", [issue_id])
        unconfirmed = [r["email"] for r in db.query(
            "select email from deliveries where issue_id = ? and status = 'sending'", [issue_id])]
        if resend_unconfirmed:
            db.execute("update deliveries set status = 'queued' where issue_id = ? and status = 'sending'", [issue_id])
    return [] if resend_unconfirmed else unconfirmed


def readers_waiting(db: Database, issue_id: int) -> int:
    """Active readers a run would mail: queued, deferred, or not yet in the log."""
    return db.count(
        "select count(*) from subscribers s where s.status = 'active' and not exists (select 1 from deliveries d"
        " where d.issue_id = ? and d.subscriber_id = s.id and d.status in ('sent', 'sending', 'failed', 'skipped'))",
        [issue_id])


def count_queued(db: Database, issue_id: int) -> int:
    return db.count("select count(*) from deliveries where issue_id = ? and status = 'queued'", [issue_id])


def queued(db: Database, issue_id: int, limit: int | None, batch: int = 500) -> Iterator[Row]:
    """Queued deliveries with their subscriber, in id order, read in batches (constant memory)."""
    last, left = 0, limit if limit is not None else float("inf")
    while left > 0:
        rows = db.query(
            "select d.id, d.subscriber_id, d.attempts, s.email, s.status as subscriber_status,"
            " s.anrede, s.titel, s.vorname, s.nachname"
            " from deliveries d join subscribers s on s.id = d.subscriber_id"
            " where d.issue_id = ? and d.status = 'queued' and d.id > ? order by d.id limit ?",
            [issue_id, last, int(min(batch, left))])
        if not rows:
            return
        yield from rows
        last, left = rows[-1]["id"], left - len(rows)


def counts(db: Database, issue_id: int) -> dict[str, int]:
    out = dict.fromkeys(STATES, 0)
    for row in db.query("select status, count(*) as n from deliveries where issue_id = ? group by status", [issue_id]):
        out[row["status"]] = row["n"]
    return out


def first_sent(db: Database, issue_id: int) -> str | None:
    """When the issue's first message was accepted (None: none yet)."""
    return db.text("select min(sent_at) from deliveries where issue_id = ? and status = 'sent'", [issue_id])


def problems(db: Database, issue_id: int) -> list[Row]:
    """Rows that failed, wait for a retry or were left unconfirmed, with the server's reply."""
    return db.query(
        "select email, status, attempts, last_code, last_reply, updated_at from deliveries"
        " where issue_id = ? and status in ('failed', 'deferred', 'sending') order by status, email", [issue_id])


def subscriber_of_message(db: Database, message_id: str) -> int | None:
    return db.number("select subscriber_id from deliveries where message_id = ? limit 1", [message_id])


def fail_message(db: Database, message_id: str, subscriber_id: int, code: int | None, reply: str, stamp: str) -> None:
    """Mark a message that bounced later as failed, with the reported reply."""
    db.execute("update deliveries set status = 'failed', last_code = ?, last_reply = ?, updated_at = ?"
               " where message_id = ? and subscriber_id = ?", [code, reply, stamp, message_id, subscriber_id])


class GroupCommit:
    """One connection that commits the delivery log's writes for all of a run's connections.

    SQLite has one writer at a time, and each commit waits for the disk (synchronous=FULL, so
    a 'sending' mark survives a power cut). Writers that arrive while a commit is under way
    wait for it and go into the next one together: a run with four connections makes about
    one commit per reply that came in meanwhile, not one per message, and `commit` still
    returns only once the caller's own writes are on disk.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cond = threading.Condition()
        self._queue: list[Write] = []
        self._filling = 0      # number of the batch the queue fills
        self._done = -1        # the last batch committed (or failed)
        self._busy = False
        self._errors: dict[int, BaseException] = {}

    def commit(self, writes: list[Write]) -> None:
        with self._cond:
            self._queue.extend(writes)
            mine = self._filling
            while self._done < mine:
                if self._busy:
                    self._cond.wait()
                    continue
                self._lead()
            error = self._errors.pop(mine, None)
        if error is not None:
            raise error

    def _lead(self) -> None:
        """Commit the queue as one batch (called holding the condition; releases it meanwhile)."""
        self._busy = True
        batch, number = self._queue, self._filling
        self._queue, self._filling = [], self._filling + 1
        self._cond.release()
        error = None
        try:
            with transaction(self.db):
                for write in batch:
                    write(self.db)
        except BaseException as e:  # noqa: BLE001 - handed to every writer of the batch
            error = e
        finally:
            self._cond.acquire()
            self._busy, self._done = False, number
            if error is not None:
                self._errors[number] = error
            self._cond.notify_all()

    def close(self) -> None:
        self.db.close()


class DeliveryLog:
    """One connection's writes to the delivery log (committed through the run's GroupCommit).

    Every change is committed at once, except a 'sent' result: it waits and is committed in
    the same transaction as the next row's 'sending' mark (or when the connection ends). So
    each message costs at most one commit, and a crash still leaves at most one row per
    connection in 'sending': the one on the wire, or the one whose 250 reply was not yet
    written down. The first 'sending' mark of a run also moves its issue from draft or
    scheduled to 'sending', in the same commit: an issue is 'sending' once a message of it is
    on the wire.
    """

    def __init__(self, committer: GroupCommit, issue_id: int) -> None:
        self.committer, self.issue_id = committer, issue_id
        self.pending: list[Write] = []
        self.issue_marked = False

    def sending(self, delivery_id: int, message_id: str, stamp: str) -> None:
        if not self.issue_marked:  # once per connection is enough: the first mark moves the issue
            self._sql("update issues set status = 'sending', updated_at = ? where id = ?"
                      " and status in ('draft', 'scheduled')", [stamp, self.issue_id])
            self.issue_marked = True
        self._row(delivery_id, "sending", stamp, message_id=message_id, attempt=True)
        self.flush()

    def done(self, delivery_id: int, status: str, stamp: str, *, code: int | None = None,
             reply: str | None = None, defer: bool = False) -> None:
        """A row's outcome: sent (committed with the next mark when `defer`), deferred, failed,
        skipped or queued again."""
        self._row(delivery_id, status, stamp, code=code, reply=reply, sent=status == "sent")
        if not defer:
            self.flush()

    def unconfirmed(self, delivery_id: int, stamp: str, reply: str) -> None:
        """The message went out whole and no answer came: the row stays 'sending' (unconfirmed,
        resent only on request) and says why."""
        self._sql("update deliveries set last_code = null, last_reply = ?, updated_at = ? where id = ?",
                  [reply, stamp, delivery_id])
        self.flush()

    def dead_address(self, subscriber_id: int, stamp: str) -> None:
        """The server said the address does not exist: the reader is bounced."""
        self.pending.append(lambda db: set_status(db, subscriber_id, "bounced", stamp))
        self.flush()

    def _row(self, delivery_id: int, status: str, stamp: str, *, code: int | None = None, reply: str | None = None,
             message_id: str | None = None, attempt: bool = False, sent: bool = False) -> None:
        sets: list[str] = ["status = ?", "updated_at = ?"]
        args: list[Any] = [status, stamp]
        for column, value in (("last_code", code), ("last_reply", reply), ("message_id", message_id)):
            if value is not None:
                sets.append(f"{column} = ?")
                args.append(value)
        if attempt:
            sets.append("attempts = attempts + 1")
        if sent:
            sets.append("sent_at = ?")
            args.append(stamp)
        self._sql(f"update deliveries set {', '.join(sets)} where id = ?", args + [delivery_id])

    def _sql(self, sql: str, args: list[Any]) -> None:
        self.pending.append(lambda db: db.execute(sql, args))

    def flush(self) -> None:
        if not self.pending:
            return
        self.committer.commit(self.pending)
        self.pending = []

    def close(self) -> None:
        self.flush()
