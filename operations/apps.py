import os

from django.apps import AppConfig
from django.conf import settings


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from operations.services import alert_defaults_ensure

        # prometheus_client picks its multiprocess file-backed values from this variable when
        # it is first imported, which the exporter does only after the apps are ready.
        settings.PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.PROMETHEUS_MULTIPROC_DIR)
        post_migrate.connect(alert_defaults_ensure, dispatch_uid="operations.alert_defaults_ensure")
