"""Formats two layers must agree on, defined once below both of them.

- :mod:`rta.contract.segment`: Segment messages as the collect API accepts them and the one
  canonical line per message that it writes to the log, which is what the flow reads.
- :mod:`rta.contract.log_format`: the on-disk log the collect API writes and the flow reads.
- :mod:`rta.contract.keys`: project API keys, which the collect API, the query API and the
  dashboard pages all check.
- :mod:`rta.contract.http`: the HTTP error (status, reason, Retry-After) and the body reader
  those three ASGI apps share.

See ``docs/architecture.md`` ("One event contract").
"""
