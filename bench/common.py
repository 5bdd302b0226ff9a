"""What the benchmarks share: running a command as a child process and measuring it from
outside (wall clock and its own peak memory), and the command line of this checkout's
`newsletter`."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def newsletter(*args: str) -> list[str]:
    """`python -m newsletter ARGS` of this checkout (see `env`)."""
    return [sys.executable, "-m", "newsletter", *args]


def env(**extra: str) -> dict:
    """The environment for children: this checkout first on the path, plus `extra`."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


# Linux keeps a process's peak RSS across execve, and subprocess forks with vfork: a child
# started from this (large) process reports at least this process's peak. So every measured
# command runs under a small wrapper process, which times it and reads its own RUSAGE_CHILDREN.
MEASURE = (
    "import resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "seconds = time.perf_counter() - start\n"
    "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "open(sys.argv[1], 'w').write(f'{seconds} {rss}')\n"
    "sys.exit(code)\n"
)


def run_measured(cmd: list[str], **kwargs) -> dict:
    """Run cmd to completion; wall seconds, peak RSS (KiB, of cmd alone), output."""
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "figures"
        done = subprocess.run([sys.executable, "-c", MEASURE, str(figures), *cmd],
                              stdin=subprocess.DEVNULL, capture_output=True, **kwargs)
        if done.returncode != 0 or not figures.exists():
            raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n"
                             f"{done.stdout.decode(errors='replace')}{done.stderr.decode(errors='replace')[-3000:]}")
        seconds, rss = figures.read_text().split()
    return {"seconds": float(seconds), "maxrss_kib": int(rss),
            "stdout": done.stdout.decode("utf-8", "replace"), "stderr": done.stderr.decode("utf-8", "replace")}




def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"
