"""The `train`, `evaluate` and `predict` commands (see `segtutor.cli`)."""
