"""Send an issue to its active subscribers, exactly once each, whatever fails on the way.

The delivery log (`deliveries`, one row per issue and subscriber) is the source of truth:
a row is committed as `sending` before the message goes to the server and as `sent`,
`deferred` or `failed` after the reply. A crash leaves at most one `sending` row per
connection; those are reported and resent only on request. Re-running the same command
continues with whatever is still `queued` or `deferred`.

Pipeline per run: lock → enqueue → (workers: build → mark sending → transport → record) → close.
"""

from __future__ import annotations

import fcntl
import queue
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from newsletter import clock, store, tokens
from newsletter.delivery import transports
from newsletter.config import Settings
from newsletter.errors import CheckError, ConfigError, NewsletterError, StoreError
from newsletter.mail.message import MessageTemplate, Recipient, list_id
from newsletter.audience.subscribers import active as active_subscribers, salutation
from newsletter.delivery.transports import DeliveryError, TransportError

STATES = ("queued", "sending", "sent", "deferred", "failed", "skipped")

# SQLite has one writer at a time. Workers of one run take turns here instead of in SQLite's
# busy handler, which polls with sleeps of a few milliseconds.
_WRITE_LOCK = threading.Lock()


@dataclass
class SendOptions:
    rate: float | None = None          # messages per second (None: config)
    connections: int | None = None     # parallel connections (None: config)
    limit: int | None = None           # at most this many messages in this run
    dry_run: bool = False
    resend_unconfirmed: bool = False
    force: bool = False                # send even when a preflight check fails


@dataclass
class SendSummary:
    issue: dict
    counts: dict[str, int] = field(default_factory=dict)
    attempted: int = 0
    unconfirmed: list[str] = field(default_factory=list)
    built: int = 0
    built_bytes: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return not any(self.counts.get(s) for s in ("queued", "sending", "deferred"))


class RateLimiter:
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
class Context:
    """What every worker shares for one run."""

    settings: Settings
    db_path: Path
    issue: dict
    template: MessageTemplate
    key: bytes
    list_id: str
    limiter: RateLimiter
    progress: Callable[[str], None]
    stop: threading.Event = field(default_factory=threading.Event)
    fatal: list[Exception] = field(default_factory=list)
    signer: Callable[[bytes], bytes] | None = None


# --- entry points --------------------------------------------------------------------------

def send_issue(settings: Settings, ref: str, opts: SendOptions,
               progress: Callable[[str], None] = lambda state: None,
               transport_factory=None, on_start: Callable[[int], None] = lambda total: None) -> SendSummary:
    """Send (or continue sending) issue `ref` to every active subscriber."""
    db = store.open_db(settings.db_path, create=False)
    issue = store.get_issue(db, ref)
    ctx = _context(settings, issue, progress)
    if opts.dry_run:
        return _dry_run(db, ctx)
    with issue_lock(settings.db_path, issue):
        if not opts.force:
            preflight(settings, db, store.get_issue(db, issue["id"]))
        started = clock.monotonic()
        unconfirmed = _prepare(db, issue, opts.resend_unconfirmed)
        total = _pending_count(db, issue["id"], opts.limit)
        on_start(total)
        attempted = _run_workers(ctx, db, opts, transport_factory or (lambda: transports.make(settings)))
        summary = _finish(db, issue, unconfirmed, attempted)
        summary.seconds = clock.monotonic() - started
    if ctx.fatal:
        raise ctx.fatal[0]
    if summary.done and settings.archive.enabled:
        summary.notes.append(_publish(db, settings))
    return summary


def _publish(db, settings: Settings) -> str:
    """Rebuild the web archive so the issue's "Im Browser ansehen" link works; a failure here
    is reported, it does not undo or repeat the send."""
    from newsletter.publish import archive

    try:
        result = archive.build(db, settings)
    except NewsletterError as e:
        return f"Warning: the web archive was not updated: {e}"
    return f"Web archive updated in {result.out_dir} ({len(result.issues)} issues)."


def send_test(settings: Settings, ref: str, address: str, transport=None) -> str:
    """One copy marked [TEST] to `address`; not recorded in the delivery log."""
    from newsletter.audience.subscribers import normalise_email

    db = store.open_db(settings.db_path, create=False)
    issue = store.get_issue(db, ref)
    email = normalise_email(address)
    ctx = _context(settings, issue, lambda s: None, test=True)
    row = next(iter(db["subscribers"].rows_where("email = ? collate nocase", [email])), None)
    raw, message_id = build(ctx, email, row["id"] if row else 0, row or {})
    transport = transport or transports.make(settings)
    try:
        reply = transport.send(settings.publication.sender_address, email, raw)
    except DeliveryError as e:
        raise TransportError(f"The server refused the test message to {email}: {e.code} {e.text}") from None
    finally:
        transport.close()
    return f"{reply.code} {reply.text} ({message_id})"


def status(settings: Settings, ref: str) -> tuple[dict, dict[str, int], list[dict]]:
    """Counts per state and the rows that failed or wait for a retry, with the server's reply."""
    db = store.open_db(settings.db_path, create=False)
    issue = store.get_issue(db, ref)
    return issue, _counts(db, issue["id"]), list(db.query(
        "select email, status, attempts, last_code, last_reply, updated_at from deliveries"
        " where issue_id = ? and status in ('failed', 'deferred', 'sending') order by status, email",
        [issue["id"]],
    ))


def preflight(settings: Settings, db, issue: dict) -> None:
    """Before an issue's first message: the checks of `newsletter check`; a failure stops the send.
    A send that is already under way (status 'sending') continues without them."""
    if issue["status"] not in ("draft", "scheduled"):
        return
    from newsletter.checks.issue import run_checks

    failed = run_checks(settings, issue, db=db).failed
    if failed:
        names = ", ".join(r.name for r in failed)
        raise CheckError(
            f"Issue {issue['slug']} fails {len(failed)} preflight check{'s' if len(failed) > 1 else ''} ({names}) - "
            f"see 'newsletter check {issue['slug']}', fix the issue, or send anyway with --force"
        )


# --- steps ---------------------------------------------------------------------------------

def _context(settings: Settings, issue: dict, progress, test: bool = False) -> Context:
    if not issue.get("html"):
        raise StoreError(f"Issue {issue['slug']} has no rendered content - compose it again")
    template = MessageTemplate(settings, issue["subject"], issue["html"], issue["text"], test=test)
    return Context(settings, settings.db_path, issue, template, tokens.secret(), list_id(settings),
                   RateLimiter(0), progress, signer=dkim_signer(settings))


@contextmanager
def issue_lock(db_path: Path, issue: dict):
    """An exclusive lock per issue: a second `send`/`run-due` for it stops at once.
    The kernel releases it when the process dies, so a crash never leaves it stuck."""
    path = Path(f"{db_path}.issue-{issue['id']}.lock")
    handle = open(path, "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StoreError(
            f"Issue {issue['slug']} is being sent by another process - wait for it to finish "
            f"('newsletter status {issue['slug']}' shows the progress)"
        ) from None
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _prepare(db, issue: dict, resend_unconfirmed: bool) -> list[str]:
    """Queue every active subscriber once; requeue deferred rows; report unconfirmed ones."""
    stamp = clock.stamp()
    with store.transaction(db):
        db.execute(
            "insert or ignore into deliveries (issue_id, subscriber_id, email, status, attempts, queued_at, updated_at)"
            " select ?, id, email, 'queued', 0, ?, ? from subscribers where status = 'active'",
            [issue["id"], stamp, stamp],
        )
        db.execute("update deliveries set status = 'queued' where issue_id = ? and status = 'deferred'", [issue["id"]])
        unconfirmed = [r[0] for r in db.execute(
            "select email from deliveries where issue_id = ? and status = 'sending'", [issue["id"]])]
        if resend_unconfirmed:
            db.execute("update deliveries set status = 'queued' where issue_id = ? and status = 'sending'", [issue["id"]])
        if issue["status"] in ("draft", "scheduled"):
            db["issues"].update(issue["id"], {"status": "sending", "updated_at": stamp})
    return [] if resend_unconfirmed else unconfirmed


def _pending_count(db, issue_id: int, limit: int | None) -> int:
    n = db.execute("select count(*) from deliveries where issue_id = ? and status = 'queued'", [issue_id]).fetchone()[0]
    return min(n, limit) if limit is not None else n


def _run_workers(ctx: Context, db, opts: SendOptions, factory) -> int:
    cfg = ctx.settings.send
    rate = cfg.rate if opts.rate is None else opts.rate
    connections = max(1, cfg.connections if opts.connections is None else opts.connections)
    ctx.limiter = RateLimiter(rate)
    work: queue.Queue = queue.Queue(maxsize=connections * 64)
    counter = {"attempted": 0, "lock": threading.Lock()}
    threads = [threading.Thread(target=_worker, args=(ctx, work, factory, counter), daemon=True)
               for _ in range(connections)]
    for t in threads:
        t.start()
    try:
        for row in _queued_rows(db, ctx.issue["id"], opts.limit):
            while not ctx.stop.is_set():
                try:
                    work.put(row, timeout=0.2)
                    break
                except queue.Full:
                    continue
            if ctx.stop.is_set():
                break
    finally:
        for _ in threads:
            work.put(None)
        for t in threads:
            t.join()
    return counter["attempted"]


def _queued_rows(db, issue_id: int, limit: int | None, batch: int = 500):
    """Queued deliveries with their subscriber, in id order, read in batches (constant memory)."""
    last, left = 0, limit if limit is not None else float("inf")
    while left > 0:
        rows = list(db.query(
            "select d.id, d.subscriber_id, d.attempts, s.email, s.status as subscriber_status,"
            " s.anrede, s.titel, s.vorname, s.nachname"
            " from deliveries d join subscribers s on s.id = d.subscriber_id"
            " where d.issue_id = ? and d.status = 'queued' and d.id > ? order by d.id limit ?",
            [issue_id, last, int(min(batch, left))],
        ))
        if not rows:
            return
        for row in rows:
            yield row
        last, left = rows[-1]["id"], left - len(rows)


def _worker(ctx: Context, work: queue.Queue, factory, counter: dict) -> None:
    log = DeliveryLog(store.open_db(ctx.db_path, create=False))
    transport = factory()
    try:
        for row in iter(work.get, None):
            if ctx.stop.is_set():
                continue
            try:
                state = _deliver(ctx, log, transport, row)
            except TransportError as e:
                log.write(row["id"], "queued")
                ctx.fatal.append(e)
                ctx.stop.set()
                continue
            with counter["lock"]:
                counter["attempted"] += 1
            ctx.progress(state)
    except Exception as e:  # an unexpected bug must still stop the feeder
        ctx.fatal.append(e)
        ctx.stop.set()
    finally:
        transport.close()
        log.close()


def _deliver(ctx: Context, log: "DeliveryLog", transport, row: dict) -> str:
    """One recipient: build once, then try up to max_attempts times; returns the final state."""
    if row["subscriber_status"] != "active":
        log.write(row["id"], "skipped", last_reply=f"subscriber is {row['subscriber_status']}")
        return "skipped"
    raw, message_id = build(ctx, row["email"], row["subscriber_id"], row)
    sender = envelope_sender(ctx.settings, ctx.key, ctx.list_id, row["subscriber_id"])
    cfg = ctx.settings.send
    for attempt in range(1, cfg.max_attempts + 1):
        ctx.limiter.wait()
        log.write(row["id"], "sending", message_id=message_id, attempt=True)
        try:
            reply = transport.send(sender, row["email"], raw)
        except DeliveryError as e:
            if e.permanent:
                log.write(row["id"], "failed", code=e.code, last_reply=e.text)
                if e.user_unknown:
                    log.bounce(row["subscriber_id"])
                return "failed"
            log.write(row["id"], "deferred", code=e.code, last_reply=e.text)
            if attempt < cfg.max_attempts and not ctx.stop.is_set():
                clock.sleep(cfg.retry_delay * 2 ** (attempt - 1))
            continue
        log.write(row["id"], "sent", code=reply.code, last_reply=reply.text, sent=True, defer=True)
        return "sent"
    return "deferred"


def build(ctx: Context, email: str, subscriber_id: int, names: dict) -> tuple[bytes, str]:
    """The final bytes for one reader (signed when DKIM is configured) and their Message-ID."""
    recipient = Recipient(email, salutation(names), tokens.make(ctx.key, ctx.list_id, subscriber_id))
    raw, message_id = ctx.template.build(recipient)
    return (ctx.signer(raw) if ctx.signer else raw), message_id


class DeliveryLog:
    """One connection's writes to the delivery log.

    Every change is committed at once, except a 'sent' result: it waits and is committed in
    the same transaction as the next row's 'sending' mark (or when the worker ends). So each
    message costs one commit, and a crash still leaves at most one row per connection in
    'sending': the one on the wire, or the one whose 250 reply was not yet written down.
    """

    def __init__(self, db) -> None:
        self.db = db
        self.pending: list[tuple[str, list]] = []

    def write(self, delivery_id: int, status: str, *, code: int | None = None, last_reply: str | None = None,
              message_id: str | None = None, attempt: bool = False, sent: bool = False,
              defer: bool = False) -> None:
        sets, args = ["status = ?", "updated_at = ?"], [status, clock.stamp()]
        for column, value in (("last_code", code), ("last_reply", last_reply), ("message_id", message_id)):
            if value is not None:
                sets.append(f"{column} = ?")
                args.append(value)
        if attempt:
            sets.append("attempts = attempts + 1")
        if sent:
            sets.append("sent_at = ?")
            args.append(args[1])
        self.pending.append((f"update deliveries set {', '.join(sets)} where id = ?", args + [delivery_id]))
        if not defer:
            self.flush()

    def bounce(self, subscriber_id: int) -> None:
        self.pending.append(("update subscribers set status = 'bounced', updated_at = ? where id = ? and status = 'active'",
                             [clock.stamp(), subscriber_id]))
        self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        with _WRITE_LOCK, store.transaction(self.db):
            for sql, args in self.pending:
                self.db.execute(sql, args)
        self.pending.clear()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.db.close()


def _counts(db, issue_id: int) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for state, n in db.execute("select status, count(*) from deliveries where issue_id = ? group by status", [issue_id]):
        counts[state] = n
    return counts


def _finish(db, issue: dict, unconfirmed: list[str], attempted: int) -> SendSummary:
    counts = _counts(db, issue["id"])
    summary = SendSummary(issue, counts, attempted, unconfirmed)
    if summary.done:
        stamp = clock.stamp()
        with store.transaction(db):
            db["issues"].update(issue["id"], {"status": "sent", "sent_at": issue.get("sent_at") or stamp, "updated_at": stamp})
    summary.issue = store.get_issue(db, issue["id"])
    return summary


def _dry_run(db, ctx: Context) -> SendSummary:
    """Build every message as a real run would; send and record nothing."""
    started = clock.monotonic()
    summary = SendSummary(ctx.issue)
    for row in active_subscribers(db):
        raw, _ = build(ctx, row["email"], row["id"], row)
        summary.built += 1
        summary.built_bytes += len(raw)
        ctx.progress("built")
    summary.seconds = clock.monotonic() - started
    return summary


# --- envelope and signature ------------------------------------------------------------------

def envelope_sender(settings: Settings, key: bytes, lid: str, subscriber_id: int) -> str:
    """The return path: VERP (bounces+TOKEN@domain) when enabled, else the From address."""
    cfg, sender = settings.send, settings.publication.sender_address
    if not cfg.verp:
        return sender
    domain = cfg.bounce_domain or sender.rpartition("@")[2]
    return f"bounces+{tokens.make(key, lid, subscriber_id, 'bounce')}@{domain}"


DKIM_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"list-id", b"list-unsubscribe",
                b"list-unsubscribe-post", b"feedback-id", b"mime-version", b"content-type"]


def dkim_signer(settings: Settings) -> Callable[[bytes], bytes] | None:
    """A function that prepends a DKIM-Signature to final message bytes, or None when not configured."""
    cfg = settings.send
    if not cfg.dkim_key:
        return None
    import dkim

    path = settings.base_dir / cfg.dkim_key
    try:
        key = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"[send] dkim_key {path}: {e.strerror} - give the PEM private key file") from None
    if not cfg.dkim_selector:
        raise ConfigError("[send] dkim_selector is empty - set the selector of your DKIM DNS record")
    domain = (cfg.dkim_domain or settings.publication.sender_address.rpartition("@")[2]).encode()
    selector = cfg.dkim_selector.encode()
    headers = DKIM_HEADERS if settings.send.feedback_id else [h for h in DKIM_HEADERS if h != b"feedback-id"]

    def sign(raw: bytes) -> bytes:
        return dkim.sign(raw, selector, domain, key, include_headers=headers,
                         canonicalize=(b"relaxed", b"relaxed")) + raw

    return sign
