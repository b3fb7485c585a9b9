"""Websocket routes of every app, gathered in one list for the ASGI router."""

from django.urls import path

from deployments.routing import websocket_urlpatterns as deployments_ws
from platform_site.consumers import WhoAmIConsumer

websocket_urlpatterns = [
    path("ws/whoami/", WhoAmIConsumer.as_asgi()),
    *deployments_ws,
]
