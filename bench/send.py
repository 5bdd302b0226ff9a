"""Benchmark `newsletter send`: messages per second over SMTP against Postfix's smtp-source, and memory.

Run from the project root:

    python bench/send.py [-n 5000] [-c 4] [--pairs 3] [--dry-run-n 1000000] [--json]

What it does:

1. Builds a scratch folder (tempfile) with the demo (`newsletter.demo.create`, which writes
   newsletter.toml and the database and composes issue 1 for 2026-11-24), copied twice:
   one copy gets N active subscribers for the send, the other those for the dry runs.
   Subscribers are written with one executemany insert (every 10th with Anrede and Nachname).
2. Starts an SMTP sink on 127.0.0.1 (a free port): Postfix's `smtp-sink`, which accepts
   and discards any number of messages. Without it, and as root, Postfix is installed with
   apt-get (no configuration, the service is not started); failing that, an aiosmtpd sink
   (`python -m aiosmtpd -c aiosmtpd.handlers.Sink`) is used instead, and the report says so.
3. Runs `python -m newsletter check 1` first, as the weekly routine does when it composes
   (SpamAssassin and the Chromium contrast check where installed; its time is reported), then
   times `python -m newsletter send 1 --yes --connections C` as cron runs it: the whole
   process (wall clock, peak RSS from a small wrapper process; its preflight reuses the passed
   check), and the delivery phase alone (the seconds the send's own summary reports, from
   the first connection to the last reply), with the SMTP transport pointed at the sink. It
   checks that the summary reports N sent.
4. Times the reference, `smtp-source -d -s C -m N -l SIZE` (C sessions, each reusing its
   connection; SIZE = the average size of our messages, from the dry run) against the same
   sink, in turn with our send (--pairs times: send, smtp-source, send, ...; the delivery log
   is reset between sends), and reports the median of the pairs' ratios for both our rates
   (whole process, delivery phase), so a drift in the machine's speed hits both alike. For context, a naive baseline runs
   in-process for min(N, 500) messages: per recipient an email.message.EmailMessage with
   the issue's text and HTML (set_content/add_alternative), as_bytes() and
   smtplib.SMTP.sendmail over one connection.
5. Memory: `python -m newsletter send 1 --dry-run` for 1,000 and for --dry-run-n
   subscribers (rows added to the same scratch database in between), peak RSS of each child.
   Targets: the whole process >= 0.6 and the delivery phase >= 0.75 of smtp-source's rate; a
   dry run over 1,000,000 readers under 100 MB.

The code measured is this checkout's (the repository root goes first on sys.path and on the
children's PYTHONPATH), whatever `pip install -e` points at. Targets are reported, not
asserted: the exit code is 0 unless something crashes. The sink is always stopped, and
nothing binds anything but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, localtime, make_msgid
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if (ROOT / "newsletter").is_dir():
    sys.path.insert(0, str(ROOT))

from common import env, log, mib, newsletter, run_measured  # noqa: E402

from newsletter import config, demo  # noqa: E402
from newsletter.compose.personal import PLACEHOLDERS  # noqa: E402
from newsletter.store import open_db  # noqa: E402
from newsletter.store.issues import get_issue  # noqa: E402

ISSUE_DATE = date(2026, 11, 24)
HOST = "127.0.0.1"
SECRET = "bench-secret-0123456789abcdefghij"  # 32 characters
TARGET_RATIO = 0.6           # whole process
TARGET_DELIVERY_RATIO = 0.75  # delivery phase alone
TARGET_DRY_RUN_MIB = 100
NAIVE_MAX = 500
DRY_SMALL = 1000
SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"
POSTFIX_PRESEED = "postfix postfix/main_mailer_type select No configuration\n"


# --- scratch setup ---------------------------------------------------------------------------

def build_demo(folder: Path) -> None:
    """The demo setup with issue 1 composed, its database checkpointed so it can be copied."""
    demo.create(folder, ISSUE_DATE)
    settings = config.load(config=folder / "newsletter.toml")
    conn = sqlite3.connect(settings.db_path)
    conn.execute("pragma wal_checkpoint(truncate)")
    conn.close()


def copy_demo(source: Path, target: Path) -> Path:
    """A copy of the demo folder; returns its config path."""
    shutil.copytree(source, target)
    return target / "newsletter.toml"


def add_subscribers(config_path: Path, upto: int) -> int:
    """Insert active subscribers leser00001@example.org… until there are `upto`; returns the count."""
    settings = config.load(config=config_path)
    db = open_db(settings.db_path)
    have = db.value("select count(*) from subscribers")
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    rows = []
    for i in range(have + 1, upto + 1):
        named = i % 10 == 0
        anrede = ("Frau" if i % 20 == 0 else "Herr") if named else None
        rows.append((f"leser{i:05d}@example.org", anrede, "Dr." if i % 50 == 0 else None,
                     f"Vorname{i}" if named else None, f"Nachname{i}" if named else None,
                     "active", "bench", stamp, stamp, stamp))
    db.execute("BEGIN")
    db.executemany(
        "insert into subscribers (email, anrede, titel, vorname, nachname, status, source,"
        " created_at, confirmed_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    total = db.value("select count(*) from subscribers where status = 'active'")
    db.close()
    return total


# --- child processes -------------------------------------------------------------------------

def child_env(config_path: Path, port: int | None = None) -> dict:
    smtp = {} if port is None else {"NEWSLETTER_TRANSPORT": "smtp", "NEWSLETTER_SMTP_HOST": HOST,
                                    "NEWSLETTER_SMTP_PORT": str(port), "NEWSLETTER_SMTP_SECURITY": "none"}
    return env(NEWSLETTER_CONFIG=str(config_path), NEWSLETTER_SECRET=SECRET, **smtp)


def dry_run(config_path: Path) -> dict:
    r = run_measured(newsletter("send", "1", "--dry-run"), env=child_env(config_path), cwd=config_path.parent)
    m = re.search(r"built (\d+) messages \(([\d,]+) bytes on average\)", r["stdout"])
    if not m:
        raise SystemExit(f"Unexpected dry-run output:\n{r['stdout']}")
    return {"built": int(m[1]), "avg_bytes": int(m[2].replace(",", "")), "seconds": r["seconds"],
            "maxrss_kib": r["maxrss_kib"]}


def time_check(config_path: Path) -> dict:
    r = run_measured(newsletter("check", "1"), env=child_env(config_path), cwd=config_path.parent)
    return {"seconds": r["seconds"], "summary": r["stdout"].strip().splitlines()[-1]}


def approve(config_path: Path) -> None:
    """The demo requires approval ([autopilot] approval = "required"): the editor-in-chief gives it,
    as she would from the review mail, so the send measured is the send cron makes."""
    r = subprocess.run(newsletter("approve", "1", "--by", "chefredaktion@stadtmarketing-demo.de"),
                       env=child_env(config_path), cwd=config_path.parent, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"Approving the demo issue failed:\n{r.stdout}{r.stderr}")


def reset_send(config_path: Path) -> None:
    """Back to before the send: no delivery rows, the issue a draft (its passed check stays)."""
    db = sqlite3.connect(config_path.parent / "data" / "newsletter.db")
    with db:
        db.execute("delete from deliveries")
        db.execute("delete from issue_events where kind in ('sent', 'sending')")
        db.execute("update issues set status = 'draft', sent_at = null where id = 1")
    db.close()


def time_send(config_path: Path, port: int, n: int, connections: int) -> dict:
    reset_send(config_path)
    cmd = newsletter("send", "1", "--yes", "--connections", str(connections))
    r = run_measured(cmd, env=child_env(config_path, port), cwd=config_path.parent)
    m = re.search(r"Issue \S+: (\d+) sent, (\d+) deferred, (\d+) failed.*attempted in ([\d.]+) s", r["stdout"])
    sent = int(m[1]) if m else 0
    if sent != n:
        log(f"WARNING: expected {n} sent, the summary says:\n{r['stdout']}{r['stderr'][-2000:]}")
    delivery = float(m[4]) if m else r["seconds"]
    return {"sent": sent, "ok": sent == n, "seconds": r["seconds"], "rate": sent / r["seconds"],
            "delivery_seconds": delivery, "delivery_rate": sent / max(delivery, 1e-6),
            "maxrss_kib": r["maxrss_kib"], "summary": r["stdout"].strip().splitlines()[0] if r["stdout"].strip() else ""}


# --- SMTP sink -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def ensure_postfix_tools() -> bool:
    """smtp-sink present, or installed now (Debian `postfix`, as root); False if neither."""
    if os.access(SMTP_SINK, os.X_OK):
        return True
    if os.geteuid() != 0 or not shutil.which("apt-get") or not shutil.which("debconf-set-selections"):
        return False
    log("Installing Postfix for smtp-sink/smtp-source (apt-get install -y postfix) ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["debconf-set-selections"], input=POSTFIX_PRESEED, text=True, capture_output=True)
    done = subprocess.run(["apt-get", "install", "-y", "postfix"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        log(f"apt-get install postfix failed:\n{done.stderr.strip()[-2000:]}")
    return os.access(SMTP_SINK, os.X_OK)


def start_sink(port: int) -> tuple[subprocess.Popen, str]:
    if ensure_postfix_tools():
        cmd = [SMTP_SINK] + (["-u", "nobody"] if os.geteuid() == 0 else []) + [f"{HOST}:{port}", "1000"]
        kind = "postfix smtp-sink"
    else:
        log("smtp-sink unavailable - falling back to an aiosmtpd sink (slower; smtp-source ratio skipped)")
        cmd = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{HOST}:{port}", "-c", "aiosmtpd.handlers.Sink"]
        kind = "aiosmtpd Sink (fallback)"
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{' '.join(cmd)} exited: {proc.stderr.read().decode(errors='replace')}")
        try:
            with smtplib.SMTP(HOST, port, timeout=2) as probe:
                probe.noop()
            return proc, kind
        except OSError:
            time.sleep(0.1)
    stop_sink(proc)
    raise SystemExit(f"{' '.join(cmd)} did not accept connections on {HOST}:{port}")


def stop_sink(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- references ------------------------------------------------------------------------------

def time_smtp_source(port: int, n: int, connections: int, size: int) -> dict:
    cmd = [SMTP_SOURCE, "-d", "-s", str(connections), "-m", str(n), "-l", str(size),
           "-f", "newsletter@stadtmarketing-demo.de", "-t", "leser@example.org", f"{HOST}:{port}"]
    r = run_measured(cmd)
    return {"seconds": r["seconds"], "rate": n / r["seconds"], "cmd": " ".join(cmd)}


def time_naive(config_path: Path, port: int, n: int) -> dict:
    """Per recipient: EmailMessage (text + HTML alternative), as_bytes(), sendmail; one connection."""
    settings = config.load(config=config_path)
    db = open_db(settings.db_path)
    issue = get_issue(db, 1)
    rows = db.query("select id, email from subscribers where status = 'active' order by id limit ?", [n])
    db.close()
    pub = settings.publication
    start = time.perf_counter()
    total_bytes = 0
    with smtplib.SMTP(HOST, port) as conn:
        for row in rows:
            values = {"salutation": "Guten Tag", "email": row["email"], "token": f"token{row['id']}"}
            text, html = issue.text, issue.html
            for name, marker in PLACEHOLDERS.items():
                text, html = text.replace(marker, values[name]), html.replace(marker, values[name])
            msg = EmailMessage()
            msg["From"] = f"{pub.sender_name} <{pub.sender_address}>"
            msg["To"] = row["email"]
            msg["Subject"] = issue.subject
            msg["Date"] = format_datetime(localtime())
            msg["Message-ID"] = make_msgid(domain=pub.sender_address.rpartition("@")[2])
            msg["List-Unsubscribe"] = f"<{pub.base_url}/abmelden?t={values['token']}>"
            msg.set_content(text)
            msg.add_alternative(html, subtype="html")
            data = msg.as_bytes()
            total_bytes += len(data)
            conn.sendmail(pub.sender_address, [row["email"]], data)
    seconds = time.perf_counter() - start
    return {"messages": len(rows), "seconds": seconds, "rate": len(rows) / seconds,
            "avg_bytes": total_bytes // max(len(rows), 1)}


# --- report ----------------------------------------------------------------------------------

def _median_run(runs: list[dict], key: str) -> dict:
    return sorted(runs, key=lambda r: r[key])[len(runs) // 2]


def measure(n: int, connections: int, dry_n: int, pairs: int = 3) -> dict:
    result: dict = {"n": n, "connections": connections, "target_ratio": TARGET_RATIO}
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-send-") as tmp:
        folder = Path(tmp)
        log("Building the demo ...")
        build_demo(folder / "demo")
        send_config = copy_demo(folder / "demo", folder / "send")
        dry_config = copy_demo(folder / "demo", folder / "dry")

        log(f"Dry runs: {DRY_SMALL:,} and {dry_n:,} subscribers ...")
        add_subscribers(dry_config, DRY_SMALL)
        small = dry_run(dry_config)
        add_subscribers(dry_config, dry_n)
        large = dry_run(dry_config)
        result["dry_run"] = {"small": small, "large": large}
        size = small["avg_bytes"]
        result["avg_message_bytes"] = size

        active = add_subscribers(send_config, n)
        if active != n:
            log(f"WARNING: {active} active subscribers, expected {n}")
        log("newsletter check 1 (as the routine runs it before the send) ...")
        result["check"] = time_check(send_config)
        approve(send_config)
        sink, port = None, free_port()
        try:
            sink, kind = start_sink(port)
            result["sink"] = kind
            reference = os.access(SMTP_SOURCE, os.X_OK) and kind.startswith("postfix")
            runs, refs = [], []
            for number in range(1, pairs + 1):  # in turn, so a drift in the machine's speed hits both alike
                log(f"Pair {number}/{pairs}: sink {kind} on {HOST}:{port}; newsletter send, {n:,} messages over "
                    f"{connections} connections" + (f", then smtp-source, {size:,}-byte messages" if reference else "") + " ...")
                runs.append(time_send(send_config, port, n, connections))
                if reference:
                    refs.append(time_smtp_source(port, n, connections, size))
            ours = _median_run(runs, "rate")
            ref = _median_run(refs, "rate") if refs else None
            result["send"], result["smtp_source"], result["pairs"] = ours, ref, pairs
            result["ratio"] = statistics.median(a["rate"] / b["rate"] for a, b in zip(runs, refs, strict=True)) if refs else None
            result["delivery_ratio"] = (statistics.median(a["delivery_rate"] / b["rate"] for a, b in zip(runs, refs, strict=True))
                                        if refs else None)
            log(f"Naive EmailMessage + smtplib loop: {min(n, NAIVE_MAX)} messages ...")
            naive = time_naive(send_config, port, min(n, NAIVE_MAX))
            naive["ratio"] = naive["rate"] / ref["rate"] if ref else None
            result["naive"] = naive
        finally:
            stop_sink(sink)
    return result


def print_table(r: dict) -> None:
    s, ref, naive, dry = r["send"], r["smtp_source"], r["naive"], r["dry_run"]
    print(f"{r['n']:,} messages, {r['connections']} connections, {r['avg_message_bytes']:,} bytes on average; "
          f"sink: {r['sink']} on {HOST}")
    print(f"{'sender':<38} {'msgs':>7} {'seconds':>8} {'msgs/s':>8} {'ratio':>6}")
    rows = [("newsletter send (whole process)", s["sent"], s["seconds"], s["rate"], r["ratio"]),
            ("  its delivery phase", s["sent"], s["delivery_seconds"], s["delivery_rate"], r["delivery_ratio"])]
    if ref:
        rows.append(("smtp-source -d (reference)", r["n"], ref["seconds"], ref["rate"], 1.0))
    rows.append(("naive EmailMessage + smtplib, 1 conn", naive["messages"], naive["seconds"], naive["rate"], naive["ratio"]))
    for label, msgs, secs, rate, ratio in rows:
        print(f"{label:<38} {msgs:>7,} {secs:>8.2f} {rate:>8.0f} {'-' if ratio is None else f'{ratio:.2f}':>6}")
    if not s["ok"]:
        print(f"WARNING: not all sent: {s['summary']}")
    if r["ratio"] is None:
        print("ratio: smtp-source unavailable - skipped")
    else:
        print(f"ratio, whole process (median of {r['pairs']} pairs run in turn): {r['ratio']:.2f} "
              f"(target >= {TARGET_RATIO})")
        print(f"ratio, delivery phase (median of {r['pairs']} pairs): {r['delivery_ratio']:.2f} "
              f"(target >= {TARGET_DELIVERY_RATIO})")
    print(f"newsletter check before the send: {r['check']['seconds']:.2f} s ({r['check']['summary']})")
    print(f"peak RSS: send {mib(s['maxrss_kib'])}; dry run {dry['small']['built']:,} → {mib(dry['small']['maxrss_kib'])}, "
          f"{dry['large']['built']:,} → {mib(dry['large']['maxrss_kib'])} "
          f"({dry['large']['built'] / dry['large']['seconds']:.0f} built/s incl. start-up; "
          f"target under {TARGET_DRY_RUN_MIB} MiB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", type=int, default=5000, help="subscribers to send to (default 5000)")
    parser.add_argument("-c", "--connections", type=int, default=4, help="parallel SMTP connections (default 4)")
    parser.add_argument("--dry-run-n", type=int, default=1_000_000, help="subscribers for the large dry run (default 1000000)")
    parser.add_argument("--pairs", type=int, default=3, help="send / smtp-source pairs, run in turn (default 3)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    result = measure(max(args.n, 1), max(args.connections, 1), max(args.dry_run_n, DRY_SMALL), max(args.pairs, 1))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
