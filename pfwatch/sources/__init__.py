"""pfwatch.sources."""
