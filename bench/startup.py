"""Benchmark start-up: `newsletter --help` and a command that needs no more than the store,
beside the bare interpreter, as whole processes.

Run from the project root:

    python bench/startup.py [--repeat 10] [--json]

Each command runs once untimed, then --repeat times; the median wall clock is reported with
the interpreter's own start-up (`python -c pass`) beside it, run in turn with the others so a
drifting machine affects all alike. Target: `newsletter --help` in about 0.15 s on the 2-core
development machine, that is within about 50 ms of the bare interpreter.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, env, newsletter

sys.path.insert(0, str(ROOT))
from newsletter.demo import DEMO_CONFIG  # noqa: E402

TARGET_SECONDS = 0.15


def commands(folder: Path) -> dict[str, list[str]]:
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "newsletter --help": newsletter("--help"),
        "newsletter issues list": newsletter("issues", "list"),
    }


def measure(repeat: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-startup-") as tmp:
        folder = Path(tmp)
        (folder / "newsletter.toml").write_text(DEMO_CONFIG, encoding="utf-8")
        children = env(NEWSLETTER_CONFIG=str(folder / "newsletter.toml"))
        subprocess.run(newsletter("init"), env=children, cwd=folder, capture_output=True, check=True)
        runs: dict[str, list[float]] = {name: [] for name in commands(folder)}
        for i in range(repeat + 1):
            for name, cmd in commands(folder).items():
                start = time.perf_counter()
                subprocess.run(cmd, env=children, cwd=folder, capture_output=True, check=True)
                if i:  # the first round warms the caches and is not counted
                    runs[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in runs.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=10, help="counted runs of each command (default 10)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    medians = measure(max(args.repeat, 1))
    if args.json:
        print(json.dumps({"medians": medians, "target_seconds": TARGET_SECONDS}, indent=2))
        return 0
    bare = medians["python -c pass"]
    for name, seconds in medians.items():
        print(f"{name:<24} {seconds * 1000:6.0f} ms  (+{(seconds - bare) * 1000:.0f} ms over the interpreter)")
    print(f"newsletter --help: {medians['newsletter --help']:.3f} s (target about {TARGET_SECONDS} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
