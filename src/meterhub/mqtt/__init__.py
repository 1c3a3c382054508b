"""The MQTT adapter every capability shares: broker URLs (``urls``) and what a PUBACK's reason
code means to a sender (``puback``). Which client library a capability drives stays its own."""

from meterhub.mqtt.urls import BrokerAddress, parse_broker_url

__all__ = ["BrokerAddress", "parse_broker_url"]
