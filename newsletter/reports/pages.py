"""The report pages as HTML, from templates a publisher may override (`templates/reports/`):
the issue report with its charts, the trend over the last issues, the advertiser's Beleg."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from newsletter import clock, dates
from newsletter.compose import render
from newsletter.config import Settings
from newsletter.reports import charts
from newsletter.reports.issue import SECTIONS, IssueReport
from newsletter.reports.stats import IssueLine

METHOD = ("Gezählt wurden Aufrufe der Links im Newsletter über Weiterleitungslinks, die für alle "
          "Empfänger gleich sind. Automatische Abrufe (Sicherheitsscanner von Mailservern, Linkvorschauen) "
          "werden getrennt gezählt und sind in keiner Klickzahl enthalten; die Zahl der Leser mit Klick wird mithilfe "
          "eines täglich wechselnden, nirgends gespeicherten Schlüssels geschätzt. Über einzelne Leser wird nichts "
          "gespeichert.")


# The Beleg's counting method, in one sentence.
METHOD_BELEG = ("Gezählt wurden Aufrufe des Anzeigenlinks über einen für alle Empfänger gleichen "
                "Weiterleitungslink, ohne automatische Abrufe durch Sicherheitsscanner und Linkvorschauen; über einzelne "
                "Leser wurde dabei nichts gespeichert.")


def environment(settings: Settings):
    env = render.environment(settings.templates_dir)
    zone = ZoneInfo(settings.publication.timezone)
    env.filters["number"] = lambda n: f"{n:,}".replace(",", ".")
    env.filters["rate"] = lambda r: "–" if r is None else f"{r:.1f}".replace(".", ",")
    env.filters["german_stamp"] = lambda s: _stamp(s, zone)
    env.globals.update(publication=settings.publication, impressum=settings.impressum, sections=SECTIONS,
                       method=METHOD, now=clock.stamp())
    return env


def issue_page(settings: Settings, report: IssueReport) -> str:
    link_rows = [(link.label, link.human, link.automated) for link in report.links]
    day_rows = [(dates.german_short(day["day"])[:6], day["human"], day["automated"]) for day in report.days]
    return render.template(environment(settings), "reports/issue.html.j2", {
        "title": f"Auswertung {report.issue.number or report.issue.slug}", "report": report,
        "link_chart": charts.bars(link_rows, title="Klicks je Link (kräftig: von Menschen, blass: automatische Abrufe)"),
        "day_chart": charts.columns(day_rows, title="Klicks je Tag nach dem Versand")})


def stats_page(settings: Settings, lines: list[IssueLine]) -> str:
    label = [line.number or line.issue_date for line in lines]
    series: list[tuple[str, list[float | None], str]] = [
        ("Zugestellt", [line.delivered for line in lines], ""),
        ("Leser mit Klick je 100 zugestellte E-Mails (geschätzt)", [line.rate if line.tracked else None for line in lines], ""),
        ("Abmeldungen", [line.unsubscribed for line in lines], ""),
        ("Rückläufer", [line.bounced for line in lines], ""),
    ]
    chart_list = [{"title": title, "svg": charts.line(list(zip(label, values, strict=True)), title=title, unit=unit)}
                  for title, values, unit in series]
    return render.template(environment(settings), "reports/stats.html.j2", {
        "title": "Entwicklung des Newsletters", "lines": lines, "charts": chart_list})


def beleg_page(settings: Settings, report: IssueReport, ad: dict, link, shot: str, placeholder: bool) -> str:
    return render.template(environment(settings), "reports/beleg.html.j2", {
        "title": f"Anzeigenbeleg {ad['advertiser'] or ad['title']}", "report": report, "ad": ad, "link": link,
        "shot": shot, "placeholder": placeholder, "method": METHOD_BELEG})


def _stamp(value: str | None, zone: ZoneInfo) -> str:
    """'3. Dezember 2026, 14:01 Uhr' in the publication's time zone: the one form of a moment on
    every report page."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value).astimezone(zone)
    return f"{dates.german_long(moment.date())}, {moment:%H:%M} Uhr"
