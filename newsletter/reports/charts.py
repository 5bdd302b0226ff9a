"""Charts as inline SVG (no scripts, no external assets, printable) and as terminal sparklines.

Every label is escaped; sizes are fixed, so a chart looks the same on screen and on paper.
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

INK, HUMAN, AUTOMATED, GRID, MUTED = "#1f2933", "#1d4f91", "#b8c2cc", "#d9dee4", "#4f5a64"
FONT = "font-family=\"Helvetica, Arial, sans-serif\""
SPARKS = "▁▂▃▄▅▆▇█"


def bars(rows: list[tuple[str, int, int]], *, title: str, width: int = 640) -> Markup:
    """Horizontal bars, one per row (label, human, automated): human solid, automated beside it, pale."""
    if not rows:
        return Markup("")
    label_w, bar_w, row_h = 250, width - 250 - 70, 22
    top = max(max(h + a for _, h, a in rows), 1)
    height = 28 + row_h * len(rows)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for i, (label, human, automated) in enumerate(rows):
        y = 20 + i * row_h
        short = label if len(label) <= 38 else label[:37] + "…"
        h_w, a_w = bar_w * human / top, bar_w * automated / top
        parts.append(f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end" font-size="12" {FONT} fill="{INK}">'
                     f'{escape(short)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{h_w:.1f}" height="14" fill="{HUMAN}"/>')
        parts.append(f'<rect x="{label_w + h_w:.1f}" y="{y + 3}" width="{a_w:.1f}" height="14" fill="{AUTOMATED}"/>')
        parts.append(f'<text x="{label_w + h_w + a_w + 6:.1f}" y="{y + 14}" font-size="12" {FONT} fill="{INK}">'
                     f'{human}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def columns(rows: list[tuple[str, int, int]], *, title: str, width: int = 640, height: int = 200) -> Markup:
    """Vertical bars (label, human, automated) with human at the bottom and automated stacked on
    top; each bar says both numbers ("7", and "+10" in grey above it), so no figure on the chart
    mixes the two."""
    if not rows:
        return Markup("")
    base, left, gap = height - 30, 12, 8
    col_w = (width - left - gap * len(rows)) / len(rows)
    top = max(max(h + a for _, h, a in rows), 1)
    scale = (base - 34) / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<line x1="{left}" y1="{base}" x2="{width}" y2="{base}" stroke="{GRID}"/>']
    for i, (label, human, automated) in enumerate(rows):
        x = left + gap / 2 + i * (col_w + gap)
        h_h, a_h = human * scale, automated * scale
        middle = x + col_w / 2
        parts.append(f'<rect x="{x:.1f}" y="{base - h_h:.1f}" width="{col_w:.1f}" height="{h_h:.1f}" fill="{HUMAN}"/>')
        parts.append(f'<rect x="{x:.1f}" y="{base - h_h - a_h:.1f}" width="{col_w:.1f}" height="{a_h:.1f}" '
                     f'fill="{AUTOMATED}"/>')
        parts.append(f'<text x="{middle:.1f}" y="{base - h_h - a_h - 4:.1f}" text-anchor="middle" '
                     f'font-size="11" {FONT} fill="{INK}">{human}</text>')
        if automated:
            parts.append(f'<text x="{middle:.1f}" y="{base - h_h - a_h - 17:.1f}" text-anchor="middle" '
                         f'font-size="10" {FONT} fill="{MUTED}">+{automated}</text>')
        parts.append(f'<text x="{middle:.1f}" y="{base + 16}" text-anchor="middle" font-size="11" '
                     f'{FONT} fill="{INK}">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def line(points: list[tuple[str, float | None]], *, title: str, width: int = 640, height: int = 160,
         unit: str = "") -> Markup:
    """One series over the issues (label, value); a missing value leaves a gap."""
    values = [v for _, v in points if v is not None]
    if not values:
        return Markup("")
    base, left, right = height - 30, 50, 20
    top = max(max(values), 1e-9)
    step = (width - left - right) / max(len(points) - 1, 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="{GRID}"/>',
             f'<text x="{left - 6}" y="24" text-anchor="end" font-size="11" {FONT} fill="{INK}">'
             f'{_number(top)}{unit}</text>']
    path, pen = [], "M"
    for i, (label, value) in enumerate(points):
        x = left + i * step
        if value is None:
            pen = "M"
            continue
        y = base - (base - 20) * value / top
        path.append(f"{pen}{x:.1f},{y:.1f}")
        pen = "L"
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{HUMAN}"><title>{escape(label)}: '
                     f'{_number(value)}{unit}</title></circle>')
        parts.append(f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle" font-size="10" {FONT} '
                     f'fill="{INK}">{escape(label)}</text>')
    parts.insert(3, f'<path d="{" ".join(path)}" fill="none" stroke="{HUMAN}" stroke-width="2"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline(values: list[float | None]) -> str:
    """▁▃▅█ for the terminal; a space where there is no value."""
    present = [v for v in values if v is not None]
    if not present:
        return ""
    low, high = min(present), max(present)
    span = (high - low) or 1
    return "".join(" " if v is None else SPARKS[min(len(SPARKS) - 1, int((v - low) / span * (len(SPARKS) - 1) + 0.5))]
                   for v in values)


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or float(value).is_integer() else f"{value:.1f}"
