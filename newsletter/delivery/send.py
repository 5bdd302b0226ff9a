"""Send an issue to its active subscribers, exactly once each, whatever fails on the way.

A send is a fixed sequence of named steps, all of them here:

    deliver: lock → check (the caller's) → open → enqueue → workers, per reader:
        build → wait (rate) → ensure open → mark sending → post → record
    → finish

The delivery log (`store.deliveries`) is the source of truth: a reader's row is committed as
`sending` only once her transaction is about to start on an open connection, and gets its
outcome after the reply. A connection that cannot be opened (a refused login, an unreachable
relay, a bad certificate) stops the run before anything is marked; a crash leaves at most one
`sending` row per connection, reported and resent only on request. Running the same command
again continues with whatever is still queued or deferred. The transport, not this module,
decides what a server's reply means (`transports.base.Outcome`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from newsletter import clock, config, tokens
from newsletter.compose.personal import Recipient, salutation
from newsletter.config import Settings
from newsletter.delivery import transports
from newsletter.delivery.signing import dkim_signer, envelope_sender
from newsletter.delivery.transports import Outcome, Result, Transport
from newsletter.errors import NewsletterError, SendStopped, StoreError, TransportError
from newsletter.mail.addresses import normalise_email
from newsletter.mail.export import message as issue_message
from newsletter.mail.message import IssueMessage, list_id
from newsletter.store import Database, connect, deliveries, issue_lock
from newsletter.store.bounces import events_of_issue
from newsletter.store.db import Row
from newsletter.store.deliveries import DeliveryLog, GroupCommit
from newsletter.store.issues import Issue, change_issue, issue_by_id
from newsletter.store.subscribers import active_subscribers, find_subscriber

RETRY_STATES = ("queued", "sending", "deferred")


@dataclass
class SendOptions:
    limit: int | None = None           # at most this many messages in this run
    resend_unconfirmed: bool = False


@dataclass
class SendSummary:
    issue: Issue
    counts: dict[str, int] = field(default_factory=dict)
    attempted: int = 0
    unconfirmed: list[str] = field(default_factory=list)
    built: int = 0
    built_bytes: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return not any(self.counts.get(s) for s in RETRY_STATES)


class Pacer:
    """At most `rate` messages per second across all connections (0 = no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = clock.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = clock.monotonic()
            slot = max(self.next, now)
            self.next = slot + self.interval
        if slot > now:
            clock.sleep(slot - now)


@dataclass
class Run:
    """What every worker of one run shares."""

    settings: Settings
    issue: Issue
    message: IssueMessage
    key: bytes
    list_id: str
    pacer: Pacer
    progress: Callable[[str], None]
    signer: Callable[[bytes], bytes] | None
    stop: threading.Event = field(default_factory=threading.Event)
    fatal: list[BaseException] = field(default_factory=list)
    attempted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, error: BaseException) -> None:
        with self.lock:
            self.fatal.append(error)
        self.stop.set()

    def halt(self, transport: Transport, email: str, result: Result) -> None:
        """Stop the run after a message whose outcome is unknown, or a server that stalled:
        going on would leave more readers unconfirmed, or cost the timeout for each of them."""
        where = getattr(transport, "where", type(transport).__name__)
        if result.outcome is Outcome.UNCONFIRMED:
            what = (f"The server {where} gave no answer to the message to {email} ({result.text}); its delivery "
                    "is unconfirmed and it will not be resent on its own")
        else:
            what = f"The server {where} stalled while taking the message to {email} ({result.text})"
        self.fail(SendStopped(f"{what} - the run stopped; check the server (its log shows whether the message "
                         f"arrived), then run 'newsletter send {self.issue.slug}' again to continue"
                         + (" (add --resend-unconfirmed to send it again)" if result.outcome is Outcome.UNCONFIRMED else "")))


# --- entry points --------------------------------------------------------------------------

def deliver(db: Database, settings: Settings, issue: Issue, opts: SendOptions,
            progress: Callable[[str], None] = lambda state: None,
            transport_factory: Callable[[], Transport] | None = None,
            on_start: Callable[[int], None] = lambda total: None,
            check: Callable[[Database, Issue], None] = lambda db, issue: None) -> SendSummary:
    """Send (or continue sending) `issue` to every active subscriber. `check(db, issue)` runs
    under the issue's lock, on the issue as it is then, before anything else, and may refuse by
    raising. The delivery log's commits go through one more connection of their own."""
    factory = transport_factory or (lambda: transports.make(settings))
    with issue_lock(settings.db_path, issue):                         # lock
        issue = issue_by_id(db, issue.id)
        check(db, issue)                                              # check
        run = _run(settings, issue, progress)
        first = factory()
        first.open()                                                  # open
        started = clock.monotonic()
        unconfirmed = deliveries.enqueue(db, issue.id, clock.stamp(), opts.resend_unconfirmed)  # enqueue
        on_start(min(deliveries.count_queued(db, issue.id), opts.limit or 1 << 62))
        _work(run, db, opts, first, factory)                          # workers
        summary = _finish(db, issue, unconfirmed, run.attempted)      # finish
        summary.seconds = clock.monotonic() - started
    if run.fatal:
        error = run.fatal[0]
        message = str(error) if isinstance(error, NewsletterError) else (
            f"A sending thread failed ({type(error).__name__}: {error}) - the run stopped; "
            "run the command again to continue, with --debug for details")
        raise SendStopped(message, summary) from error
    return summary


def dry_run(db: Database, settings: Settings, issue: Issue,
            progress: Callable[[str], None] = lambda state: None) -> SendSummary:
    """Build every message as a real run would; send and record nothing."""
    run = _run(settings, issue, progress)
    started = clock.monotonic()
    summary = SendSummary(issue)
    for row in active_subscribers(db):
        raw, _ = build(run, row["email"], row["id"], row)
        summary.built += 1
        summary.built_bytes += len(raw)
        progress("built")
    summary.seconds = clock.monotonic() - started
    return summary


def send_test(db: Database, settings: Settings, issue: Issue, address: str, transport: Transport | None = None) -> str:
    """One copy marked [TEST] to `address`; not recorded in the delivery log."""
    email = normalise_email(address)
    row = find_subscriber(db, email)
    run = _run(settings, issue, lambda state: None, test=True)
    raw, message_id = build(run, email, row["id"] if row else 0, row or {})
    transport = transport or transports.make(settings)
    try:
        result = transport.send(settings.publication.sender_address, email, raw)
    finally:
        transport.close()
    if result.outcome is not Outcome.SENT:
        raise TransportError(f"The server did not take the test message to {email}: {result.reply}")
    return f"{result.reply} ({message_id})"


@dataclass
class DeliveryStatus:
    """Where a send stands: counts per state, the rows that failed or wait for a retry (with
    the server's reply), and the bounces and complaints that came back later."""

    counts: dict[str, int]
    problems: list[Row]
    bounces: list[Row]


def status(db: Database, issue: Issue) -> DeliveryStatus:
    return DeliveryStatus(deliveries.counts(db, issue.id), deliveries.problems(db, issue.id),
                          events_of_issue(db, issue.id))


# --- steps ---------------------------------------------------------------------------------

def _run(settings: Settings, issue: Issue, progress: Callable[[str], None], test: bool = False) -> Run:
    if not issue.html:
        raise StoreError(f"Issue {issue.slug} has no rendered content - compose it again")
    return Run(settings, issue, issue_message(settings, issue, test=test), config.signing_key(),
               list_id(settings), Pacer(settings.send.rate), progress, dkim_signer(settings))


def build(run: Run, email: str, subscriber_id: int, names: Row) -> tuple[bytes, str]:
    """The final bytes for one reader (signed when DKIM is configured) and their Message-ID."""
    recipient = Recipient(email, salutation(names), tokens.make(run.key, run.list_id, subscriber_id))
    raw, message_id = run.message.build(recipient)
    return (run.signer(raw) if run.signer else raw), message_id


def _work(run: Run, db: Database, opts: SendOptions, first: Transport, factory: Callable[[], Transport]) -> None:
    """Feed the queued rows to one worker per connection; stop feeding when the run stops or
    no worker is left to take them."""
    connections = run.settings.send.connections
    work: queue.Queue[Row | None] = queue.Queue(maxsize=connections * 64)
    committer = GroupCommit(connect(run.settings))
    threads = [threading.Thread(target=_worker, args=(run, work, first if i == 0 else factory, committer),
                                daemon=True, name=f"send-{i + 1}") for i in range(connections)]
    for t in threads:
        t.start()
    try:
        for row in deliveries.queued(db, run.issue.id, opts.limit):
            if not _put(work, row, run, threads):
                break
    finally:
        for _ in threads:
            _put(work, None, run, threads, final=True)
        for t in threads:
            t.join()
        committer.close()


def _put(work: queue.Queue[Row | None], item: Row | None, run: Run, threads: list[threading.Thread], final: bool = False) -> bool:
    """Hand `item` to a worker; False when none is alive (or the run stopped) to take it."""
    while any(t.is_alive() for t in threads):
        if run.stop.is_set() and not final:
            return False
        try:
            work.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


def _worker(run: Run, work: queue.Queue[Row | None], transport_or_factory: Transport | Callable[[], Transport],
            committer: GroupCommit) -> None:
    transport: Transport | None = None
    log: DeliveryLog | None = None
    try:
        transport = transport_or_factory() if callable(transport_or_factory) else transport_or_factory
        log = DeliveryLog(committer, run.issue.id)
        for row in iter(work.get, None):
            if run.stop.is_set():
                continue
            state = _deliver(run, log, transport, row)
            with run.lock:
                run.attempted += 1
            run.progress(state)
    except BaseException as e:  # noqa: BLE001 - whatever kills a worker must stop the run
        run.fail(e)
    finally:
        if transport is not None:
            transport.close()
        if log is not None:
            log.close()


def _deliver(run: Run, log: DeliveryLog, transport: Transport, row: Row) -> str:
    """One recipient: build once, then try up to max_attempts times; returns the final state."""
    if row["subscriber_status"] != "active":
        log.done(row["id"], "skipped", clock.stamp(), reply=f"subscriber is {row['subscriber_status']}")
        return "skipped"
    raw, message_id = build(run, row["email"], row["subscriber_id"], row)                      # build
    sender = envelope_sender(run.settings, run.key, run.list_id, row["subscriber_id"])
    cfg = run.settings.send
    for attempt in range(1, cfg.max_attempts + 1):
        run.pacer.wait()                                                                         # wait
        if not transport.is_open:
            transport.open()                                                                     # ensure open
        result = transport.send(sender, row["email"], raw,                                       # post, and mark
                                lambda: log.sending(row["id"], message_id, clock.stamp()))       # it sending first
        if result.outcome is Outcome.SENT:                                                       # record
            log.done(row["id"], "sent", clock.stamp(), code=result.code, reply=result.text, defer=True)
            return "sent"
        if result.outcome is Outcome.UNCONFIRMED:
            log.unconfirmed(row["id"], clock.stamp(), result.text)
            run.halt(transport, row["email"], result)
            return "unconfirmed"
        if result.outcome in (Outcome.REJECTED, Outcome.DEAD):
            log.done(row["id"], "failed", clock.stamp(), code=result.code, reply=result.text)
            if result.outcome is Outcome.DEAD:
                log.dead_address(row["subscriber_id"], clock.stamp())
            return "failed"
        log.done(row["id"], "deferred", clock.stamp(), code=result.code, reply=result.text)
        if result.stalled:
            run.halt(transport, row["email"], result)
            return "deferred"
        if attempt < cfg.max_attempts and not run.stop.is_set():
            clock.sleep(cfg.retry_delay * 2 ** (attempt - 1))
    return "deferred"


def _finish(db: Database, issue: Issue, unconfirmed: list[str], attempted: int) -> SendSummary:
    counts = deliveries.counts(db, issue.id)
    summary = SendSummary(issue, counts, attempted, unconfirmed)
    current = issue_by_id(db, issue.id)
    if not any(counts.values()):
        summary.notes.append("There are no active subscribers - nothing was sent; the issue stays a draft")
    elif summary.done and current.status != "sent":
        stamp = clock.stamp()
        change_issue(db, issue.id, {"status": "sent", "sent_at": current.sent_at or stamp, "updated_at": stamp})
    summary.issue = issue_by_id(db, issue.id)
    return summary
