"""Where events come from: the :class:`~pfwatch.sources.base.Source` protocol and its
backends (file follower, journald, a log read once, /proc, configuration directories)."""
