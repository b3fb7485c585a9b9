"""Rollout webhooks with Flagger's semantics: the engine POSTs the rollout's context to each
enabled hook of a type and reads the answer (2xx means go).

- `pre-rollout`: before any traffic reaches the canary; a failure counts toward the failure
  limit, reaching it rolls back.
- `rollout`: every analysis interval before the metrics (a load test, a smoke check); a
  failure counts as a failed sample.
- `confirm-promotion`: a gate before automatic promotion; any answer but 2xx waits and re-asks
  every interval (a person's Promote is the confirmation and skips it).
- `post-rollout`: after promotion or rollback, from a task; the result is only logged.
- `rollback`: asked every interval; a 2xx answer rolls the canary back.

Every call goes through the outbound guard (`core.outbound`): the URL is user-aimed.
"""

import time
from dataclasses import asdict, dataclass

from django.utils import timezone

from core import outbound
from deployments.models import HookType, Rollout, RolloutHook

# Flagger's phase names, which hook receivers such as flagger-loadtester and flagger-k6-webhook
# read, by hook type (post-rollout sends Succeeded or Failed).
PHASES = {
    HookType.PRE_ROLLOUT: "Progressing",
    HookType.ROLLOUT: "Progressing",
    HookType.CONFIRM_PROMOTION: "Promoting",
    HookType.ROLLBACK: "Progressing",
}
RETRY_PAUSE_SECONDS = 0.5


@dataclass(frozen=True)
class HookResult:
    name: str
    type: str
    ok: bool
    status: int | None
    detail: str
    attempts: int
    ms: float

    def summary(self) -> str:
        answer = f"HTTP {self.status}" if self.status is not None else self.detail
        if self.status is not None and not self.ok and self.detail:
            answer += f" ({self.detail})"
        return f"{self.type} hook {self.name}: {answer}"


def hook_payload(rollout: Rollout, hook: RolloutHook, *, phase: str | None = None) -> dict:
    """Flagger's webhook body (name, namespace, phase, metadata) plus the rollout's context."""
    service = rollout.service
    return {
        "name": service.name,
        "namespace": service.namespace,
        "phase": phase or PHASES.get(hook.type, "Progressing"),
        "type": hook.type,
        "checksum": f"{rollout.pk}-{rollout.image_tag}",
        "rollout_id": rollout.pk,
        "image_tag": rollout.image_tag,
        "from_tag": rollout.from_tag,
        "step": rollout.current_step,
        "weight": rollout.current_weight,
        "metadata": {str(k): str(v) for k, v in (hook.metadata or {}).items()},
    }


def hook_call(hook: RolloutHook, payload: dict) -> HookResult:
    """POST once, and again after a connection error or a 5xx while retries are left."""
    started = time.monotonic()
    attempts = 1 + min(int(hook.retries), 3)
    status, detail = None, ""
    for attempt in range(1, attempts + 1):
        try:
            response = outbound.post(
                hook.url, json=payload, timeout=min(float(hook.timeout_seconds), 30.0)
            )
        except outbound.OutboundRefused as exc:
            # The guard refused the URL itself (scheme, host, address): retrying cannot help.
            return HookResult(hook.name, hook.type, False, None, str(exc), attempt, _ms(started))
        except outbound.OutboundError as exc:
            status, detail = None, str(exc)
        else:
            status, detail = response.status, response.reason
            if response.ok or status < 500:
                return HookResult(
                    hook.name, hook.type, response.ok, status, detail, attempt, _ms(started)
                )
        if attempt < attempts:
            time.sleep(RETRY_PAUSE_SECONDS * attempt)
    return HookResult(hook.name, hook.type, False, status, detail, attempts, _ms(started))


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def hooks_run(rollout: Rollout, hook_type: str, *, phase: str | None = None) -> list[HookResult]:
    """Call every enabled hook of a type in name order; remember each answer on the rollout
    (`hook_state`, shown on its page). The caller saves the rollout."""
    results = []
    for hook in rollout.service.hooks.filter(type=hook_type, enabled=True).order_by("name"):
        result = hook_call(hook, hook_payload(rollout, hook, phase=phase))
        rollout.hook_state = {
            **rollout.hook_state,
            hook.name: {**asdict(result), "at": timezone.now().isoformat()},
        }
        results.append(result)
    return results


def has_hooks(rollout: Rollout, hook_type: str) -> bool:
    return rollout.service.hooks.filter(type=hook_type, enabled=True).exists()
