"""The change-window front: ``pfwatch check`` and ``pfwatch wait``.

``check`` builds its view through the start-up path of ``watch`` when no state directory
is given (:mod:`.precheck`, with the no-state bases of :mod:`.baseline`); ``wait`` and
``lab`` keep it current with the watch service's own trackers (:mod:`.livewatch`).
"""
