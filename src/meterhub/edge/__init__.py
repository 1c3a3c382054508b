"""The edge gateway: read a local meter, parse, aggregate, spool to disk, publish on the contract.

``meterhub edge`` is a pipeline of small stages joined by asyncio queues (see ``gateway``):
source (bytes) -> framing -> parse -> aggregate -> spool (SQLite) -> uplink (MQTT).
"""
