"""Shared websocket pieces: the permission check every consumer uses."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from platform_site.roles import ws_user_has_role


class StaffConsumer(AsyncJsonWebsocketConsumer):
    """A consumer that refuses anonymous users and users without one of `roles`."""

    roles: tuple[str, ...] = ()  # empty: any staff role

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
        from platform_site.roles import user_roles_async

        user = self.scope["user"]
        await self.send_json({"username": user.username, "roles": await user_roles_async(user)})
