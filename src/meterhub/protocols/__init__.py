"""Protocols: bytes as a meter sends them -> readings. One module per format, same small surface."""
