"""Reads of the devices area: device counts over time, search, delivery history."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Prefetch, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from devices.models import Delivery, Device, Notification

OTHER = "other"


def notification_with_deliveries() -> QuerySet[Notification]:
    return Notification.objects.prefetch_related(
        Prefetch("deliveries", Delivery.objects.select_related("device").order_by("pk"))
    )


def device_search(*, user_id: str = "", platform: str = "", active: str = "") -> QuerySet[Device]:
    devices = Device.objects.all()
    if user_id:
        devices = devices.filter(user_id=user_id.strip())
    if platform:
        devices = devices.filter(platform=platform)
    if active in ("yes", "no"):
        devices = devices.filter(is_active=active == "yes")
    return devices.annotate(delivery_count=Count("deliveries")).order_by("-last_seen_at")


def device_deliveries(*, device: Device) -> QuerySet[Delivery]:
    return device.deliveries.select_related("notification").order_by("-created_at", "-pk")


@dataclass(frozen=True)
class Summary:
    active_by_platform: dict[str, int]
    inactive: int
    deliveries_by_status: dict[str, int]  # over the last 7 days

    @property
    def active(self) -> int:
        return sum(self.active_by_platform.values())


def devices_summary(*, now: datetime | None = None) -> Summary:
    now = now or timezone.now()
    active = dict(
        Device.objects.filter(is_active=True)
        .values_list("platform")
        .annotate(n=Count("pk"))
        .values_list("platform", "n")
    )
    deliveries = dict(
        Delivery.objects.filter(created_at__gte=now - timedelta(days=7))
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return Summary(
        active_by_platform=active,
        inactive=Device.objects.filter(is_active=False).count(),
        deliveries_by_status=deliveries,
    )


@dataclass(frozen=True)
class Series:
    days: list[date]
    counts: dict[str, list[int]]  # key (platform or app version) -> active devices at each day end


def active_devices_over_time(
    *, by: str, days: int = 90, today: date | None = None, top: int = 6
) -> Series:
    """Active devices at the end of each day, per platform or per (current) app version.

    A device counts from the day it registered until the day it was deactivated. Computed from
    two grouped counts (registrations and deactivations per day and key) and running sums, so
    the page stays one pair of queries however many devices there are.
    """
    assert by in ("platform", "app_version")
    today = today or timezone.localdate()
    start = today - timedelta(days=days - 1)
    created = (
        Device.objects.annotate(day=TruncDate("created_at"))
        .values_list(by, "day")
        .annotate(n=Count("pk"))
    )
    ended = (
        Device.objects.filter(deactivated_at__isnull=False)
        .annotate(day=TruncDate("deactivated_at"))
        .values_list(by, "day")
        .annotate(n=Count("pk"))
    )
    delta: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for key, day, n in created:
        delta[key or "unknown"][max(day, start)] += n
    for key, day, n in ended:
        delta[key or "unknown"][max(day, start)] -= n
    if by == "app_version":
        delta = _top_keys(delta, top=top)
    axis = [start + timedelta(days=i) for i in range(days)]
    counts = {}
    for key in sorted(delta, key=_version_key if by == "app_version" else str):
        running, series = 0, []
        for day in axis:
            running += delta[key].get(day, 0)
            series.append(running)
        counts[key] = series
    return Series(days=axis, counts=counts)


def _top_keys(delta: dict, *, top: int) -> dict:
    """Keep the `top` versions with the most devices now; fold the rest into 'other'."""
    size = {k: sum(v.values()) for k, v in delta.items()}
    keep = set(sorted(size, key=lambda k: (-size[k], k))[:top])
    folded: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for key, days in delta.items():
        target = key if key in keep else OTHER
        for day, n in days.items():
            folded[target][day] += n
    return folded


def _version_key(version: str) -> tuple:
    if version == OTHER:
        return ((1,),)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in version.split("."))


def recent_notifications(*, limit: int = 20) -> QuerySet[Notification]:
    return Notification.objects.annotate(
        sent=Count("deliveries", filter=Q(deliveries__status="sent")),
        total=Count("deliveries"),
    ).order_by("-created_at")[:limit]
