"""The README's five-minute tour, run verbatim: the commands come from the README's own code block
and every output its comments quote must appear, so README and product cannot drift apart. It
runs at whatever date the suite runs at (CI runs it at three)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from browsing import CHROMIUM, unavailable

README = Path(__file__).parent.parent / "README.md"
STEP = "@@ step "


def tour() -> list[tuple[str, list[str]]]:
    """(command, [quoted output, ...]) for each line of the README's tour block."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- tour\b.*?-->\s*```sh\n(.*?)```\s*<!-- /tour -->", text, re.S)
    assert block, "README.md has no tour block between <!-- tour --> and <!-- /tour -->"
    steps = []
    for line in block.group(1).splitlines():
        command, _, comment = line.partition("  #")
        if command.strip():
            steps.append((command.strip(), re.findall(r'"([^"]+)"', comment)))
    return steps


def test_the_tour_block_is_what_this_test_expects():
    steps = tour()
    assert steps[0][0] == "cd demo"
    assert sum(len(quotes) for _, quotes in steps) >= 8  # the counts the README promises are checked
    assert not any(re.search(r"\b20\d\d-\d\d-\d\d\b", command) for command, _ in steps), "no dated slugs"


def test_the_readme_tour_runs_verbatim_in_a_fresh_demo(tmp_path, monkeypatch):
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} does not exist")  # the tour takes screenshots
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_") and name != "NEWSLETTER_NOW":
            monkeypatch.delenv(name)
    steps = tour()
    script = ["set -euo pipefail", "newsletter demo"]
    for number, (command, _) in enumerate(steps):
        script += [f"echo '{STEP}{number}'", command]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"the tour stopped:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    outputs = re.split(rf"^{STEP}\d+\n", run.stdout, flags=re.M)[1:]
    assert len(outputs) == len(steps)
    for (command, quotes), output in zip(steps, outputs, strict=True):
        for quote in quotes:
            assert quote in output, f"{command!r} should print {quote!r}, printed:\n{output[-2000:]}"
    assert len(list((tmp_path / "demo" / "outbox").glob("*.eml"))) == 4
    assert (tmp_path / "demo" / "issue.eml").stat().st_size > 50_000


def quickstart() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_the_quickstart_works_on_debians_python_and_installs_what_the_tour_uses():
    """On Debian 12's Python, a bare `pip install -e .` fails (externally managed), and without
    the browser extra the tour's `preview --screenshot` failed with 'Playwright is not installed'."""
    setup, tests = quickstart()
    assert setup.index("python3 -m venv") < setup.index("pip install") < setup.index("newsletter demo")
    assert "'.[browser]'" in setup
    run = (Path(__file__).parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert tests.replace("pip install ", "pip install -q ") in run  # CI runs the README's test command


def test_the_command_table_names_every_import_option(project):
    from newsletter.cli import module_commands

    text = README.read_text(encoding="utf-8")
    [row] = [line for line in text.splitlines() if line.startswith("| `newsletter import ")]
    options = {p.opts[0] for p in module_commands("content")["import"].params if p.opts[0].startswith("--")}
    assert options and all(option in row for option in options), options - {o for o in options if o in row}
    assert "--encoding" in next(line for line in text.splitlines() if line.startswith("| `newsletter subscribers import"))


def test_help_examples_work_on_linux(project):
    assert " open " not in project.run("demo", "--help").output
