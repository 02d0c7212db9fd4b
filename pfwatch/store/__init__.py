"""pfwatch.store."""
