"""Benchmark `newsletter compose`: per-stage timings and the whole process against the MJML CLI.

Run from the project root (the project installed with `pip install -e .`):

    python bench/compose.py [--repeat N] [--json]

What it does:

1. Builds a scratch folder (tempfile) with the demo configuration plus
   `[compose] max_articles = 40, max_jobs = 20`, and a database holding 40 articles,
   20 job ads and 2 ads made by cycling data/demo/*.json (unique URLs, dates in the
   7 days before the issue date 2026-11-24, job deadlines after it).
2. Times each stage in-process with the project's own functions (median of N runs):
   select, Jinja (MJML and text templates), MJML (mjml-python), CSS inlining (premailer),
   text wrapping and message encoding (IssueMessage + html_size).
3. Times the whole process, `newsletter compose --allow-clipping --date 2026-11-24
   --since 7d`, in a subprocess (wall clock, median of N runs). One untimed warm-up run
   creates the draft; every timed run re-composes it with `--replace <slug>`, so all timed
   runs do the same work and the database does not grow.
4. Times the reference, the official MJML CLI (npm `mjml@4`) rendering the same MJML
   source: `mjml issue.mjml -o out.html` (one untimed warm-up, then median of N runs). The two
   commands run in turn (A B A B ...) and the ratio is the median of the pairs' ratios, so a drift
   in the machine's speed hits both alike.
   The CLI is taken from $MJML_CLI, else bench/node_modules/.bin/mjml, else `mjml` on
   PATH; failing those, and if npm exists, it is installed into bench/node_modules.
   Without Node/mjml the ratio is skipped.

Targets are reported, not asserted: the exit code is 0 unless something crashes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from newsletter import config
from newsletter.compose import issue, render, select
from newsletter.compose.issue import ComposeRequest
from newsletter.content import ingest
from newsletter.demo import DEMO_CONFIG, demo_data_dir
from newsletter.mail.message import IssueMessage
from newsletter.store import open_db

ISSUE_DATE = date(2026, 11, 24)
COUNTS = {"article": 40, "job": 20, "ad": 2}
DEMO_FILES = {"article": "articles", "job": "jobs", "ad": "ads"}
COMPOSE_OVERRIDES = "\n[compose]\nmax_articles = 40\nmax_jobs = 20\n"
TARGET_RATIO = 1.0
BENCH_DIR = Path(__file__).resolve().parent
MJML_INSTALL = ["npm", "install", "--prefix", str(BENCH_DIR), "--no-audit", "--no-fund", "--no-save", "mjml@4"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- scratch setup ---------------------------------------------------------------------------

def make_rows(kind: str) -> list[ingest.RawRow]:
    """COUNTS[kind] rows cycled from the demo content, with unique URLs and fitting dates."""
    demo = json.loads((demo_data_dir() / f"{DEMO_FILES[kind]}.json").read_text(encoding="utf-8"))
    rows = []
    for i in range(COUNTS[kind]):
        row = {**demo[i % len(demo)], "url": f"{demo[i % len(demo)]['url']}-bench-{i}"}
        rows.append(ingest.RawRow(i + 1, {**row, **_dates(kind, i)}))
    return rows


def _dates(kind: str, i: int) -> dict:
    """Published within the 7 days before the issue; deadlines and bookings cover it."""
    published = (ISSUE_DATE - timedelta(days=1 + i % 7)).isoformat()
    if kind == "article":
        return {"published": published}
    if kind == "job":
        return {"published": published, "deadline": (ISSUE_DATE + timedelta(days=7 + i)).isoformat()}
    return {"starts": (ISSUE_DATE - timedelta(days=7)).isoformat(),
            "ends": (ISSUE_DATE + timedelta(days=30)).isoformat()}


def build_scratch(folder: Path) -> Path:
    """Write the config and import the generated content; return the config path."""
    config_path = folder / "newsletter.toml"
    config_path.write_text(DEMO_CONFIG + COMPOSE_OVERRIDES, encoding="utf-8")
    settings = config.load(config=config_path)
    db = open_db(settings.db_path, create=True)
    for kind in COUNTS:
        report = ingest.import_rows(db, make_rows(kind), kind, f"bench {kind}s")
        if report.rejected or report.new != COUNTS[kind]:
            raise SystemExit(f"Bench content import failed for {kind}: {report}")
    db.close()
    return config_path


# --- in-process stages -----------------------------------------------------------------------

def timed(fn, repeat: int):
    """Median milliseconds of `repeat` calls of fn(), and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def jinja_stage(settings, ctx: dict) -> tuple[str, str]:
    """The two template renders render.render makes (with a fresh environment, as it does)."""
    env = render.environment(settings.templates_dir)
    return render.template(env, "issue.mjml.j2", ctx), render.template(env, "issue.txt.j2", ctx)


def time_stages(config_path: Path, repeat: int) -> tuple[dict, dict]:
    """Median ms per stage, and the artefacts (MJML source, sizes) of the last run."""
    settings = config.load(config=config_path)
    db = open_db(settings.db_path)
    opts = select.Options(issue_date=ISSUE_DATE, since="7d")
    ms = {}
    ms["select"], sel = timed(lambda: select.select(db, settings, opts), repeat)
    meta = issue._meta(db, settings, ComposeRequest(options=opts), sel, None, [])
    meta["slug"] = ISSUE_DATE.isoformat()
    ctx = issue.context(settings, meta, sel)
    ms["jinja"], (mjml_source, raw_text) = timed(lambda: jinja_stage(settings, ctx), repeat)
    ms["mjml"], html = timed(lambda: render.mjml_to_html(mjml_source), repeat)
    ms["inline"], inlined = timed(lambda: render.inline_css(html), repeat)
    ms["text"], text = timed(lambda: render.wrap_text(raw_text), repeat)
    ms["message"], size = timed(lambda: encode(settings, meta["subject"], inlined, text), repeat)
    db.close()
    return ms, {"mjml": mjml_source, "html_size": size, "counts": sel.counts}


def encode(settings, subject: str, html: str, text: str) -> int:
    return IssueMessage(settings, subject, html, text).html_size()


# --- subprocesses ----------------------------------------------------------------------------

def wall(cmd: list[str], repeat: int, **kwargs) -> float:
    """Median wall-clock ms of `repeat` runs of cmd (each must succeed)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, **kwargs)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def newsletter_cmd() -> list[str]:
    """The installed console script next to this interpreter (no pyenv shim), else -m."""
    script = Path(sys.executable).parent / "newsletter"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "newsletter"]


def compose_cmd(config_path: Path) -> tuple[list[str], dict]:
    """The timed compose (a re-compose of the draft the warm-up made) and how to run it."""
    env = {**os.environ, "NEWSLETTER_CONFIG": str(config_path)}
    base = newsletter_cmd() + ["compose", "--allow-clipping", "--date", ISSUE_DATE.isoformat(), "--since", "7d"]
    run = dict(env=env, cwd=config_path.parent)
    subprocess.run(base, check=True, capture_output=True, **run)  # warm-up; creates the draft
    return base + ["--replace", ISSUE_DATE.isoformat()], run


def time_pairs(ours: tuple[list[str], dict], reference: list[str] | None, repeat: int) -> dict:
    """Both commands in turn, A B A B ..., so a drift in the machine's speed hits both alike:
    the median of each and the median of the ratios pair by pair."""
    cmd, run = ours
    subprocess.run(cmd, check=True, capture_output=True, **run)  # warm-up
    if reference:
        subprocess.run(reference, check=True, capture_output=True)
    a, b = [], []
    for _ in range(repeat):
        a.append(wall(cmd, 1, **run))
        if reference:
            b.append(wall(reference, 1))
    ratios = [x / y for x, y in zip(a, b, strict=True)] if b else []
    return {"compose_ms": statistics.median(a), "mjml_cli_ms": statistics.median(b) if b else None,
            "ratio": statistics.median(ratios) if ratios else None}


def find_mjml_cli() -> str | None:
    """$MJML_CLI, bench/node_modules/.bin/mjml, `mjml` on PATH, or a fresh npm install."""
    if os.environ.get("MJML_CLI"):
        return os.environ["MJML_CLI"]
    local = BENCH_DIR / "node_modules" / ".bin" / "mjml"
    if local.is_file():
        return str(local)
    if shutil.which("mjml"):
        return shutil.which("mjml")
    if not (shutil.which("npm") and shutil.which("node")):
        return None
    log("Installing the MJML CLI: " + " ".join(MJML_INSTALL))
    done = subprocess.run(MJML_INSTALL, capture_output=True, text=True)
    if done.returncode != 0:
        log(f"npm install failed:\n{done.stderr.strip()[-2000:]}")
    return str(local) if local.is_file() else None


def mjml_cli_cmd(cli: str, mjml_source: str, folder: Path) -> list[str]:
    source, out = folder / "issue.mjml", folder / "out.html"
    source.write_text(mjml_source, encoding="utf-8")
    return [cli, str(source), "-o", str(out)]


# --- report ----------------------------------------------------------------------------------

def measure(repeat: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-") as tmp:
        folder = Path(tmp)
        config_path = build_scratch(folder)
        stages, artefacts = time_stages(config_path, repeat)
        cli = find_mjml_cli()
        pairs = time_pairs(compose_cmd(config_path), mjml_cli_cmd(cli, artefacts["mjml"], folder) if cli else None,
                           repeat)
    return {"repeat": repeat, "counts": artefacts["counts"], "html_size": artefacts["html_size"],
            "stages_ms": stages, "stages_total_ms": sum(stages.values()), **pairs,
            "mjml_cli": cli, "target_ratio": TARGET_RATIO}


def print_table(r: dict) -> None:
    print(f"{r['counts']}, HTML part {r['html_size']:,} bytes; median of {r['repeat']} runs")
    print(f"{'stage':<10} {'median ms':>10}")
    for stage, ms in r["stages_ms"].items():
        print(f"{stage:<10} {ms:>10.1f}")
    print(f"{'sum':<10} {r['stages_total_ms']:>10.1f}")
    print(f"newsletter compose (whole process): {r['compose_ms']:.0f} ms")
    if r["mjml_cli_ms"] is None:
        print("mjml CLI (render only): unavailable - no Node.js/npm or mjml CLI found; ratio skipped")
        return
    print(f"mjml CLI (render only): {r['mjml_cli_ms']:.0f} ms")
    print(f"ratio (median of {r['repeat']} A/B pairs, run in turn): {r['ratio']:.2f} (target <= {TARGET_RATIO})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (median; default 5)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    result = measure(max(args.repeat, 1))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
