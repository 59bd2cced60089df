"""The names the compiler and the plan import for parts; each aggregation's record is in :mod:`rta.compiler.aggregations`."""

from __future__ import annotations

from rta.compiler.aggregations import PartKind as PartKind
from rta.compiler.aggregations import parts_of as parts_of
