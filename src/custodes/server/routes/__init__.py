"""One routes module per resource; each exposes ``router``."""
