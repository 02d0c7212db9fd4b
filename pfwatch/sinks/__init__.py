"""pfwatch.sinks."""
