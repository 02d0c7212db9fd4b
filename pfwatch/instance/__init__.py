"""A private Postfix instance driven from Python: what ``pfwatch lab`` runs on.

``layout`` renders its main.cf/master.cf (pure), ``local`` runs it on this host
(:class:`~pfwatch.instance.local.PostfixInstance`), ``client`` reads its log and speaks
SMTP to it, ``sink`` is the loopback SMTP server it relays to. The pytest plugin in
:mod:`pfwatch.testing` builds its fixtures on this package; product code never imports
:mod:`pfwatch.testing`.
"""
