"""What was read: newsletter report ISSUE [--json|--csv|--html FILE|--ad AD --out DIR], newsletter stats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.base import IssueArg, JsonOpt, command, commands, database, fail, issue_of

app = commands()


@command(app)
def report(
    issue: IssueArg,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print one CSV row per link.")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Write the report with charts as a page to FILE.",
                                                 show_default=False)] = None,
    ad: Annotated[list[str] | None, typer.Option("--ad", help="Make the advertiser's Beleg (HTML and PDF) for this "
                                                    "ad: id or URL, repeatable, or 'all'.", show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the Beleg files.")] = Path("belege"),
    images: Annotated[bool, typer.Option("--images/--no-images", help="Fetch the ad's image for the Beleg's "
                                         "screenshot (else a grey placeholder).")] = True,
) -> None:
    """Delivery and clicks of an issue: per section and link, human and automated, per 100 delivered.

    Counts only: nobody's clicks are recorded (see [tracking] clicks). Example: newsletter report latest
    (or --html bericht.html, or --ad all --out belege/ for the advertisers' Belege)
    """
    from newsletter.reports.issue import issue_report

    if sum(bool(x) for x in (as_json, as_csv, html, ad)) > 1:
        fail("Choose one of --json, --csv, --html and --ad", 2)
    s, db = database()
    if ad:
        _belege(db, s, issue_of(db, issue), ad, out, images)
        return
    result = issue_report(db, s, issue_of(db, issue))
    if as_json:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    elif as_csv:
        typer.echo(result.as_csv(), nl=False)
    elif html:
        from newsletter.reports.pages import issue_page

        typer.echo(f"Wrote {_write(html, issue_page(s, result))}")
    else:
        for line in _issue_lines(result, s):
            typer.echo(line)


def _belege(db, s, issue, ads: list[str], out: Path, images: bool) -> None:
    from newsletter.reports.beleg import belege

    for made in belege(db, s, issue, ads, out, fetch_images=images):
        typer.echo(f"Wrote {made.html} and {made.pdf.name}  (ad {made.ad['id']}: {made.ad['advertiser'] or made.ad['title']})")
        if made.image_missing:
            typer.echo(f"Warning: the ad's image {made.ad['image']} could not be loaded - the Beleg shows a grey "
                       "placeholder; run it again when the image is reachable", err=True)


def _issue_lines(r, s) -> list[str]:
    from newsletter.delivery.schedule import local_label

    issue = r.issue
    lines = [f"Issue {issue.slug} ({issue.number or '-'}): {issue.subject}",
             f"  sent       {local_label(s, issue.sent_at) if issue.sent_at else 'not yet'}",
             f"  delivered  {r.delivered:,}   failed {r.failed:,}   deferred {r.deferred:,}   bounced {r.bounced:,}   "
             f"complaints {r.complained:,}   unsubscribed after it {r.unsubscribed:,}"]
    for reason in r.bounce_reasons:
        code = " ".join(str(x) for x in (reason["code"], reason["status"]) if x) or "no code"
        lines.append(f"  bounced    {reason['readers']:,} {reason['kind']}: {code}  {(reason['diagnostic'] or '')[:100]}")
    if not r.tracked:
        lines.append("  clicks     not counted for this issue ([tracking] clicks was off when it was composed)")
        return lines
    readers = f"about {r.readers:,} readers ({_rate(r.rate)} per 100 delivered)" if r.readers_plausible else \
        "readers not estimated (see below)"
    why = r.automated_by
    lines.append(f"  clicks     {r.human:,} human, {readers}")
    lines.append(f"  not counted  {r.automated:,} automated ({why['head']:,} HEAD requests, {why['scanner']:,} from "
                 f"scanners and link previews by their user agent, {why['burst']:,} in bursts of many links within "
                 f"seconds), {r.repeated:,} repeated by one client within an hour")
    lines += [f"  Warning: {_flag(flag)}" for flag in r.flags]
    lines += ["", f"{'section':<22}{'links':>6}{'human':>8}{'repeated':>10}{'automated':>11}"]
    lines += [f"{s.name:<22}{s.links:>6}{s.human:>8}{s.repeated:>10}{s.automated:>11}" for s in r.sections]
    lines += ["", f"{'link':<52}{'human':>7}{'unique':>8}{'per 100':>9}{'automated':>11}"]
    for link in r.links:
        label = link.label if len(link.label) <= 50 else link.label[:49] + "…"
        odd = "  (not plausible)" if link.implausible else ""
        lines.append(f"{label:<52}{link.human:>7}{link.unique:>8}{_rate(link.rate):>9}{link.automated:>11}{odd}")
    return lines


def _flag(flag: dict) -> str:
    if flag["kind"] == "readers":
        return (f"about {flag['estimated']:,} readers estimated for {flag['delivered']:,} delivered is not plausible "
                "(automated requests that passed for people); the report shows at most the delivered count")
    return (f"{flag['links']} link(s) with more human clicks than the {flag['delivered']:,} messages delivered: not "
            "plausible, their rate is not shown")


@command(app)
def stats(
    last: Annotated[int, typer.Option("--last", min=1, max=1000, help="How many of the latest sent issues.")] = 12,
    as_json: JsonOpt = False,
    html: Annotated[Path | None, typer.Option("--html", help="Write the table and trend charts as a page to FILE.",
                                                 show_default=False)] = None,
) -> None:
    """One line per sent issue with the trend: delivered, unsubscribes, bounces, click rate.

    Example: newsletter stats --last 12 (or --html entwicklung.html)
    """
    from newsletter.reports.charts import sparkline
    from newsletter.reports.stats import stats as issue_stats

    s, db = database()
    lines = issue_stats(db, s, last)
    if as_json:
        typer.echo(json.dumps([line.as_dict() for line in lines], ensure_ascii=False, indent=2))
        return
    if html:
        from newsletter.reports.pages import stats_page

        typer.echo(f"Wrote {_write(html, stats_page(s, lines))}")
        return
    if not lines:
        typer.echo("No sent issues yet - 'newsletter send' one first.", err=True)
        return
    typer.echo(f"{'issue':<14}{'date':<12}{'delivered':>10}{'unsubscr.':>10}{'bounced':>9}{'readers':>9}{'per 100':>9}")
    for line in lines:
        readers = f"{line.readers:,}" if line.tracked else "-"
        typer.echo(f"{(line.number or line.slug)[:13]:<14}{line.issue_date:<12}{line.delivered:>10,}"
                   f"{line.unsubscribed:>10,}{line.bounced:>9,}{readers:>9}{_rate(line.rate if line.tracked else None):>9}")
    typer.echo("")
    typer.echo(f"trend (oldest to newest)  delivered {sparkline([line.delivered for line in lines])}  "
               f"unsubscribes {sparkline([line.unsubscribed for line in lines])}  "
               f"bounces {sparkline([line.bounced for line in lines])}  "
               f"click rate {sparkline([line.rate if line.tracked else None for line in lines])}")


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1f}"


def _write(path: Path, text: str) -> Path:
    from newsletter import files
    from newsletter.errors import InputError

    try:
        return files.atomic_write(path, text.encode("utf-8"))
    except OSError as e:
        raise InputError(f"Cannot write {path}: {e.strerror} - choose another file") from None
