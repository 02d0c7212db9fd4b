"""From a maillog line (or a journal record) to a :class:`~pfwatch.events.LogEvent`.

Envelopes, program names and the message classifier; :mod:`.reader` is the entry point
(``LogClassifier``, ``iter_log_events``).
"""
