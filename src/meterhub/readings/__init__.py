"""Readings: the reading model, validation and VEE rules, interval derivation. Pure: no I/O."""
