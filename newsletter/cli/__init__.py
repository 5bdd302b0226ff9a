"""The `newsletter` command: one module per noun group on top of `base` (the app, shared
options and the one-line error handling). Importing this package registers every command;
each command imports the core it needs only when it runs."""

from newsletter.cli import content, issues, check, send, web, subscribers, bounces  # noqa: F401, I001 (help lists them in this order)
from newsletter.cli.base import app, main

__all__ = ["app", "main"]
