"""Worlds v2: offline worlds that pose WideSearch's problem rather than a template's.

See :mod:`.build` for the pipeline and ``docs/worlds.md`` for how each kind of difficulty is
generated. The default world's domains are in :mod:`.domains_us`, :mod:`.domains_science` (test)
and :mod:`.domains_geo` (train); :mod:`.default` assembles them.
"""
