from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self):
        from analytics.cohorts.selectors import audience_members, broadcast_opens, cohort_choices
        from core import audiences

        # push broadcasts (devices) reach saved cohorts and read their opens through core
        audiences.register(members=audience_members, choices=cohort_choices, opens=broadcast_opens)
