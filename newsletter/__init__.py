"""newsletter: an editorial email newsletter, composed from a SQLite store and sent over SMTP."""

__version__ = "0.1.0"
