"""Analytics: filtering, theft detection, outages and overload, forecasting, tips.

See docs/analytics.md.
"""
