"""Messages: MIME pieces encoded once, per-reader messages built from them, addresses, exports."""
