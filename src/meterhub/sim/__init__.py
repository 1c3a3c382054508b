"""The meter fleet simulator: a pure engine that yields MQTT publications, and thin adapters."""
