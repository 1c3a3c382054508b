"""Billing, in rooms (docs/architecture.md, docs/billing.md):

- ``core``: pure pricing and rules (tariffs, determinants, bill calculation, prepaid pricing,
  late fees, the ledger's arithmetic); no database, settings or I/O;
- ``jobs``: what runs by the calendar or in bulk (bill runs, the daily pass, payment terms,
  prepaid accrual, delivery);
- ``payments``: money in, the ledger in the store, late fees and rebates posted;
- ``documents``: the bill as HTML and PDF;
- ``gateways``: payment gateway adapters;
- ``repository``: the store's rows as billing's types; ``quote``: a usage CSV priced;
- ``service``: the API the command line, the web app and other capabilities call.

The ``*command.py`` modules are the command line's and move to ``meterhub.cli``.
"""
