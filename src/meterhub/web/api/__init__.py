"""The HTTP surface: ``routes`` holds one router per area; ``main.api_router`` gathers /api/v1."""
