"""User insight models: features from the store, training, the registry's artifacts, scoring."""
