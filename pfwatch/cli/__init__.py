"""The ``pfwatch`` command line: thin click commands that build sources and sinks."""
