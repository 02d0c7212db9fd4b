"""pfwatch.knowledge."""
