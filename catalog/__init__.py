"""Package data of the model catalog: the pinned models.dev snapshot and the caps overrides."""
