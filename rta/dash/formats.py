"""Numbers as people read them: 1.2M, $3.4K, 12.5%, 840 ms. The same rules in Python (tiles,
tables) and in Vega expressions (axes, tooltips)."""

from __future__ import annotations

CURRENCY = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def is_percent(unit: str | None) -> bool:
    """Ratios with unit ``%`` hold fractions (0.031 is 3.1%)."""
    return unit == "%"


def format_number(value: float | None, unit: str | None = None) -> str:
    """A compact, unit-aware label.

    >>> format_number(1234567), format_number(3400.0, "USD"), format_number(0.0312, "%"), format_number(842.4, "ms")
    ('1.2M', '$3.4K', '3.1%', '842 ms')
    """
    if value is None or value != value:  # None or NaN
        return "–"
    if is_percent(unit):
        return f"{value * 100:.1f}%"
    magnitude = abs(value)
    text = ""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if magnitude >= limit:
            text = f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
            break
    else:
        text = f"{value:,.0f}" if magnitude >= 100 or float(value).is_integer() else f"{value:.3g}" if magnitude >= 1 else f"{value:.2g}"
    prefix = CURRENCY.get(unit or "")
    if prefix:
        return ("-" if value < 0 else "") + prefix + text.lstrip("-")
    return f"{text} {unit}" if unit else text


def format_change(current: float | None, previous: float | None, unit: str | None = None) -> tuple[str, int]:
    """The change against the previous period as text and its sign (+1, 0, -1).

    >>> format_change(120.0, 100.0), format_change(0.05, 0.04, "%"), format_change(5.0, 0.0), format_change(2e6, 26.0)
    (('+20.0%', 1), ('+1.0 pts', 1), ('new', 1), ('76,923×', 1))
    """
    if current is None or previous is None or current != current or previous != previous:
        return "–", 0
    sign = (current > previous) - (current < previous)
    if is_percent(unit):
        return f"{(current - previous) * 100:+.1f} pts", sign
    if previous == 0:
        return ("new", sign) if current else ("±0%", 0)
    if previous > 0 and current / previous >= 10:  # +7,627,472% reads worse than 76,275×
        return f"{current / previous:,.0f}×", sign
    return f"{(current - previous) / abs(previous) * 100:+.1f}%", sign


def vega_label(unit: str | None, field: str = "datum.value") -> str:
    """A Vega expression formatting ``field`` like :func:`format_number` (for ``labelExpr``)."""
    if is_percent(unit):
        return f"format({field}, '.1%')"
    # d3's SI prefixes: k for thousands and G for billions; people expect K and B.
    compact = f"(abs({field}) < 1 ? format({field}, '.2~f') : replace(replace(format({field}, '.3~s'), 'k', 'K'), 'G', 'B'))"
    prefix = CURRENCY.get(unit or "")
    if prefix:
        return f"'{prefix}' + {compact}"
    return f"{compact} + ' {unit}'" if unit else compact
