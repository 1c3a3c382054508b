"""Consumers: the utility's customer accounts. ``service`` is what the CLI (and later the web)
calls; ``accounts`` holds the pure checks."""
