from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "deployments"
    verbose_name = "Deployments"

    def ready(self):
        from core import chat, releases
        from deployments.notify import chat_destinations, chat_send
        from deployments.selectors import release_markers, service_names

        releases.register(
            release_markers, services=service_names
        )  # rollouts as markers on other areas' charts
        # other rooms' alerts (analytics) post to chat through the alert providers
        chat.register(destinations=chat_destinations, send=chat_send)
