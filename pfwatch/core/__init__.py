"""The engine: ``fold(state, event) -> Step(state, findings)`` (:mod:`.fold`), pure.

No I/O, no threads, no wall clock: every front feeds it events and renders its findings.
The state and a change's records are :mod:`.state` and :mod:`.records`; docs/ARCHITECTURE.md
lists the modules.
"""
