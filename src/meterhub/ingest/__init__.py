"""Ingestion: MQTT messages -> validated readings, events and status in the store."""
