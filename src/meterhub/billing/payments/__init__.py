"""Payments: money in (counter, gateway, prepaid top-up) recorded once with its ledger entry,
allocations and receipt (``record``); the ledger as the store keeps it (``ledger``); late fees
and prompt-payment rebates posted on it (``terms``)."""
