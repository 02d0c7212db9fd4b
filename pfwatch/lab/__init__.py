"""``pfwatch lab``: a throwaway real Postfix to rehearse a change on.

:mod:`.config` neutralises a copied configuration, :mod:`.session` runs the instance and
keeps the engine current while steps run, :mod:`.script` reads rehearsal scripts.
"""
