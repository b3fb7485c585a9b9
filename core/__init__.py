"""The core of the console: API keys, audit, roles, auth, errors, health and shared services."""
