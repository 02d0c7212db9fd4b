"""pyparsing grammars for Postfix files and the maillog message catalogue.

Shipped as ``pfwatch.grammars``. Each module holds one grammar (or one catalogue) and no
I/O; annotated samples live in ``samples/`` beside them and tests fail for a rule that has
no sample.
"""
