"""Proof of consent: one row per sign-up or import, confirmed in place."""

from __future__ import annotations

from newsletter.store.db import Database, Row


def add_consent(db: Database, row: Row) -> int:
    return db.insert("consents", row)


def consents_of(db: Database, subscriber_id: int) -> list[Row]:
    return db.query("select * from consents where subscriber_id = ? order by id", [subscriber_id])


def consent_with_subscriber(db: Database, consent_id: int) -> Row | None:
    """A consent row with its subscriber's email and status."""
    return db.one("select c.*, s.status, s.email from consents c join subscribers s on s.id = c.subscriber_id"
                  " where c.id = ?", [consent_id])


def latest_activity(db: Database, subscriber_id: int) -> tuple[str | None, str | None]:
    """When the subscriber last signed up and was last sent a confirmation link."""
    row = db.one("select max(signed_up_at) as signed, max(confirm_sent_at) as mailed from consents"
                 " where subscriber_id = ?", [subscriber_id])
    return (row["signed"], row["mailed"]) if row else (None, None)


def change_consent(db: Database, consent_id: int, changes: Row) -> None:
    db.update("consents", consent_id, changes)


def add_missing_consents(db: Database, source: str, stamp: str) -> None:
    """A consent row for pending subscribers added before consent rows existed."""
    db.execute("insert into consents (subscriber_id, signed_up_at, source) select id, coalesce(created_at, ?), ?"
               " from subscribers s where status = 'pending'"
               " and not exists (select 1 from consents where subscriber_id = s.id)", [stamp, source])


def awaiting_confirmation(db: Database, mailed_before: str | None) -> list[tuple[int, str]]:
    """(latest consent row, email) of pending subscribers never sent a link (or, with
    `mailed_before`, sent one before that moment)."""
    due = "c.confirm_sent_at is null" + (" or c.confirm_sent_at < ?" if mailed_before else "")
    return [(r["id"], r["email"]) for r in db.query(
        "select c.id, s.email from subscribers s join consents c on c.id ="
        " (select max(id) from consents where subscriber_id = s.id)"
        f" where s.status = 'pending' and c.confirmed_at is null and ({due}) order by s.id",
        [mailed_before] if mailed_before else [])]


def pending_consent(db: Database, consent_id: int) -> Row | None:
    """The unconfirmed consent row of a pending subscriber (email, consent text, when a link was
    last mailed), or None."""
    return db.one("select s.email, c.consent_text, c.confirm_sent_at from consents c"
                  " join subscribers s on s.id = c.subscriber_id"
                  " where c.id = ? and s.status = 'pending' and c.confirmed_at is null", [consent_id])


def claim_confirmation(db: Database, consent_id: int, sent_at: str, terms: Row, mailed_before: str | None) -> Row | None:
    """Mark a confirmation mail as sent *before* it goes out (inside the caller's transaction):
    the row of a pending subscriber never mailed (or, with `mailed_before`, last mailed before
    then) gets `sent_at` and, if it has none, the consent `terms` the mail quotes. Returns the
    row as it was, or None when there is nothing to mail or another process claimed it."""
    row = pending_consent(db, consent_id)
    if row is None or (row["confirm_sent_at"] and not (mailed_before and row["confirm_sent_at"] < mailed_before)):
        return None
    changes = {"confirm_sent_at": sent_at, **({} if row["consent_text"] else terms)}
    assignments = ", ".join(f"{key} = ?" for key in changes)
    claimed = db.execute(f"update consents set {assignments} where id = ? and confirm_sent_at is ?",
                         [*changes.values(), consent_id, row["confirm_sent_at"]]).rowcount == 1
    return row if claimed else None


def release_confirmation(db: Database, consent_id: int, sent_at: str, before: Row) -> None:
    """The server refused the mail that `claim_confirmation` marked: the row is as it was."""
    restore = {"confirm_sent_at": before["confirm_sent_at"]}
    if not before["consent_text"]:
        restore.update(consent_text=None, consent_version=None, consent_hash=None)
    assignments = ", ".join(f"{key} = ?" for key in restore)
    db.execute(f"update consents set {assignments} where id = ? and confirm_sent_at = ?",
               [*restore.values(), consent_id, sent_at])
