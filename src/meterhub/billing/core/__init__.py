"""Billing's pure core: plain values in, plain values out; no database, settings or I/O."""
