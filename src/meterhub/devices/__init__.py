"""Device identity and broker authorisation: one credential per meter, confined by the broker.

Pure: ``credentials`` (secrets and their hashes), ``mosquitto`` (ids, mosquitto.conf),
``dynsec`` (the dynamic-security plugin's state and $CONTROL commands), ``meter_rules`` and
``meter_csv`` (what a registration must satisfy). Adapters: ``registry`` (the ``meters`` table),
``broker_state`` (the state file, restarts), ``control`` ($CONTROL over MQTT), ``importer`` (bulk
registration), ``files``. ``command`` is the CLI.
"""
