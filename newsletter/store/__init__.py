"""The store: the only place with SQL (SQLite), one module per family of tables.

    db          opening, transactions, errors, the per-issue lock (all that is SQLite's own)
    schema      the migrations
    content     articles, job ads, ads
    issues      issues (the Issue record) and their frozen item lists
    timeline    an issue's timeline, its approval and the review links that acted
    routine     the weekly routine's steps, claimed once per week
    feeds       the state of each feed the routine pulls
    subscribers subscribers, their status transitions, the suppression list
    consents    proof of consent
    deliveries  the delivery log and its group commit
    bounces     bounce and complaint events
    checks      the last preflight report of each issue
    clicks      counted links and their click counts
    mailings    mails to reviewers, claimed once

Every other stage calls these named functions; another database would be one more
implementation of this package.
"""

from newsletter.store.db import Database, connect, issue_lock, open_db, transaction, translate

__all__ = ["Database", "connect", "issue_lock", "open_db", "transaction", "translate"]
