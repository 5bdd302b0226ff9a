"""The `newsletter` command: one module per noun group on top of `base` (the app, shared
options and the one-line error handling). Importing this package registers every command."""

from newsletter.cli import check, content, issues, mail, preview, send, serve, subscribers  # noqa: F401
from newsletter.cli.base import app, main

__all__ = ["app", "main"]
