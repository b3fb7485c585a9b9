"""User insight models: features from the store, training, the registry, scoring, its API and pages."""
