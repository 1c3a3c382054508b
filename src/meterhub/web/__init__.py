"""The web app: JSON API under /api/v1 and the operator's meter page."""
