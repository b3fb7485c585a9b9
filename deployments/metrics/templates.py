"""Metric templates: what a canary is judged by (Flagger's MetricTemplate, Argo's
AnalysisTemplate), and the registry of template kinds.

A template names one metric, says how to measure it (its *kind*: a PromQL query for the
`prometheus` kind, an analytics-store reading for the `store` kind) and how to judge it: a
threshold range (`min_value`/`max_value`), a direction (`lower` or `higher` is better), an
optional tolerance against stable's value, a failure limit and an inconclusive limit, and
`dry_run` (measured and shown, never decides). The statistical judge (scoring.py) uses the
template's `effect_size_tolerance`, `weight` and `critical`.

Templates live on the service (`MetricTemplate`, edited inline in admin); a rollout copies
them at start into `Rollout.metrics`, with the request's overrides, so editing a service
never changes a rollout in flight.

**Kinds** plug in here. A kind is an object with

- `validate(template: dict) -> dict[str, str]`: problems by field name (empty: valid);
- `measure(templates: list[dict], context: MeasureContext) -> dict[str, Measurement]`: one
  measurement per template name, canary and stable.

`KINDS` maps a kind's name to the dotted path of its class (imported on first use), and
`register_kind` adds one at run time. A kind whose module is missing is reported as not
installed (validation refuses it; a rollout already holding such a template is inconclusive).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.utils.module_loading import import_string

# The built-in metrics (the simulated cluster models them; MetricSample has a column each).
BUILTIN = ("request_rate", "error_rate", "p99_ms", "cpu_percent", "memory_percent")

PROMETHEUS, STORE = "prometheus", "store"
LOWER, HIGHER = "lower", "higher"  # which values are better
ABSOLUTE, PERCENT = "absolute", "percent"
PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
INTERVAL_PATTERN = r"^[1-9][0-9]{0,5}(ms|s|m|h|d)$"

# Placeholders of a PromQL template, as Flagger writes them: `{{ namespace }}`.
PLACEHOLDERS = {
    "namespace": "the service's namespace",
    "service": "the service's name (the pods' `app` label)",
    "target": "the Deployment of the version measured: <service>-canary or <service>-stable",
    "version": "canary or stable (the pods' `version` label)",
    "image_tag": "the image tag of the version measured",
    "interval": "the template's interval, a Prometheus duration such as 1m",
}
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")

# Every field of a template as a rollout holds it, with its default.
FIELDS: dict[str, Any] = {
    "name": "",
    "kind": PROMETHEUS,
    "query": "",
    "params": {},
    "unit": "",
    "interval": "1m",
    "min_value": None,
    "max_value": None,
    "direction": LOWER,
    "stable_tolerance": None,
    "stable_tolerance_unit": ABSOLUTE,
    "effect_size_tolerance": 1.25,
    "weight": 1.0,
    "critical": False,
    "failure_limit": 2,
    "inconclusive_limit": 1,
    "dry_run": False,
    "enabled": True,
}


# Kinds ------------------------------------------------------------------------------------


@dataclass
class Measurement:
    """One template measured on both versions. A kind that judges by itself (a statistical
    test over users, say) sets `verdict` and `why`; otherwise the range and the tolerance
    against stable decide. `detail` is shown with the result (counts, p-values...)."""

    canary: float | None = None
    stable: float | None = None
    problems: list[str] = field(default_factory=list)
    verdict: str | None = None
    why: str = ""
    detail: dict = field(default_factory=dict)


@dataclass
class MeasureContext:
    rollout: Any  # deployments.models.Rollout
    service: Any  # deployments.models.Service
    backend: Any  # the metrics backend (deployments.metrics.metrics_backend())
    now: Any  # datetime, UTC
    stable_serving: bool  # stable still receives traffic (canary below 100 %)
    cache: dict = field(default_factory=dict)  # shared by the kinds within one tick


class TemplateKind(Protocol):
    label: str

    def validate(self, template: dict) -> dict[str, str]: ...

    def measure(self, templates: list[dict], context: MeasureContext) -> dict[str, Measurement]: ...


KINDS: dict[str, str] = {
    PROMETHEUS: "deployments.metrics.prometheus.PrometheusKind",
    STORE: "deployments.metrics.store.StoreKind",
}
KIND_LABELS = {
    PROMETHEUS: "Prometheus query (PromQL template)",
    STORE: "analytics store (product events per version)",
}
_loaded: dict[str, TemplateKind | None] = {}


def register_kind(name: str, kind: TemplateKind | str, *, label: str = "") -> None:
    """Add or replace a kind (an instance, or the dotted path of its class)."""
    if isinstance(kind, str):
        KINDS[name] = kind
        _loaded.pop(name, None)
    else:
        _loaded[name] = kind
    KIND_LABELS.setdefault(name, label or getattr(kind, "label", name))


def template_kind(name: str) -> TemplateKind | None:
    """The kind's implementation, or None when it is unknown or its module is missing."""
    if name not in _loaded:
        path = KINDS.get(name)
        try:
            _loaded[name] = import_string(path)() if path else None
        except ImportError:
            _loaded[name] = None
    return _loaded[name]


# PromQL templates -------------------------------------------------------------------------


def placeholder_problems(query: str) -> list[str]:
    """Unknown placeholders and stray braces of a PromQL template ([] when valid)."""
    problems = []
    unknown = sorted({m for m in _PLACEHOLDER.findall(query) if m not in PLACEHOLDERS})
    if unknown:
        problems.append(
            "unknown placeholder "
            + ", ".join(f"{{{{ {name} }}}}" for name in unknown)
            + "; known: "
            + ", ".join(f"{{{{ {name} }}}}" for name in PLACEHOLDERS)
        )
    rest = _PLACEHOLDER.sub("", query)
    if "{{" in rest or "}}" in rest:
        problems.append("a placeholder is not closed: write {{ name }}")
    else:
        problems.extend(_bracket_problems(rest))
    return problems


def _bracket_problems(query: str) -> list[str]:
    """Brackets balanced outside string literals (a cheap syntax check; Prometheus itself
    reports the rest as an error answer, which is inconclusive, never a pass)."""
    pairs, stack, quote, escaped = {")": "(", "]": "[", "}": "{"}, [], None, False
    for ch in query:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            stack.append(ch)
        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):
            return [f"unbalanced {ch!r}"]
    if quote:
        return ["a string is not closed"]
    if stack:
        return [f"unbalanced {stack[-1]!r}"]
    return []


def render(query: str, **values: str) -> str:
    """The query with its placeholders replaced (validated beforehand)."""
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), query)


def from_dollar_syntax(query: str) -> str:
    """`$namespace`-style templates (the PROMETHEUS_QUERIES setting) in `{{ namespace }}` form."""
    return re.sub(
        r"\$\{?(namespace|service|version|target|image_tag|interval)\}?", r"{{ \1 }}", query
    )


def interval_seconds(interval: str) -> float:
    number, unit = re.fullmatch(r"([0-9]+)(ms|s|m|h|d)", interval).groups()
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


# Validation -------------------------------------------------------------------------------


def validate(template: dict) -> dict[str, str]:
    """Problems of a complete template by field name (empty: valid)."""
    problems: dict[str, str] = {}
    if not re.fullmatch(NAME_PATTERN, template.get("name") or ""):
        problems["name"] = "must be lowercase letters, digits, '_' or '-', starting with a letter"
    if not re.fullmatch(INTERVAL_PATTERN, template.get("interval") or ""):
        problems["interval"] = "must be a Prometheus duration such as 30s, 1m or 5m"
    low, high = template.get("min_value"), template.get("max_value")
    for key in ("min_value", "max_value", "stable_tolerance"):
        value = template.get(key)
        if value is not None and not (isinstance(value, int | float) and math.isfinite(value)):
            problems[key] = "must be a finite number"
    ranged = "min_value" not in problems and "max_value" not in problems
    if ranged and low is not None and high is not None and low > high:
        problems["max_value"] = "must not be below min_value"
    if template.get("direction") not in (LOWER, HIGHER):
        problems["direction"] = "must be lower or higher (which values are better)"
    if template.get("stable_tolerance_unit") not in (ABSOLUTE, PERCENT):
        problems["stable_tolerance_unit"] = "must be absolute or percent"
    tolerance = template.get("stable_tolerance")
    if "stable_tolerance" not in problems and tolerance is not None and tolerance < 0:
        problems["stable_tolerance"] = "must not be negative"
    effect = template.get("effect_size_tolerance")
    if not isinstance(effect, int | float) or not 1 <= effect <= 100:
        problems["effect_size_tolerance"] = "must be a ratio from 1 to 100 (1.25: 25 % worse)"
    weight = template.get("weight")
    if not isinstance(weight, int | float) or not 0 <= weight <= 100:
        problems["weight"] = "must be from 0 to 100"
    for key in ("failure_limit", "inconclusive_limit"):
        value = template.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
            problems[key] = "must be an integer from 1 to 100"
    kind_name = template.get("kind")
    kind = template_kind(kind_name) if kind_name in KINDS else None
    if kind_name not in KINDS:
        problems["kind"] = f"must be one of {', '.join(KINDS)}"
    elif kind is None:
        problems["kind"] = f"the {kind_name} kind is not installed"
    else:
        for key, problem in kind.validate(template).items():
            problems.setdefault(key, problem)
    return problems


def complete(partial: dict) -> dict:
    """A template with every field, defaults filling the missing ones."""
    return {key: partial.get(key, default) for key, default in FIELDS.items()} | {
        "params": dict(partial.get("params") or {})
    }


# Defaults ---------------------------------------------------------------------------------

_SEL = 'namespace="{{ namespace }}",app="{{ service }}",version="{{ version }}"'
_POD = 'namespace="{{ namespace }}",pod=~"{{ target }}-.*",container!=""'
DEFAULT_QUERIES = {
    "request_rate": f"sum(rate(http_requests_total{{{_SEL}}}[{{{{ interval }}}}]))",
    "error_rate": (
        f'100 * sum(rate(http_requests_total{{{_SEL},status=~"5.."}}[{{{{ interval }}}}]))'
        f" / sum(rate(http_requests_total{{{_SEL}}}[{{{{ interval }}}}]))"
    ),
    "p99_ms": (
        "1000 * histogram_quantile(0.99, sum by (le) "
        f"(rate(http_request_duration_seconds_bucket{{{_SEL}}}[{{{{ interval }}}}])))"
    ),
    "cpu_percent": (
        f"100 * sum(rate(container_cpu_usage_seconds_total{{{_POD}}}[{{{{ interval }}}}]))"
        f' / sum(kube_pod_container_resource_limits{{{_POD},resource="cpu"}})'
    ),
    "memory_percent": (
        f"100 * sum(container_memory_working_set_bytes{{{_POD}}})"
        f' / sum(kube_pod_container_resource_limits{{{_POD},resource="memory"}})'
    ),
}
DEFAULT_JUDGEMENT = {
    "request_rate": {"unit": "req/s", "direction": HIGHER, "weight": 0.0, "dry_run": True},
    "error_rate": {
        "unit": "%",
        "max_value": 5.0,
        "stable_tolerance": 1.0,
        "effect_size_tolerance": 1.5,
        "critical": True,
    },
    "p99_ms": {
        "unit": "ms",
        "max_value": 800.0,
        "stable_tolerance": 25.0,
        "stable_tolerance_unit": PERCENT,
        "effect_size_tolerance": 1.25,
    },
    "cpu_percent": {"unit": "%", "max_value": 90.0, "effect_size_tolerance": 1.5},
    "memory_percent": {"unit": "%", "max_value": 90.0, "effect_size_tolerance": 1.5},
}


def default_templates() -> list[dict]:
    """The five built-in metrics as templates (PROMETHEUS_QUERIES may replace a query)."""
    from django.conf import settings

    overrides = getattr(settings, "PROMETHEUS_QUERIES", None) or {}
    return [
        complete(
            {
                "name": name,
                "query": from_dollar_syntax(overrides.get(name, DEFAULT_QUERIES[name])),
                **DEFAULT_JUDGEMENT[name],
            }
        )
        for name in BUILTIN
    ]


# Analysis settings from before templates, still accepted: each maps onto the built-ins.
LEGACY_LIMITS = {
    "max_error_rate": "error_rate",
    "max_p99_ms": "p99_ms",
    "max_cpu_percent": "cpu_percent",
    "max_memory_percent": "memory_percent",
}


def apply_analysis(templates: list[dict], analysis: dict) -> list[dict]:
    """Apply the analysis settings given explicitly (`max_error_rate`, `failure_limit`,
    `compare_to_stable`, ...) to the templates they stand for."""
    out = [dict(t) for t in templates]
    by_name = {t["name"]: t for t in out}
    for key, name in LEGACY_LIMITS.items():
        if key in analysis and name in by_name:
            by_name[name]["max_value"] = analysis[key]
    if "error_rate_tolerance" in analysis and "error_rate" in by_name:
        by_name["error_rate"].update(
            stable_tolerance=analysis["error_rate_tolerance"], stable_tolerance_unit=ABSOLUTE
        )
    if "p99_tolerance_percent" in analysis and "p99_ms" in by_name:
        by_name["p99_ms"].update(
            stable_tolerance=analysis["p99_tolerance_percent"], stable_tolerance_unit=PERCENT
        )
    if analysis.get("compare_to_stable") is False:
        for t in out:
            t["stable_tolerance"] = None
    if "failure_limit" in analysis:
        for t in out:
            t["failure_limit"] = int(analysis["failure_limit"])
    return out


def apply_overrides(templates: list[dict], overrides: list[dict]) -> list[dict]:
    """A rollout's templates: an override naming a template changes the fields it gives; one
    naming no template adds it (defaults fill the rest)."""
    out = [dict(t) for t in templates]
    index = {t["name"]: i for i, t in enumerate(out)}
    for override in overrides or []:
        name = override.get("name")
        if name in index:
            merged = {**out[index[name]], **override}
            merged["params"] = {**out[index[name]].get("params", {}), **override.get("params", {})}
            out[index[name]] = merged
        else:
            index[name] = len(out)
            out.append(complete(override))
    return out


def templates_for_analysis(analysis: dict) -> list[dict]:
    """The templates of a rollout started before templates existed: the built-ins with its
    analysis settings."""
    return apply_analysis(default_templates(), analysis)
