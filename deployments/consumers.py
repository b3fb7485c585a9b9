"""Websockets of the deployments area: they only relay the engine's group messages.

`/ws/rollouts/<id>/` sends a snapshot on connect, then status, sample and event messages of
that rollout; `/ws/rollouts/` sends status changes of every rollout (the Services page). Group messages are
relays (`core.consumers.relay_envelope`): JSON text encoded once by the publisher.
"""

from channels.db import database_sync_to_async

from core.consumers import StaffConsumer
from deployments.services import LIST_GROUP, rollout_group


class RolloutConsumer(StaffConsumer):
    """Any staff role may watch; anonymous callers are refused (close 4403)."""

    async def on_accepted(self) -> None:
        self.group = rollout_group(self.scope["url_route"]["kwargs"]["rollout_id"])
        await self.channel_layer.group_add(self.group, self.channel_name)
        snapshot = await database_sync_to_async(self.snapshot)()
        if snapshot is None:
            await self.send_json({"type": "error", "detail": "no such rollout"})
            await self.close(code=4404)
            return
        await self.send_json(snapshot)

    def snapshot(self) -> dict | None:
        from deployments.models import Rollout
        from deployments.selectors import event_dict, rollout_samples
        from deployments.services import rollout_status_message

        rollout = (
            Rollout.objects.select_related("service")
            .filter(pk=self.scope["url_route"]["kwargs"]["rollout_id"])
            .first()
        )
        if rollout is None:
            return None
        return {
            "type": "snapshot",
            "status": rollout_status_message(rollout),
            "steps": rollout.steps,
            "analysis": rollout.analysis,
            "samples": rollout_samples(rollout),
            "events": [event_dict(e) for e in rollout.events.all()],
        }

    async def disconnect(self, code) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)


class RolloutListConsumer(StaffConsumer):
    async def on_accepted(self) -> None:
        self.group = LIST_GROUP
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_json({"type": "hello"})

    async def disconnect(self, code) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
