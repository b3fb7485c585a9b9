"""The console's home page: one card per area."""

from django.shortcuts import render

from core.roles import role_required

AREAS = [
    (
        "deployments:index",
        "Deployments",
        "Services and canary rollouts on Kubernetes, with live metrics.",
    ),
    (
        "analytics:index",
        "Analytics",
        "Retention, funnels, revenue, feature usage, satisfaction, user insights.",
    ),
    ("experiments:index", "Experiments", "A/B experiments, assignment and trustworthy results."),
    ("devices:index", "Devices", "Push registrations and the notifications that reach them."),
]


@role_required()
def home(request):
    return render(request, "home.html", {"areas": AREAS})
