"""What an alert can read off a funnel: ``checkout.conversion``, ``checkout.entered``, ``checkout.step(2).conversion``.

Each is one number of the funnel's answer (``ws.funnel``) for the people who entered in a window:
``checkout.conversion.over("1h") < 0.02`` reads "of the people who entered the checkout funnel in
the last hour, fewer than 2% reached its last step". The alert engine asks ``ws.funnel`` for that
window, so the funnel's semantics have one owner (``rta/query/funnels.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rta.dsl.durations import parse_duration
from rta.errors import DefinitionError

if TYPE_CHECKING:
    from rta.dsl.alert import Window
    from rta.dsl.funnel import Funnel

#: A column of the funnel's frame: people entering the step, of step 1's people, of the step before's.
FunnelColumn = Literal["people", "conversion", "step_conversion"]


@dataclass(frozen=True, slots=True)
class FunnelMeasure:
    """One column of one step of a funnel's answer; ``.over(window)`` makes an alert window of it."""

    funnel: Funnel
    step: int  # 1-based
    column: FunnelColumn

    def over(self, window: str) -> Window:
        """This measure for the people who entered the funnel in the last ``window`` (whole minutes).

        >>> from rta import stream, col, funnel
        >>> events = stream("events", dimensions={"event": str}, user="user_id", keep_raw="30d")
        >>> checkout = funnel("checkout", [col("event") == "view", col("event") == "buy"], within="1h", stream=events)
        >>> (checkout.conversion.over("1h") < 0.02).describe()
        'checkout conversion over 1h < 0.02'
        """
        from rta.dsl.alert import Window, window_seconds  # alert.py checks funnels' fields: it imports rta.dsl.funnel

        seconds = window_seconds(window, f"window of funnel {self.funnel.name!r}")
        keep = self.funnel.stream.keep_raw
        if keep is not None and seconds > parse_duration(keep):
            msg = (
                f"window {window!r} of funnel {self.funnel.name!r} is longer than the raw events of stream "
                f"{self.funnel.stream.name!r} are kept ({self.funnel.stream.keep_raw}); give a shorter window"
            )
            raise DefinitionError(msg)
        return Window(self.funnel.stream, seconds, funnel=self)

    def describe(self) -> str:
        """For example ``checkout conversion``, ``checkout entered`` or ``checkout step 2 step_conversion``."""
        name, last = self.funnel.name, len(self.funnel.steps)
        if self.column == "people":
            what = "entered" if self.step == 1 else "converted" if self.step == last else f"step {self.step} people"
        else:
            what = self.column if self.step == last and self.column == "conversion" else f"step {self.step} {self.column}"
        return f"{name} {what}"

    def __repr__(self) -> str:
        return f"FunnelMeasure({self.describe()})"


@dataclass(frozen=True, slots=True)
class FunnelStep:
    """Step ``step`` (1-based) of a funnel: ``people`` who reached it, ``conversion`` (of step 1), ``step_conversion``."""

    funnel: Funnel
    step: int

    @property
    def people(self) -> FunnelMeasure:
        """People who reached this step."""
        return FunnelMeasure(self.funnel, self.step, "people")

    @property
    def conversion(self) -> FunnelMeasure:
        """People who reached this step, of those who entered the funnel (0 to 1)."""
        return FunnelMeasure(self.funnel, self.step, "conversion")

    @property
    def step_conversion(self) -> FunnelMeasure:
        """People who reached this step, of those who reached the step before (0 to 1)."""
        return FunnelMeasure(self.funnel, self.step, "step_conversion")


def funnel_step(funnel: Funnel, step: object) -> FunnelStep:
    """Step ``step`` of ``funnel``, checked: 1 to the number of steps."""
    count = len(funnel.steps)
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= count:
        msg = f"funnel {funnel.name!r} has steps 1 to {count}, got step({step!r}); steps count from 1"
        raise DefinitionError(msg)
    return FunnelStep(funnel, step)
