"""Where findings go: one protocol (:mod:`.base`), several backends (JSON event lines,
Prometheus, HTTP status, the explain narrative, the monitoring-plugin line)."""
