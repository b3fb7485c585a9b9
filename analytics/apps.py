from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self):
        from analytics.cohorts.selectors import audience_members, broadcast_opens, cohort_choices
        from analytics.store import StoreError, store
        from analytics.store.bulk import rows_insert
        from core import audiences, event_store

        # push broadcasts (devices) reach saved cohorts and read their opens through core
        audiences.register(members=audience_members, choices=cohort_choices, opens=broadcast_opens)
        # deployments' product metrics and its simulated cluster's events reach the store
        event_store.register(
            query=lambda sql, params, **options: store().query(sql, params, **options),
            insert_events=lambda rows: rows_insert(table="events", rows=rows),
            errors=(StoreError,),
        )
