"""Admin of the analytics app: registered by its sub-packages."""

from analytics.dashboards import admin as dashboards_admin

__all__ = ["dashboards_admin"]
