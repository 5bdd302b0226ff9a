"""Composing an issue: selection, rendering once (Jinja2 → MJML → HTML → inlined CSS), links, personal parts."""
