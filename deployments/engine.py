"""The rollout engine: one idempotent tick at a time, from the state saved in the database.

A tick locks the rollout row, compares desired with actual state in the cluster, makes at
most one move (scale the canary, shift traffic, sample and judge, promote, roll back), saves,
publishes and plans the next tick. A worker killed at any point rolls its transaction back;
the next tick (retried, or re-enqueued by the beat safety net) starts again from saved state.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from deployments.cluster import ClusterUnavailable, canary_name, cluster_backend, stable_name
from deployments.hooks import has_hooks, hooks_run
from deployments.judge import overall
from deployments.matching import describe
from deployments.metrics import metrics_backend
from deployments.metrics.base import METRICS
from deployments.metrics.templates import FAIL, INCONCLUSIVE, PASS
from deployments.models import HookType, MetricSample, Phase, Rollout, RolloutStatus, Version
from deployments.services import (
    rollout_event,
    rollout_post_hooks_schedule,
    rollout_publish,
    rollout_schedule,
    rollout_status_message,
    sample_message,
)

log = logging.getLogger(__name__)
CONTINUE = object()  # a hook outcome that lets the analysis go on to the metrics


def rollout_advance(
    *, rollout_id: int, token: int | None = None, cluster=None, metrics=None
) -> None:
    """Run one tick of a rollout. `token` is the plan's token; None means "now, regardless"."""
    try:
        with transaction.atomic():
            rollout = (
                Rollout.objects.select_for_update().select_related("service").get(pk=rollout_id)
            )
            if rollout.is_finished or (token is not None and token != rollout.tick_seq):
                return  # finished, or a stale tick whose plan was replaced
            tick = Tick(rollout, cluster or cluster_backend(), metrics or metrics_backend())
            delay = tick.run()
            rollout_schedule(rollout=rollout, delay=delay)
            rollout.save()
            rollout_publish(rollout_id=rollout.pk, messages=[rollout_status_message(rollout)])
    except (ClusterUnavailable, DatabaseError):
        raise  # may pass: the task retries with backoff, the safety net after that
    except Rollout.DoesNotExist:
        return
    except Exception as exc:
        log.exception("rollout %s: tick failed", rollout_id)
        rollout_fail(rollout_id=rollout_id, error=f"{type(exc).__name__}: {exc}")


@transaction.atomic
def rollout_fail(*, rollout_id: int, error: str) -> None:
    """After an unexpected error: plan a rollback that ends in `failed` (retried if it fails)."""
    rollout = Rollout.objects.select_for_update().select_related("service").get(pk=rollout_id)
    if rollout.is_finished:
        return
    if rollout.phase == Phase.ROLLBACK:
        rollout_event(rollout=rollout, kind="rollback_retry", message=f"rollback failed: {error}")
        delay = settings.ROLLOUT_POLL_SECONDS * 5
    else:
        rollout.phase = Phase.ROLLBACK
        rollout.final_status = RolloutStatus.FAILED
        rollout.reason = f"unexpected error: {error}"
        rollout_event(rollout=rollout, kind="error", message=rollout.reason)
        delay = 0
    rollout_schedule(rollout=rollout, delay=delay)
    rollout.save()
    rollout_publish(rollout_id=rollout.pk, messages=[rollout_status_message(rollout)])


class Tick:
    def __init__(self, rollout: Rollout, cluster, metrics):
        self.rollout = rollout
        self.service = rollout.service
        self.cluster = cluster
        self.metrics = metrics
        self.now = timezone.now()
        self.by = rollout.started_by_label or "platform"

    @property
    def canary_image(self) -> str:
        return self.service.image_for(self.rollout.image_tag)

    def run(self) -> float | None:
        """One move; returns seconds until the next tick (None: wait for a person)."""
        rollout = self.rollout
        if rollout.abort_requested and rollout.phase != Phase.ROLLBACK:
            return self.start_rollback(RolloutStatus.ABORTED, rollout.reason or "aborted")
        if rollout.phase == Phase.ROLLBACK:
            return self.rollback()
        if rollout.status == RolloutStatus.PENDING:
            return self.start()
        if rollout.status == RolloutStatus.PAUSED:
            if rollout.pause_until is None:
                return None
            if self.now < rollout.pause_until:
                return (rollout.pause_until - self.now).total_seconds()
            rollout.status, rollout.pause_until, rollout.reason = (
                RolloutStatus.PROGRESSING,
                None,
                "",
            )
            self.transition("pause_end", "pause over: continuing")
        if rollout.promote_requested and rollout.phase != Phase.PROMOTE:
            self.enter(Phase.PROMOTE)
        if rollout.phase == Phase.SCALE:
            return self.scale()
        if rollout.phase == Phase.ANALYZE:
            return self.analyze()
        if rollout.phase == Phase.PROMOTE:
            return self.promote()
        raise RuntimeError(
            f"rollout {rollout.pk}: no move for phase {rollout.phase} in status {rollout.status}"
        )

    # helpers
    def transition(self, kind: str, message: str, **data) -> None:
        rollout_event(rollout=self.rollout, kind=kind, message=message, data=data)

    def enter(self, phase: str) -> None:
        self.rollout.phase = phase
        self.rollout.phase_started_at = self.now

    def interval(self) -> float:
        return float(self.rollout.analysis["interval_seconds"])

    # moves
    def start(self) -> float | None:
        rollout = self.rollout
        self.cluster.ensure_routing(self.service)
        stable = self.cluster.ensure_stable(self.service)
        self.cluster.set_canary_weight(self.service, 0)
        results = hooks_run(rollout, HookType.PRE_ROLLOUT)
        failed = [r for r in results if not r.ok]
        if failed:
            return self.hook_failed(failed, before_start=True)
        if results:
            self.transition(
                "hooks_passed",
                "pre-rollout hooks passed: " + ", ".join(r.name for r in results),
            )
        rollout.status, rollout.started_at, rollout.current_step, rollout.current_weight = (
            RolloutStatus.PROGRESSING,
            self.now,
            0,
            0,
        )
        if rollout.reverts_id is not None:
            return self.fast_rollback()
        self.enter(Phase.SCALE)
        self.transition(
            "progressing",
            f"started: stable runs {stable.image if stable else self.service.stable_image}",
        )
        return 0

    def fast_rollback(self) -> float:
        """Back to the version a promotion replaced moments ago: it served all traffic then, so
        no canary, steps, analysis or confirm gate; the stable Deployment goes straight back."""
        rollout = self.rollout
        rollout.promotion_confirmed = True
        rollout.current_step = len(rollout.steps) - 1
        self.enter(Phase.PROMOTE)
        self.transition(
            "fast_rollback",
            f"fast rollback: {rollout.image_tag} was stable until rollout #{rollout.reverts_id} "
            "promoted its replacement; steps and analysis skipped",
            reverts=rollout.reverts_id,
        )
        return 0

    def scale(self) -> float:
        rollout = self.rollout
        weight = int(rollout.step["weight"])
        replicas = rollout.canary_replicas_for(weight)
        name = canary_name(self.service.name)
        state = self.cluster.deployment_state(self.service.namespace, name)
        if state is None or state.image != self.canary_image or state.replicas != replicas:
            self.cluster.apply_canary(
                self.service,
                image=self.canary_image,
                replicas=replicas,
                rollout_id=rollout.pk,
                by=self.by,
            )
            state = self.cluster.deployment_state(self.service.namespace, name)
        if state is not None and state.is_ready(image=self.canary_image, replicas=replicas):
            # Weight moves only once the canary reports its replicas ready.
            self.cluster.set_canary_weight(self.service, weight, match=rollout.match)
            rollout.current_weight = weight
            rollout.step_started_at = self.now
            rollout.samples_in_step = rollout.consecutive_failures = 0
            rollout.last_sample_at = None
            self.enter(Phase.ANALYZE)
            matching = f" + requests where {describe(rollout.match)}" if rollout.match else ""
            self.transition(
                "step",
                f"step {rollout.current_step + 1}/{len(rollout.steps)}: canary at {weight}% traffic"
                f"{matching} ({replicas} pod{'s' if replicas != 1 else ''} ready)",
                step=rollout.current_step,
                weight=weight,
                replicas=replicas,
            )
            return self.interval()
        waited = (self.now - (rollout.phase_started_at or self.now)).total_seconds()
        if waited > settings.ROLLOUT_READY_TIMEOUT_SECONDS:
            return self.start_rollback(
                RolloutStatus.ROLLED_BACK,
                f"canary not ready after {waited:.0f} s ({state.ready_replicas if state else 0}/{replicas} pods)",
            )
        return settings.ROLLOUT_POLL_SECONDS

    def analyze(self) -> float | None:
        rollout = self.rollout
        due = (rollout.last_sample_at or rollout.step_started_at or self.now) + timedelta(
            seconds=self.interval()
        )
        if self.now < due - timedelta(milliseconds=50):
            return (due - self.now).total_seconds()
        outcome = self.analysis_hooks()
        if outcome is not CONTINUE:
            return outcome
        checks = self.measure()
        rollout.last_sample_at = self.now
        deciding = [c for c in checks if c["measured"] and not c["dry_run"]]
        failed = [c for c in deciding if c["verdict"] == FAIL]
        unanswered = [c for c in deciding if c["verdict"] == INCONCLUSIVE]
        out_of_failures = [c for c in failed if c["failures"] >= c["failure_limit"]]
        if out_of_failures:
            names = ", ".join(c["metric"] for c in out_of_failures)
            why = "; ".join(c["why"] for c in out_of_failures)
            return self.start_rollback(
                RolloutStatus.ROLLED_BACK,
                f"canary failed analysis ({names}): {why}",
                templates=[c["metric"] for c in out_of_failures],
            )
        out_of_answers = [c for c in unanswered if c["inconclusive"] >= c["inconclusive_limit"]]
        if out_of_answers:
            names = ", ".join(c["metric"] for c in out_of_answers)
            rollout.status = RolloutStatus.PAUSED
            rollout.pause_until = None
            rollout.reason = f"inconclusive ({names}): " + "; ".join(
                c["why"] for c in out_of_answers
            )
            self.transition(
                "inconclusive",
                f"paused: {rollout.reason}",
                templates=[c["metric"] for c in out_of_answers],
            )
            return None
        if failed or unanswered:
            parts = [
                f"{c['metric']} {c['verdict']} ({c['failures']}/{c['failure_limit']}): {c['why']}"
                if c["verdict"] == FAIL
                else f"{c['metric']} inconclusive ({c['inconclusive']}/{c['inconclusive_limit']}): "
                f"{c['why']}"
                for c in failed + unanswered
            ]
            rollout_event(
                rollout=rollout,
                kind="sample_failed" if failed else "sample_inconclusive",
                message="sample not counted: " + "; ".join(parts),
                data={"templates": [c["metric"] for c in failed + unanswered]},
                audit=False,
            )
            return self.interval()
        rollout.consecutive_failures = 0  # failed hooks count until a sample passes
        rollout.samples_in_step += 1
        if rollout.samples_in_step < int(rollout.analysis["samples_per_step"]):
            return self.interval()
        outcome = self.statistical_judgement()
        if outcome is not CONTINUE:
            return outcome
        return self.step_passed()

    def templates(self) -> list[dict]:
        """The rollout's enabled templates (the built-ins for a rollout from before them)."""
        from deployments.metrics.templates import templates_for_analysis

        templates = self.rollout.metrics or templates_for_analysis(self.rollout.analysis)
        return [t for t in templates if t.get("enabled", True)]

    def measure(self) -> list[dict]:
        """Measure every template (kind by kind), save the samples, check each template and
        count its consecutive failures and inconclusives; the checks, for the decision."""
        from deployments.judge import check
        from deployments.metrics.templates import MeasureContext, Measurement, template_kind

        rollout = self.rollout
        templates = self.templates()
        context = MeasureContext(
            rollout=rollout,
            service=self.service,
            backend=self.metrics,
            now=self.now,
            stable_serving=rollout.current_weight < 100,
        )
        measurements: dict[str, Measurement] = {}
        for kind_name in dict.fromkeys(t["kind"] for t in templates):
            of_kind = [t for t in templates if t["kind"] == kind_name]
            kind = template_kind(kind_name)
            if kind is None:
                for t in of_kind:
                    measurements[t["name"]] = Measurement(
                        problems=[f"the {kind_name} kind is not installed"]
                    )
                continue
            measurements.update(kind.measure(of_kind, context))
        self.save_samples(templates, measurements)
        state = dict(rollout.metric_state or {})
        checks = []
        for template in templates:
            name = template["name"]
            result = check(
                template,
                measurements.get(name) or Measurement(problems=["not measured"]),
                stable_serving=context.stable_serving,
            )
            counts = dict(state.get(name) or {"failures": 0, "inconclusive": 0})
            if result["verdict"] == FAIL:
                counts["failures"] = counts.get("failures", 0) + 1
                counts["inconclusive"] = 0
            elif result["verdict"] == INCONCLUSIVE:
                counts["inconclusive"] = counts.get("inconclusive", 0) + 1
            else:
                counts["failures"] = counts["inconclusive"] = 0
            counts["at"] = self.now.isoformat()
            state[name] = counts
            checks.append(
                {
                    **result,
                    "measured": True,
                    "failures": counts["failures"],
                    "failure_limit": int(template["failure_limit"]),
                    "inconclusive": counts["inconclusive"],
                    "inconclusive_limit": int(template["inconclusive_limit"]),
                }
            )
        rollout.metric_state = state
        deciding = [c for c in checks if not c["dry_run"]]
        previous = (rollout.last_judgement or {}).get("statistical")
        rollout.last_judgement = {
            "verdict": overall(checks),
            "checks": checks,
            "reasons": [c["why"] for c in deciding if c["verdict"] != PASS],
            "at": self.now.isoformat(),
        }
        if previous:  # the last step's comparison stays shown while the next step samples
            rollout.last_judgement["statistical"] = previous
        return checks

    def save_samples(self, templates: list[dict], measurements: dict) -> None:
        """One MetricSample per version: every template's value in `values`, the built-in
        metrics also in their columns (the charts)."""
        rollout = self.rollout
        samples = []
        for version, tag in (
            (Version.STABLE, rollout.from_tag),
            (Version.CANARY, rollout.image_tag),
        ):
            values = {
                t["name"]: getattr(measurements.get(t["name"]), version, None) for t in templates
            }
            columns = {m: values.get(m) for m in METRICS}
            samples.append(
                MetricSample.objects.create(
                    service=self.service,
                    rollout=rollout,
                    version=version,
                    image_tag=tag,
                    at=self.now,
                    values=values,
                    **columns,
                )
            )
        rollout_publish(rollout_id=rollout.pk, messages=[sample_message(s) for s in samples])

    def statistical_judgement(self):
        """With `judge: statistical`, a step whose samples all passed the limits is also
        compared with stable over the step (Kayenta's interval): the score continues, pauses
        (marginal) or rolls back. At 100 % stable serves nothing to compare with."""
        from deployments.judge import judge_step
        from deployments.scoring import CONTINUE as GO
        from deployments.scoring import PAUSE
        from deployments.selectors import step_samples

        rollout = self.rollout
        if rollout.analysis.get("judge") != "statistical" or rollout.current_weight >= 100:
            return CONTINUE
        result = judge_step(rollout.analysis, *step_samples(rollout), templates=self.templates())
        rollout.last_judgement["statistical"] = {
            "score": result.score,
            "decision": result.decision,
            "metrics": [r.as_dict() for r in result.results],
        }
        summary = (
            f"score {result.score:.0f}"
            if result.score is not None
            else "no score (too few samples with data)"
        )
        data = {"score": result.score, "decision": result.decision}
        if result.decision == GO:
            self.transition("statistical_pass", f"statistical judge: {summary}", **data)
            return CONTINUE
        why = "; ".join(result.reasons)
        if result.decision == PAUSE:
            rollout.status = RolloutStatus.PAUSED
            rollout.pause_until = None
            rollout.reason = f"marginal: statistical judge {summary}" + (f": {why}" if why else "")
            self.transition("marginal", f"paused: {rollout.reason}", **data)
            return None
        return self.start_rollback(
            RolloutStatus.ROLLED_BACK, f"canary failed statistical analysis ({summary}): {why}"
        )

    def step_passed(self) -> float | None:
        rollout = self.rollout
        step = rollout.step
        self.transition(
            "step_passed",
            f"step {rollout.current_step + 1} passed at {rollout.current_weight}% ({rollout.samples_in_step} samples)",
        )
        if rollout.current_step + 1 >= len(rollout.steps):
            self.enter(Phase.PROMOTE)
        else:
            rollout.current_step += 1
            self.enter(Phase.SCALE)
        pause = step.get("pause")
        if pause is None or pause == 0:
            return 0
        rollout.status = RolloutStatus.PAUSED
        if pause == "indefinite":
            rollout.pause_until = None
            rollout.reason = "paused after the step until resumed"
            self.transition("paused", rollout.reason)
            return None
        rollout.pause_until = self.now + timedelta(seconds=float(pause))
        rollout.reason = f"pause of {float(pause):g} s after the step"
        self.transition("paused", rollout.reason)
        return float(pause)

    def promote(self) -> float | None:
        rollout, svc = self.rollout, self.service
        name = stable_name(svc.name)
        state = self.cluster.deployment_state(svc.namespace, name)
        if state is None or state.image != self.canary_image:
            if not (rollout.promotion_confirmed or rollout.promote_requested):
                waiting = self.confirm_promotion()
                if waiting is not None:
                    return waiting
            self.cluster.update_stable(
                svc, image=self.canary_image, rollout_id=rollout.pk, by=self.by
            )
            self.transition("promoting", f"stable Deployment updated to {self.canary_image}")
            return settings.ROLLOUT_POLL_SECONDS
        if not state.is_ready(image=self.canary_image, replicas=svc.replicas):
            waited = (self.now - (rollout.phase_started_at or self.now)).total_seconds()
            if waited > settings.ROLLOUT_READY_TIMEOUT_SECONDS:
                return self.start_rollback(
                    RolloutStatus.FAILED, f"stable not ready on the new image after {waited:.0f} s"
                )
            return settings.ROLLOUT_POLL_SECONDS
        self.cluster.set_canary_weight(svc, 0)
        rollout.current_weight = 0
        self.cluster.delete_deployment(svc.namespace, canary_name(svc.name))
        svc.stable_tag = rollout.image_tag
        svc.save(update_fields=["stable_tag", "updated_at"])
        self.finish(RolloutStatus.PROMOTED, f"promoted: {svc.name} runs {rollout.image_tag}")
        return None

    def start_rollback(self, final: str, reason: str, **data) -> float | None:
        rollout = self.rollout
        rollout.final_status = final
        rollout.reason = reason
        self.enter(Phase.ROLLBACK)
        self.transition("rollback", f"rolling back: {reason}", **data)
        return self.rollback()

    def rollback(self) -> None:
        rollout, svc = self.rollout, self.service
        if rollout.started_at is None:  # never reached the cluster: nothing to undo
            self.finish(rollout.final_status or RolloutStatus.ROLLED_BACK, rollout.reason)
            return None
        # Traffic first: whatever follows, users are on stable.
        self.cluster.set_canary_weight(svc, 0)
        rollout.current_weight = 0
        stable = self.cluster.deployment_state(svc.namespace, stable_name(svc.name))
        old_image = svc.image_for(rollout.from_tag or svc.stable_tag)
        if stable is not None and stable.image != old_image:
            self.cluster.update_stable(svc, image=old_image, rollout_id=rollout.pk, by=self.by)
        canary = canary_name(svc.name)
        if self.cluster.deployment_state(svc.namespace, canary) is not None:
            self.cluster.scale_deployment(svc.namespace, canary, 0)
        final = rollout.final_status or RolloutStatus.ROLLED_BACK
        self.finish(final, rollout.reason or final)
        return None

    def finish(self, status: str, message: str) -> None:
        rollout = self.rollout
        rollout.status = status
        rollout.phase = Phase.DONE
        rollout.finished_at = self.now
        rollout.pause_until = None
        self.transition(status, message)
        if has_hooks(rollout, HookType.POST_ROLLOUT):
            rollout_post_hooks_schedule(rollout_id=rollout.pk)

    # hooks (deployments/hooks.py has their semantics)
    def hook_failed(self, failed: list, *, before_start: bool = False) -> float | None:
        """A failed pre-rollout or rollout hook counts as a failed sample."""
        rollout = self.rollout
        rollout.consecutive_failures += 1
        limit = int(rollout.analysis.get("failure_limit", 1))
        why = "; ".join(r.summary() for r in failed)
        rollout_event(
            rollout=rollout,
            kind="hook_failed",
            message=f"hook failed ({rollout.consecutive_failures}/{limit}): {why}",
            data={"hooks": [r.name for r in failed]},
            audit=False,
        )
        if rollout.consecutive_failures >= limit:
            return self.start_rollback(RolloutStatus.ROLLED_BACK, f"hook failed: {why}")
        if not before_start:
            rollout.last_sample_at = self.now  # the interval's sample slot is used
        return self.interval()

    def analysis_hooks(self):
        """Rollback hooks first (2xx rolls back), then rollout hooks (a failure is a failed
        sample and skips this interval's metrics). CONTINUE when the metrics should run."""
        for result in hooks_run(self.rollout, HookType.ROLLBACK):
            if result.ok:
                return self.start_rollback(
                    RolloutStatus.ROLLED_BACK,
                    f"rollback hook {result.name} asked for a rollback (HTTP {result.status})",
                )
        failed = [r for r in hooks_run(self.rollout, HookType.ROLLOUT) if not r.ok]
        if failed:
            return self.hook_failed(failed)
        return CONTINUE

    def confirm_promotion(self) -> float | None:
        """None when every confirm-promotion hook answers 2xx; else wait an interval and re-ask."""
        rollout = self.rollout
        results = hooks_run(rollout, HookType.CONFIRM_PROMOTION)
        waiting = [r for r in results if not r.ok]
        if not waiting:
            if results:
                self.transition("promotion_confirmed", "confirm-promotion hooks answered 2xx")
            rollout.promotion_confirmed = True
            rollout.reason = ""
            return None
        reason = "waiting for confirm-promotion: " + "; ".join(r.summary() for r in waiting)
        if rollout.reason != reason:
            self.transition("gate_waiting", reason)
        rollout.reason = reason
        return self.interval()
