"""meterhub: an open-source smart-metering platform (head-end, meter data management, billing)."""

__version__ = "0.1.0"
