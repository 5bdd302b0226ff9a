"""The delivery log's group commit on its own: writers on several threads, one SQLite
connection that commits for all of them."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from newsletter.store import open_db
from newsletter.store.deliveries import GroupCommit


@pytest.fixture
def committer(tmp_path):
    db = open_db(tmp_path / "log.db", create=True)
    db.execute("create table log (writer int, n int)")
    group = GroupCommit(db)
    yield group, tmp_path / "log.db"
    group.close()


def rows(path) -> list[tuple[int, int]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("select writer, n from log order by writer, n").fetchall()
    finally:
        conn.close()


def test_every_commit_returns_only_once_its_writes_are_visible_to_another_connection(committer):
    group, path = committer
    seen: list[bool] = []
    lock = threading.Lock()

    def writer(number: int) -> None:
        for n in range(50):
            group.commit([lambda db, n=n: db.execute("insert into log values (?, ?)", [number, n])])
            visible = (number, n) in rows(path)
            with lock:
                seen.append(visible)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(seen) and len(seen) == 200
    assert rows(path) == sorted((w, n) for w in range(4) for n in range(50))


def test_writers_that_arrive_during_a_commit_share_the_next(committer, monkeypatch):
    group, _ = committer
    transactions = []
    first_running, release = threading.Event(), threading.Event()

    def slow_first(db):
        first_running.set()
        release.wait(10)
        db.execute("insert into log values (0, 0)")

    done = []
    leader = threading.Thread(target=lambda: group.commit([slow_first]))
    leader.start()
    first_running.wait(10)
    followers = [threading.Thread(target=lambda i=i: (group.commit(
        [lambda db, i=i: db.execute("insert into log values (?, 1)", [i])]), done.append(i))) for i in range(1, 6)]
    for t in followers:
        t.start()
    original = group._lead

    def counting_lead():
        transactions.append(list(group._queue))
        original()

    monkeypatch.setattr(group, "_lead", counting_lead)
    while len(group._queue) < 5:  # all five wait for the slow commit
        threading.Event().wait(0.001)
    release.set()
    leader.join()
    for t in followers:
        t.join()
    assert sorted(done) == [1, 2, 3, 4, 5]
    assert [len(batch) for batch in transactions] == [5]  # one transaction for all five


def test_a_failed_batch_raises_in_each_of_its_writers_and_leaves_nothing(committer):
    group, path = committer

    def broken(db):
        db.execute("insert into log values (9, 9)")
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        group.commit([broken])
    assert rows(path) == []  # rolled back whole
    group.commit([lambda db: db.execute("insert into log values (1, 1)")])
    assert rows(path) == [(1, 1)]  # the next batch is not affected
