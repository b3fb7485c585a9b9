"""Header and cookie rules that send matching requests to the canary (Flagger's A/B mode).

A rule is one condition: `{"header": name, "exact" | "prefix" | "regex": value}` or
`{"cookie": name, "value": value}`. A request matching any rule goes to canary at every step,
whatever the weight. `istio_match` turns the rules into Istio `HTTPMatchRequest`s (a cookie is
a regex on the Cookie header, the one Flagger documents for `canary=always`). The rollout form
takes one rule per line (`rules_from_text`).
"""

import re

HEADER_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
COOKIE_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
VALUE_PATTERN = r"^[^\u0000-\u001f\u007f]{1,256}$"
OPERATORS = ("exact", "prefix", "regex")
MAX_RULES = 10


class MatchError(ValueError):
    """A rule is malformed; the message names the rule and the problem."""


def _text(value, pattern: str) -> bool:
    return isinstance(value, str) and re.fullmatch(pattern, value) is not None


def _check_regex(pattern: str, where: str) -> None:
    # Istio hands the regex to Envoy, which runs RE2: refuse what RE2 lacks (backreferences,
    # lookarounds) here rather than have the mesh refuse the VirtualService mid-rollout.
    if re.search(r"\\[1-9]|\(\?<?[=!]", pattern):
        raise MatchError(f"{where}: backreferences and lookarounds are not RE2")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise MatchError(f"{where}: invalid regex ({exc})") from None


def validate_rules(rules) -> list[dict]:
    """The rules in canonical form, or MatchError naming the first problem."""
    if rules in (None, ""):
        return []
    if not isinstance(rules, list):
        raise MatchError("match must be a list of rules")
    if len(rules) > MAX_RULES:
        raise MatchError(f"at most {MAX_RULES} rules")
    out = []
    for i, rule in enumerate(rules):
        where = f"rule {i + 1}"
        if not isinstance(rule, dict):
            raise MatchError(f"{where}: a rule is an object")
        if "cookie" in rule:
            if set(rule) != {"cookie", "value"}:
                raise MatchError(f'{where}: a cookie rule is {{"cookie": name, "value": value}}')
            if not _text(rule["cookie"], COOKIE_PATTERN):
                raise MatchError(f"{where}: cookie name must match {COOKIE_PATTERN}")
            if not _text(rule["value"], VALUE_PATTERN):
                raise MatchError(f"{where}: value must be 1 to 256 characters, no control ones")
            out.append({"cookie": rule["cookie"], "value": rule["value"]})
            continue
        ops = [op for op in OPERATORS if op in rule]
        if "header" not in rule or len(ops) != 1 or set(rule) != {"header", ops[0]}:
            raise MatchError(
                f'{where}: a header rule is {{"header": name, "exact" | "prefix" | "regex": value}}'
            )
        name, op = rule["header"], ops[0]
        if not _text(name, HEADER_PATTERN):
            raise MatchError(f"{where}: header must be lowercase letters, digits and '-'")
        if not _text(rule[op], VALUE_PATTERN):
            raise MatchError(f"{where}: {op} must be 1 to 256 characters, no control ones")
        if op == "regex":
            _check_regex(rule[op], where)
        out.append({"header": name, op: rule[op]})
    return out


def istio_match(rules: list[dict]) -> list[dict]:
    """The rules as Istio HTTPMatchRequests (ORed, as Istio ORs the entries of `match`)."""
    out = []
    for rule in rules:
        if "cookie" in rule:
            pair = f"{re.escape(rule['cookie'])}={re.escape(rule['value'])}"
            out.append({"headers": {"cookie": {"regex": rf"^(.*?;\s*)?({pair})(;.*)?$"}}})
        else:
            op = next(op for op in OPERATORS if op in rule)
            out.append({"headers": {rule["header"]: {op: rule[op]}}})
    return out


def rules_from_text(text: str) -> list[dict]:
    """One rule per line, for the rollout form: `x-canary: insider` (header equals),
    `x-canary ^= beta` (starts with), `user-agent ~ .*Android.*` (regex) or
    `cookie canary=always` (a cookie's value)."""
    rules = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower().startswith("cookie "):
            name, sep, value = line[7:].strip().partition("=")
            if not sep:
                raise MatchError(f"line {n}: write a cookie rule as `cookie name=value`")
            rules.append({"cookie": name.strip(), "value": value.strip()})
            continue
        for token, op in (("^=", "prefix"), ("~", "regex"), (":", "exact")):
            name, sep, value = line.partition(token)
            if sep:
                rules.append({"header": name.strip().lower(), op: value.strip()})
                break
        else:
            raise MatchError(
                f"line {n}: write `header: value`, `header ^= prefix`, `header ~ regex` "
                "or `cookie name=value`"
            )
    try:
        return validate_rules(rules)
    except MatchError as exc:
        raise MatchError(str(exc).replace("rule ", "line ", 1)) from None


def describe(rules: list[dict]) -> str:
    """A short sentence for timelines and pages: `x-canary = insider or cookie canary=always`."""
    parts = []
    for rule in rules or []:
        if "cookie" in rule:
            parts.append(f"cookie {rule['cookie']}={rule['value']}")
            continue
        op = next(op for op in OPERATORS if op in rule)
        sign = {"exact": "=", "prefix": "starts with", "regex": "~"}[op]
        parts.append(f"{rule['header']} {sign} {rule[op]}")
    return " or ".join(parts)
