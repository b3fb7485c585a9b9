"""The event names and properties the product's apps send, shared by every analysis.

This is the contract between the capture API, the data generator, the analyses, the models
and the experiments. Properties set by enrichment at capture: device_type, is_mobile,
geo_country, user_tier.
"""

from enum import StrEnum


class Event(StrEnum):
    SIGNUP = "signup"  # signup_source, user_tier ("free")
    SESSION_START = "session_start"  # platform ("ios" | "android" | "web")
    SESSION_END = "session_end"  # duration_seconds
    PROJECT_CREATED = (
        "project_created"  # book_type ("fiction" | "non_fiction" | "textbook" | "children")
    )
    VIDEO_RENDERED = "video_rendered"  # video_style, book_type, ai_service, ai_cost_dollars
    VIDEO_COMPLETED = "video_completed"  # video_style, book_type, video_duration_seconds,
    #                                       processing_seconds, completion_rate (0-1), ai_service, ai_cost_dollars
    FEATURE_USED = "feature_used"  # feature
    SUBSCRIPTION_STARTED = (
        "subscription_started"  # tier, mrr (monthly amount in dollars), previous_tier
    )
    SUBSCRIPTION_UPGRADED = "subscription_upgraded"  # tier, mrr, previous_tier, previous_mrr
    SUBSCRIPTION_DOWNGRADED = "subscription_downgraded"  # tier, mrr, previous_tier, previous_mrr
    SUBSCRIPTION_CANCELLED = "subscription_cancelled"  # previous_tier, previous_mrr, reason
    PAYMENT = "payment"  # amount (dollars), tier
    SATISFACTION_SCORE = "satisfaction_score"  # score (1-10), video_style
    SUPPORT_TICKET = "support_ticket"  # category
    EXPERIMENT_ASSIGNMENT = "experiment_assignment"  # experiment_id (key), variant (key)


TIERS = ("free", "basic", "pro", "enterprise")
TIER_MRR = {"free": 0.0, "basic": 9.99, "pro": 29.99, "enterprise": 99.99}
VIDEO_STYLES = ("animated", "cinematic", "documentary", "slideshow", "whiteboard")
BOOK_TYPES = ("fiction", "non_fiction", "textbook", "children")
AI_SERVICES = ("openai", "anthropic", "stability", "elevenlabs")
SIGNUP_SOURCES = ("organic", "ads", "referral", "partner")
FEATURES = ("voice_over", "subtitles", "music", "custom_avatar", "chapter_split", "export_4k")
