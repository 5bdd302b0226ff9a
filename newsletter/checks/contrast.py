"""Text contrast, measured in the browser: every visible text of the issue against WCAG AA
(4.5:1, or 3:1 for large text: 24 px, or 18.66 px bold), in light and in dark mode.

The colours are the ones Chromium resolves after applying the mail's CSS (and its
`prefers-color-scheme: dark` rules in the dark run), not guesses from the CSS text: a text's
background is the first opaque background behind it, with translucent layers blended in, and
the page's own canvas colour under all of them. Texts over a background image are not
judged (the image decides). Without Chromium the check says how to install it and is skipped.
"""

from __future__ import annotations

from newsletter.browser import BrowserMissing, chromium, open_page
from newsletter.checks.result import CheckResult, fail, listing, ok, warn

SCHEMES = ("light", "dark")

MEASURE = r"""() => {
  const parse = c => {
    const m = /rgba?\(([^)]*)\)/.exec(c || "");
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, under) => {
    const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + under[i] * (1 - a)).concat([1]);
  };
  const probe = document.createElement("div");
  probe.style.cssText = "background-color: Canvas; position: absolute; width: 0; height: 0";
  document.documentElement.appendChild(probe);
  const canvas = parse(getComputedStyle(probe).backgroundColor) || [255, 255, 255, 1];
  probe.remove();
  const background = el => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.backgroundImage && s.backgroundImage !== "none") return null;
      const c = parse(s.backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    return layers.reverse().reduce((under, top) => over(top, under), canvas);
  };
  const luminance = c => {
    const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const hex = c => "#" + c.slice(0, 3).map(v => Math.round(v).toString(16).padStart(2, "0")).join("");
  const seen = new Set(), out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    const text = node.textContent.replace(/\s+/g, " ").trim();
    if (!text || !el || seen.has(el)) continue;
    seen.add(el);
    if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true, checkOpacity: true,
                             checkVisibilityCSS: true})) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const box = range.getBoundingClientRect();
    if (box.width < 1 || box.height < 1) continue;
    const s = getComputedStyle(el);
    const bg = background(el);
    const fg = parse(s.color);
    if (!bg || !fg) continue;
    const color = over(fg, bg);
    const [hi, lo] = [luminance(color), luminance(bg)].sort((a, b) => b - a);
    const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
    const large = size >= 24 || (size >= 18.66 && bold);
    out.push({text: text.slice(0, 60), fg: hex(color), bg: hex(bg), ratio: (hi + 0.05) / (lo + 0.05), need: large ? 3 : 4.5});
  }
  return out;
}"""


def measure(html: str) -> dict[str, list[dict]]:
    """Per colour scheme: each visible text element with its colours, ratio and required ratio."""
    found = {}
    with chromium() as browser:
        for scheme in SCHEMES:
            page = open_page(browser, html, scheme=scheme)
            try:
                found[scheme] = page.evaluate(MEASURE)
            finally:
                page.context.close()
    return found


def contrast_check(html: str) -> list[CheckResult]:
    """One result per colour scheme: which texts miss WCAG AA, with both colours."""
    try:
        found = measure(html)
    except BrowserMissing as e:
        return [warn("contrast", f"not checked: {e}")]
    results = []
    for scheme in SCHEMES:
        texts = found[scheme]
        low = [t for t in texts if t["ratio"] < t["need"] - 0.005]
        name = f"contrast.{scheme}"
        if low:
            shown = [f"{t['text']!r} {t['fg']} on {t['bg']} is {t['ratio']:.2f}:1 (needs {t['need']:g}:1)" for t in low]
            results.append(fail(name, f"{len(low)} texts below WCAG AA in {scheme} mode: {listing(shown)} - "
                                "give them darker (light mode) or lighter (dark mode) colours in the template"))
        else:
            lowest = min((t["ratio"] for t in texts), default=21.0)
            results.append(ok(name, f"{len(texts)} texts, all at WCAG AA or better (lowest {lowest:.2f}:1)"))
    return results
