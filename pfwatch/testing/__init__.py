"""pfwatch.testing."""
