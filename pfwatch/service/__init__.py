"""``pfwatch watch``, the sidecar service, split by concern.

- :mod:`pfwatch.service.loop`: the run loop (:class:`WatchService`, :func:`run_watch`).
- :mod:`pfwatch.service.startup`: state database, restore, classifier and /proc scanner.
- :mod:`pfwatch.service.config_tracker`: snapshots, semantic diff, change events.
- :mod:`pfwatch.service.log_input`: the log follower or journald plus the classifier.
- :mod:`pfwatch.service.status`: metrics snapshot, /status document, source health.
- :mod:`pfwatch.service.events_file`: ``--events-file`` with exactly-once restarts.

The /proc poller is :mod:`pfwatch.sources.procfs`. Inputs, outputs and errors are
documented per module.
"""
