"""pfwatch.core."""
