"""How values show themselves: short text for ``__repr__``, small HTML cards and tables for Jupyter.

DSL values, query results, explanations and backtests build their ``__repr__`` and ``_repr_html_``
from these helpers, so they look alike and stay short however large the object is (a metric
filtering on a list of 10,000 users, a result of a million rows): text is cut with ``…``, lists
name their first items and how many more, tables show their first rows. Every string that comes
from a user goes through :func:`html.escape`; nothing is fetched at view time (no scripts, no
stylesheets, inline styles only, so an untrusted notebook shows the same thing).

The layer above (the workspace) uses them for its own reprs::

    text = block("Workspace shop", ["store chdb://.rta/data", "metrics " + listed(names)])
    page = card("Workspace", "shop", [("store", dsn), ("metrics", listed(names))])
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence

ELLIPSIS = "…"
#: One-line reprs are cut to this many characters.
LINE = 160
#: Lists name this many items, then how many more.
ITEMS = 6
#: Text reprs of several lines show at most this many.
LINES = 12
#: HTML tables show at most this many rows.
ROWS = 12
#: A value in an HTML card is cut to this many characters.
CELL = 400


def cut(text: str, limit: int = LINE) -> str:
    """``text`` if it fits in ``limit`` characters, else its start and ``…``.

    >>> cut("abcdefgh", 5)
    'abcd…'
    """
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + ELLIPSIS


def listed(items: Iterable[object], limit: int = ITEMS, *, show: Callable[[object], str] = str, sep: str = ", ") -> str:
    """The first ``limit`` items shown and joined, then how many more.

    >>> listed(["US", "DE", "FR", "JP"], 2)
    'US, DE, … 2 more'
    """
    values = list(items)
    shown = [show(v) for v in values[:limit]]
    if len(values) > limit:
        shown.append(f"{ELLIPSIS} {len(values) - limit:,} more")
    return sep.join(shown)


def quoted(value: object) -> str:
    """A scalar as Python code, strings in double quotes as ruff writes them.

    >>> quoted("purchase"), quoted("it's"), quoted(2.5), quoted(True)
    ('"purchase"', '"it\\'s"', '2.5', 'True')
    """
    text = repr(value)
    if isinstance(value, str) and text.startswith("'") and '"' not in value:
        return '"' + text[1:-1] + '"'  # no quote of either kind inside: only the delimiters change
    return text


def block(header: str, lines: Iterable[str], *, limit: int = LINES, width: int = LINE) -> str:
    """A text repr of a few lines: ``header``, then ``lines`` indented; at most ``limit`` lines in all, each cut to ``width``.

    >>> print(block("Rollup traffic", ["by country", "keep 1h 90d"]))
    Rollup traffic
      by country
      keep 1h 90d
    """
    body, room = list(lines), limit - 1
    if len(body) > room:
        body = [*body[: room - 1], f"{ELLIPSIS} {len(body) - room + 1:,} more lines"]
    return "\n".join([cut(header, width), *(cut("  " + line, width) for line in body)])


def span(seconds: float) -> str:
    """A length of time in its two largest units.

    >>> span(7.2), span(303), span(7_800), span(270_000)
    ('7s', '5m 3s', '2h 10m', '3d 3h')
    """
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    parts = [(whole // 86400, "d"), (whole % 86400 // 3600, "h"), (whole % 3600 // 60, "m"), (whole % 60, "s")]
    first = next(i for i, (n, _) in enumerate(parts) if n)
    return " ".join(f"{n}{unit}" for n, unit in parts[first : first + 2] if n)


class Html(str):
    """Markup that is already safe: :func:`escape` passes it through unchanged."""

    __slots__ = ()


def escape(value: object, limit: int = CELL) -> str:
    """``value`` as HTML text: cut to ``limit`` characters and escaped, unless it is :class:`Html` already.

    >>> escape("<b>&"), escape(Html("<b>x</b>"))
    ('&lt;b&gt;&amp;', '<b>x</b>')
    """
    if isinstance(value, Html):
        return str(value)
    return html.escape(cut("" if value is None else str(value), limit))


_CARD = (
    "display:inline-block;max-width:100%;box-sizing:border-box;border:1px solid rgba(127,127,127,.35);"
    "border-radius:6px;padding:6px 10px;margin:2px 0;font-size:13px;line-height:1.45"
)
_MUTED = "opacity:.65"
_CELL = "text-align:left;vertical-align:top;padding:1px 12px 1px 0"
_CODE = "font-family:var(--jp-code-font-family,monospace);font-size:12px;white-space:pre-wrap;word-break:break-word"


def code(text: str, limit: int = CELL) -> Html:
    """``text`` (cut, escaped) in a code font.

    >>> code('col("a") == "<x>"')
    '<code style="...">col(&quot;a&quot;) == &quot;&lt;x&gt;&quot;</code>'
    """
    return Html(f'<code style="{_CODE}">{escape(text, limit)}</code>')


def muted(text: str) -> Html:
    """``text`` (escaped) in a lighter color."""
    return Html(f'<span style="{_MUTED}">{escape(text)}</span>')


def html_table(columns: Sequence[str], rows: Iterable[Sequence[object]], *, limit: int = ROWS) -> Html:
    """An HTML table of the first ``limit`` rows; cells are escaped (pass :class:`Html` for markup), a last line counts the rest.

    >>> html_table(["metric", "value"], [["a<b", 1], ["c", 2], ["d", 3]], limit=2).count("<tr>")
    3
    """
    head = "".join(f'<th style="{_CELL}">{escape(c)}</th>' for c in columns)
    lines, more = [], 0
    for i, row in enumerate(rows):
        if i < limit:
            lines.append("<tr>" + "".join(f'<td style="{_CELL}">{escape(v)}</td>' for v in row) + "</tr>")
        else:
            more += 1
    tail = f'<div style="{_MUTED}">{ELLIPSIS} {more:,} more</div>' if more else ""
    return Html(f'<table style="border-collapse:collapse;margin:2px 0"><tr>{head}</tr>{"".join(lines)}</table>{tail}')


def card(
    kind: str, title: str, rows: Iterable[tuple[str, object]] = (), *, subtitle: str | None = None, extra: Iterable[Html] = ()
) -> Html:
    """A small box: ``kind`` and ``title`` on top, then a key/value row per ``rows`` item, then ``extra`` markup.

    Values are cut and escaped (pass :class:`Html`, e.g. :func:`code` or :func:`table`, for markup);
    rows whose value is ``None`` or empty are left out.

    >>> page = card("Metric", "revenue", [("definition", code('total("revenue")')), ("unit", None)])
    >>> page.count("<tr>"), "unit" in page, "<b>revenue</b>" in page
    (1, False, True)
    """
    head = f'<span style="{_MUTED}">{escape(kind)}</span> <b>{escape(title)}</b>'
    if subtitle:
        head += f' <span style="{_MUTED}">{escape(subtitle)}</span>'
    body = "".join(
        f'<tr><th style="{_CELL};font-weight:normal;{_MUTED}">{escape(key)}</th><td style="{_CELL}">{escape(value)}</td></tr>'
        for key, value in rows
        if value is not None and value != ""
    )
    table_html = f'<table style="border-collapse:collapse;margin:2px 0">{body}</table>' if body else ""
    return Html(f'<div style="{_CARD}"><div>{head}</div>{table_html}{"".join(extra)}</div>')
