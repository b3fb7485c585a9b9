"""The outbox provider: records what would be sent and sends nothing (the local default)."""

import json

from devices.providers import Outcome, Provider, PushMessage, SendResult


class OutboxProvider(Provider):
    name = "outbox"

    def send_one(self, device, message: PushMessage) -> SendResult:
        return SendResult(Outcome.SENT, None, self._record(device, message))

    def send_many(self, items: list[tuple]) -> list[SendResult]:
        # No network: no thread pool, just the record the delivery log keeps.
        return [self.send_one(d, m) for d, m in items]

    @staticmethod
    def _record(device, message: PushMessage) -> str:
        return json.dumps(
            {"outbox": device.platform, "title": message.title, "body": message.body},
            ensure_ascii=False,
        )
