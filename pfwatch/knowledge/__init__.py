"""Postfix facts as data, each row citing the Postfix source it comes from.

Daemon skeletons and timings (:mod:`.daemons`), parameter readers (:mod:`.params`), table
types (:mod:`.tables`), client caches (:mod:`.caches`), time values (:mod:`.timevalue`),
stock services (:mod:`.defaults`) and other releases (:mod:`.releases`).
"""
