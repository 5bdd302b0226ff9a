"""Sources: imports (JSON, CSV, RSS/Atom), the configured feeds, and sanitising what they bring."""
