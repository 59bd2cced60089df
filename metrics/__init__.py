"""The repository's own metric definitions, and the examples the package ships as ``rta.examples``.

`rta init` copies ``shop.py`` from here; ``rta.toml`` at the repository root runs it. Files whose
names start with ``_`` are not metric files, so this one is never loaded as definitions.
"""
