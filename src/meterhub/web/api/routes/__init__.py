"""One router per area; a router's functions are the routes, their inputs come from ``deps``."""
