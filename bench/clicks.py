"""Benchmark the counted links of `newsletter serve` (/c/CODE): requests per second and latency
under load, and the burst after a send, against a bare redirect on the same HTTP stack.

Run from the project root:

    python bench/clicks.py [-n 20000] [-c 32] [--burst 5000] [--json]

What it does:

1. Builds the demo in a scratch folder (its config counts clicks) and sends the issue to the
   demo readers (file transport), so the issue has its counted links.
2. Starts `python -m newsletter serve` on a free port of 127.0.0.1 and, as the reference, a bare
   ASGI app under the same uvicorn that answers every request with the same 302 and does nothing
   else (no lookup, no counting): the floor of what any redirect on this stack costs.
3. Load: N GET requests over C keep-alive connections, spread over the issue's links, from
   distinct simulated clients (X-Forwarded-For, which serve trusts from 127.0.0.1, and varied
   browser user agents, so nearly every click is a human one and the unique-click sets grow). The
   same load goes to the reference. Reports requests per second, p50 and p99 latency, and the
   ratio of our rate to the reference's.
4. Burst: --burst clicks as fast as C connections take them, the pattern of the first minute
   after a send, a tenth of them from scanners (HEAD and scanner user agents). It must be
   answered without an error and within 60 s, and the counts stored must add up to the
   requests made.

The client is asyncio with raw HTTP/1.1 on keep-alive sockets, so it costs little beside the
server. Figures are reported, not asserted; the exit code is 0 unless something crashes or a
request fails. Both servers are stopped at the end and bind only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import env, log, newsletter  # noqa: E402

BARE = (
    "async def app(scope, receive, send):\n"
    "    if scope['type'] != 'http':\n"
    "        return\n"
    "    await send({'type': 'http.response.start', 'status': 302, 'headers': [\n"
    "        (b'location', b'https://www.stadtmarketing-demo.de/artikel/x'), (b'content-length', b'0')]})\n"
    "    await send({'type': 'http.response.body', 'body': b''})\n"
)
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36 Edg/126.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
]
SCANNERS = ["Mozilla/5.0 (compatible; SafeLinks)", "Barracuda Sentinel (EE)", "Proofpoint URL Defense"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {process.stderr.read() if process.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after 30 s")


def prepare(folder: Path) -> list[str]:
    """The demo, sent to its readers; the paths of its counted links."""
    subprocess.run(newsletter("demo", str(folder)), check=True, capture_output=True, env=env())
    child = env(NEWSLETTER_SECRET="bench-secret-0123456789abcdef", NEWSLETTER_CHECK_SPAMASSASSIN="0",
                NEWSLETTER_CHECK_CONTRAST="0")
    subprocess.run(newsletter("send", "latest", "--yes"), check=True, capture_output=True, cwd=folder, env=child)
    db = sqlite3.connect(folder / "data" / "newsletter.db")
    codes = [row[0] for row in db.execute("select code from links where position is not null")]
    db.close()
    return [f"/c/{code}" for code in codes]


async def one_connection(port: int, jobs: asyncio.Queue, latencies: list[float], errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            try:
                method, path, client, agent = jobs.get_nowait()
            except asyncio.QueueEmpty:
                return
            request = (f"{method} {path} HTTP/1.1\r\nHost: www.stadtmarketing-demo.de\r\nUser-Agent: {agent}\r\n"
                       f"X-Forwarded-For: {client}\r\nConnection: keep-alive\r\n\r\n").encode()
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length and method != "HEAD":
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            status = head.split(b" ", 2)[1]
            if status != b"302":
                errors.append(f"{method} {path}: {status.decode()}")
    finally:
        writer.close()


async def load(port: int, requests: list[tuple[str, str, str, str]], connections: int) -> dict:
    jobs: asyncio.Queue = asyncio.Queue()
    for job in requests:
        jobs.put_nowait(job)
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    await asyncio.gather(*(one_connection(port, jobs, latencies, errors) for _ in range(connections)))
    seconds = time.perf_counter() - start
    latencies.sort()
    return {"requests": len(latencies), "seconds": seconds, "rps": len(latencies) / seconds,
            "p50_ms": 1000 * statistics.median(latencies), "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
            "errors": errors}


def clicks(paths: list[str], n: int, scanners: float = 0.0, seed: int = 7) -> list[tuple[str, str, str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        client = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        if rng.random() < scanners:
            out.append((rng.choice(["HEAD", "GET"]), rng.choice(paths), client, rng.choice(SCANNERS)))
        else:
            out.append(("GET", rng.choice(paths), client, rng.choice(AGENTS)))
    return out


def start(cmd: list[str], port: int, cwd: Path, extra_env: dict) -> subprocess.Popen:
    process = subprocess.Popen(cmd, cwd=cwd, env=env(**extra_env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    wait_ready(port, process)
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20_000, help="requests in the load test")
    parser.add_argument("-c", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--burst", type=int, default=5_000, help="clicks in the burst after a send")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-clicks-") as tmp:
        folder = Path(tmp) / "demo"
        log("building and sending the demo issue ...")
        paths = prepare(folder)
        ours_port, bare_port = free_port(), free_port()
        (Path(tmp) / "bare.py").write_text(BARE)
        secret = {"NEWSLETTER_SECRET": "bench-secret-0123456789abcdef"}
        ours = start(newsletter("serve", "--port", str(ours_port)), ours_port, folder, secret)
        bare = start([sys.executable, "-m", "uvicorn", "bare:app", "--host", "127.0.0.1", "--port", str(bare_port),
                      "--log-level", "warning", "--no-access-log"], bare_port, Path(tmp), {})
        try:
            log(f"load: {args.n} clicks over {args.c} connections, each server ...")
            warm = clicks(paths, 500, seed=1)
            asyncio.run(load(bare_port, warm, args.c))
            asyncio.run(load(ours_port, warm, args.c))
            reference = asyncio.run(load(bare_port, clicks(paths, args.n, seed=2), args.c))
            measured = asyncio.run(load(ours_port, clicks(paths, args.n, seed=3), args.c))
            log(f"burst: {args.burst} clicks, a tenth from scanners ...")
            burst = asyncio.run(load(ours_port, clicks(paths, args.burst, scanners=0.1, seed=4), args.c))
        finally:
            stop(ours)
            stop(bare)
        db = sqlite3.connect(folder / "data" / "newsletter.db")
        stored = db.execute("select coalesce(sum(human + automated + repeated), 0) from clicks").fetchone()[0]
        db.close()
    made = 500 + args.n + args.burst
    result = {"ours": {k: v for k, v in measured.items() if k != "errors"},
              "reference": {k: v for k, v in reference.items() if k != "errors"},
              "ratio": measured["rps"] / reference["rps"],
              "burst": {k: v for k, v in burst.items() if k != "errors"}, "burst_errors": len(burst["errors"]),
              "load_errors": len(measured["errors"]), "stored_counts": stored, "requests_made": made,
              "cpus": os.cpu_count()}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'server':<34}{'requests':>9}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}")
        for name, r in (("newsletter serve /c/CODE", measured), ("bare 302 on uvicorn (reference)", reference),
                        ("burst after a send (ours)", burst)):
            print(f"{name:<34}{r['requests']:>9,}{r['rps']:>9,.0f}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}")
        print(f"ratio to the bare redirect: {result['ratio']:.2f}")
        print(f"burst: {burst['requests']:,} clicks in {burst['seconds']:.1f} s (target: within 60 s), "
              f"{len(burst['errors'])} errors; counts stored {stored:,} of {made:,} requests made")
    if measured["errors"] or burst["errors"] or stored != made:
        raise SystemExit(f"failed requests or lost counts: {(measured['errors'] + burst['errors'])[:5]}, "
                         f"stored {stored} of {made}")


if __name__ == "__main__":
    main()
