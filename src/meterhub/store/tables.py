"""Every table of every capability, on one MetaData: what migrations and schema tests compare.

Capabilities define their tables in their own ``store/schema_<capability>.py`` on
``schema.metadata``; importing them here registers them.
"""

from __future__ import annotations

from meterhub.store import (
    schema,
    schema_billing,  # noqa: F401
    schema_delivery,  # noqa: F401
    schema_payments,  # noqa: F401
)
from meterhub.store.schema import metadata

__all__ = ["metadata", "schema"]
