"""Shared websocket pieces: the permission check every consumer uses, and the relay of
group messages to the browser."""

import json

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.serializers.json import DjangoJSONEncoder

from core.roles import ws_user_has_role

RELAY = "relay.text"


def relay_envelope(message: dict) -> dict:
    """A channel-layer message whose JSON text every consumer of a group sends as it is.

    The text is encoded once by the publisher, not once per viewer."""
    return {"type": RELAY, "text": json.dumps(message, cls=DjangoJSONEncoder)}


class StaffConsumer(AsyncJsonWebsocketConsumer):
    """A consumer that refuses anonymous users and users without one of `roles`."""

    roles: tuple[str, ...] = ()  # empty: any staff role

    async def dispatch(self, message: dict) -> None:
        # A relay touches no database, so it skips the hop to a thread that Channels makes before
        # every handler to close stale connections: with 200 viewers that hop, taken 200 times
        # per message through one thread, was most of the delivery time.
        if message["type"] == RELAY:
            await self.send(text_data=message["text"])
            return
        await super().dispatch(message)

    async def connect(self) -> None:
        if not await ws_user_has_role(self.scope.get("user"), *self.roles):
            await self.close(code=4403)
            return
        await self.accept()
        await self.on_accepted()

    async def on_accepted(self) -> None:
        pass


class WhoAmIConsumer(StaffConsumer):
    """Answers with the connected user's name and roles; used by the layout and tests."""

    async def on_accepted(self) -> None:
        from core.roles import user_roles_async

        user = self.scope["user"]
        await self.send_json({"username": user.username, "roles": await user_roles_async(user)})
