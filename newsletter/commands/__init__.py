"""CLI commands, one module per noun group; each body resolves inputs, calls the core, prints."""
