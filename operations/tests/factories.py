"""Alertmanager webhook payloads (version 4), as Alertmanager posts them."""

ALERT_TOKEN = "alert-token-for-tests"
STARTS = "2026-11-25T06:00:00.000Z"


def alert(
    name="HighAICost", *, status="firing", fingerprint="a1b2c3d4e5f60718", starts=STARTS, **labels
):
    return {
        "status": status,
        "labels": {"alertname": name, "severity": "warning", **labels},
        "annotations": {"summary": f"{name} test"},
        "startsAt": starts,
        "endsAt": "2026-11-25T06:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint,
    }


def payload(*alerts, status="firing"):
    return {
        "version": "4",
        "groupKey": '{}:{alertname="x"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "book2video-console",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }
