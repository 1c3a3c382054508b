"""Device identity and broker authorisation: one credential per meter, broker password and ACL.

``credentials`` and ``mosquitto`` are pure (values in, text out); ``registry`` is the adapter that
reads and writes the ``meters`` table and the broker's files; ``command`` is the CLI.
"""
