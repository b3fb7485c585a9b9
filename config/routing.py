"""Websocket routes of every app, gathered in one list for the ASGI router."""

from django.urls import path

from core.consumers import WhoAmIConsumer
from deployments.routing import websocket_urlpatterns as deployments_ws

websocket_urlpatterns = [
    path("ws/whoami/", WhoAmIConsumer.as_asgi()),
    *deployments_ws,
]
