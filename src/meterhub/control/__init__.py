"""Control: commands to meters with acknowledgements, supply thresholds, OTA campaigns.

See docs/control.md.
"""
