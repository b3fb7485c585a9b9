-- Batch-scored predictions per user (analytics/ml/scoring.py); the newest computed_at wins.
CREATE TABLE IF NOT EXISTS user_insights (
    user_id String,
    computed_at DateTime64(3, 'UTC'),
    reference_at DateTime64(3, 'UTC'),
    churn_probability Float64,
    ltv Float64,
    conversion_likelihood Nullable(Float64),
    engagement_score Float64,
    next_best_action LowCardinality(String),
    tier LowCardinality(String),
    country LowCardinality(String),
    model_versions String,
    features String
) ENGINE = ReplacingMergeTree(computed_at)
ORDER BY user_id;
