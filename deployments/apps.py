from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "deployments"
    verbose_name = "Deployments"

    def ready(self):
        from core import releases
        from deployments.selectors import release_markers, service_names

        releases.register(
            release_markers, services=service_names
        )  # rollouts as markers on other areas' charts
