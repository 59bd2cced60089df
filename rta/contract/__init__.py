"""Formats two layers must agree on, defined once below both of them.

- :mod:`rta.contract.segment`: Segment messages as the collect API accepts them and the one
  canonical line per message that it writes to the log, which is what the flow reads.

See ``docs/architecture.md`` ("One event contract").
"""
