"""Alerts on product metrics: a threshold or a relative change on any trend series."""
