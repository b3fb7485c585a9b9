"""The business metrics of the original design, computed from the analytics store on a schedule.

Beat runs `operations.refresh_business_metrics` every BUSINESS_METRICS_INTERVAL seconds; it
computes one snapshot (a few aggregate queries in one store session) and keeps it in Redis,
where `/metrics` reads it at scrape time. No query runs during a scrape.
"""

import json
import time

from analytics.catalog import Event
from analytics.store import store
from core.redis import redis_client
from operations.exporter import BUSINESS_METRICS_KEY

# Upper bounds (seconds) of the processing-time histogram: 30 s to 1 h; 600 s is the alert line.
PROCESSING_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)
# The `video_duration` label: length of the produced video, in three bands.
VIDEO_DURATION_BANDS = (("under_5m", 300.0), ("5m_to_20m", 1200.0))
VIDEO_DURATION_LONGEST = "over_20m"
SATISFACTION_WINDOW_DAYS = 30

PROCESSING_SQL = """
SELECT user_tier, book_type, video_duration, count() AS count, sum(p) AS sum,
       sumForEach(arrayMap(b -> toUInt64(p <= b), {buckets:Array(Float64)})) AS buckets
FROM (
    SELECT user_tier,
           JSONExtractString(properties, 'book_type') AS book_type,
           JSONExtractFloat(properties, 'processing_seconds') AS p,
           multiIf(JSONExtractFloat(properties, 'video_duration_seconds') < {short:Float64}, {short_label:String},
                   JSONExtractFloat(properties, 'video_duration_seconds') < {medium:Float64}, {medium_label:String},
                   {long_label:String}) AS video_duration
    FROM events FINAL
    WHERE event = {completed:String}
)
GROUP BY user_tier, book_type, video_duration
ORDER BY user_tier, book_type, video_duration
"""

AI_COST_SQL = """
SELECT JSONExtractString(properties, 'ai_service') AS ai_service, user_tier,
       sum(JSONExtractFloat(properties, 'ai_cost_dollars')) AS value
FROM events FINAL
WHERE event = {completed:String}
GROUP BY ai_service, user_tier
ORDER BY ai_service, user_tier
"""

SATISFACTION_SQL = """
SELECT user_tier, video_style, avg(JSONExtractFloat(properties, 'score')) AS value
FROM events FINAL
WHERE event = {satisfaction:String} AND timestamp >= now64(3) - toIntervalDay({days:UInt32})
GROUP BY user_tier, video_style
ORDER BY user_tier, video_style
"""

CONVERSION_SQL = """
SELECT signup_source, count() AS signups, countIf(converted = 1) AS paid,
       paid / signups AS value
FROM (
    SELECT user_id, any(JSONExtractString(properties, 'signup_source')) AS signup_source,
           user_id IN (SELECT user_id FROM events WHERE event = {subscribed:String}) AS converted
    FROM events FINAL
    WHERE event = {signup:String}
    GROUP BY user_id
)
GROUP BY signup_source
ORDER BY signup_source
"""


def business_metrics_compute() -> dict:
    """One snapshot of every business metric, as plain JSON-ready data."""
    (short_label, short), (medium_label, medium) = VIDEO_DURATION_BANDS
    db = store()
    with db.session():
        processing = db.query(
            PROCESSING_SQL,
            {
                "buckets": list(PROCESSING_BUCKETS),
                "short": short,
                "short_label": short_label,
                "medium": medium,
                "medium_label": medium_label,
                "long_label": VIDEO_DURATION_LONGEST,
                "completed": Event.VIDEO_COMPLETED.value,
            },
        )
        ai_cost = db.query(AI_COST_SQL, {"completed": Event.VIDEO_COMPLETED.value})
        satisfaction = db.query(
            SATISFACTION_SQL,
            {"satisfaction": Event.SATISFACTION_SCORE.value, "days": SATISFACTION_WINDOW_DAYS},
        )
        conversion = db.query(
            CONVERSION_SQL,
            {"signup": Event.SIGNUP.value, "subscribed": Event.SUBSCRIPTION_STARTED.value},
        )
    return {
        "computed_at": time.time(),
        "processing_buckets": list(PROCESSING_BUCKETS),
        "processing": [
            {
                "user_tier": r["user_tier"],
                "book_type": r["book_type"],
                "video_duration": r["video_duration"],
                "count": int(r["count"]),
                "sum": float(r["sum"]),
                "buckets": [int(c) for c in r["buckets"]],
            }
            for r in processing
        ],
        "ai_cost": [_row(r, "ai_service", "user_tier") for r in ai_cost],
        "satisfaction": [_row(r, "user_tier", "video_style") for r in satisfaction],
        "conversion": [_row(r, "signup_source") for r in conversion],
    }


def _row(row: dict, *labels: str) -> dict:
    return {**{label: str(row[label]) for label in labels}, "value": float(row["value"])}


def business_metrics_refresh() -> dict:
    """Compute the snapshot and publish it for `/metrics` (kept a day; refreshed every minute)."""
    snapshot = business_metrics_compute()
    redis_client().set(BUSINESS_METRICS_KEY, json.dumps(snapshot), ex=86400)
    return snapshot
