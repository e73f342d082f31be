"""Training objectives, each its own module (never a branch inside a model's forward)."""
