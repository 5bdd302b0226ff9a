"""The store: the only place with SQL (SQLite), one module per family of tables.

    db          opening, transactions, errors, the per-issue lock (all that is SQLite's own)
    schema      the migrations
    content     articles, job ads, ads
    issues      issues and their frozen item lists
    subscribers subscribers, their status transitions, the suppression list
    consents    proof of consent
    deliveries  the delivery log
    bounces     bounce and complaint events

Every other stage calls these named functions; another database would be one more
implementation of this package.
"""

from newsletter.store.db import Database, connect, issue_lock, open_db, transaction, translate

__all__ = ["Database", "connect", "issue_lock", "open_db", "transaction", "translate"]
