"""Admin of the analytics app: registered by its sub-packages."""

from analytics.alerts import admin as alerts_admin
from analytics.dashboards import admin as dashboards_admin

__all__ = ["alerts_admin", "dashboards_admin"]
