"""pfwatch.maillog."""
