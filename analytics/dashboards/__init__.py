"""Dashboards: named, shared boards of pinned analyses (any registry analysis with its parameters)."""
