"""Benchmark what grows with the list: `newsletter subscribers import` of a big CSV, in time and
peak memory.

Run from the project root:

    python bench/audience.py [-n 1000000] [--json]

It writes a CSV of N readers (email;anrede;titel;vorname;nachname, every tenth with names, as a
publisher's export looks) into a scratch folder with the demo configuration and an empty
database (`newsletter init`), then times `python -m newsletter subscribers import FILE
--consent-source Bench` as a child process and reads its peak RSS from a small wrapper process.
The target is a streaming import: under 150 MiB whatever N. A second import of the same file
(everyone unchanged) is timed too. The dry run over a million readers is measured by
bench/send.py --dry-run-n.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

from common import ROOT, env, log, mib, newsletter, run_measured

sys.path.insert(0, str(ROOT))
from newsletter.demo import DEMO_CONFIG  # noqa: E402

TARGET_MIB = 150


def write_csv(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("email;anrede;titel;vorname;nachname\n")
        for i in range(1, n + 1):
            if i % 10 == 0:
                f.write(f"leser{i:07d}@beispiel-verlag.de;{'Frau' if i % 20 == 0 else 'Herr'};;Vorname{i};Nachname{i}\n")
            else:
                f.write(f"leser{i:07d}@beispiel-verlag.de;;;;\n")


def import_once(folder: Path, csv: Path) -> dict:
    r = run_measured(newsletter("subscribers", "import", str(csv), "--consent-source", "Bench"),
                     env=env(NEWSLETTER_CONFIG=str(folder / "newsletter.toml")), cwd=folder)
    m = re.search(r"(\d+) added, (\d+) updated, (\d+) unchanged", r["stdout"])
    if not m:
        raise SystemExit(f"Unexpected import output:\n{r['stdout']}{r['stderr'][-2000:]}")
    return {"added": int(m[1]), "unchanged": int(m[3]), "seconds": r["seconds"], "maxrss_kib": r["maxrss_kib"]}


def measure(n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-audience-") as tmp:
        folder = Path(tmp)
        (folder / "newsletter.toml").write_text(DEMO_CONFIG, encoding="utf-8")
        run_measured(newsletter("init"), env=env(NEWSLETTER_CONFIG=str(folder / "newsletter.toml")), cwd=folder)
        csv = folder / "leser.csv"
        log(f"Writing {n:,} readers ...")
        write_csv(csv, n)
        log("Importing ...")
        first = import_once(folder, csv)
        log("Importing the same file again ...")
        again = import_once(folder, csv)
        return {"n": n, "csv_bytes": csv.stat().st_size, "first": first, "again": again, "target_mib": TARGET_MIB}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", type=int, default=1_000_000, help="readers in the CSV (default 1000000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    r = measure(max(args.n, 1))
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"subscribers import of {r['n']:,} rows ({r['csv_bytes'] / 2**20:.0f} MiB of CSV):")
    for label, key in (("first import (all added)", "first"), ("same file again (all unchanged)", "again")):
        x = r[key]
        print(f"  {label:<32} {x['seconds']:7.1f} s  {r['n'] / x['seconds']:8.0f} rows/s  peak {mib(x['maxrss_kib'])}")
    peak = max(r["first"]["maxrss_kib"], r["again"]["maxrss_kib"]) / 1024
    print(f"peak memory {peak:.1f} MiB (target under {TARGET_MIB} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
