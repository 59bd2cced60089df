"""A funnel request: :class:`~rta.query.person_request.FunnelRequest`, shared with retention and paths."""

from __future__ import annotations

from rta.query.person_request import DEFAULT_LAST as DEFAULT_LAST
from rta.query.person_request import FunnelRequest as FunnelRequest
