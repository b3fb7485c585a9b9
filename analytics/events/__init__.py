"""Event ingestion: validation, enrichment, the Redis buffer, the writer and the event reads."""
