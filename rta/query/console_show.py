"""What the SQL console settles before parsing: ``SHOW TABLES``, and statements that cannot be a SELECT.

sqlglot parses a statement it does not know (``SHOW``, ``DESCRIBE``, ...) as an opaque command and
logs a warning for it, which the console would print before refusing it. So the statement's
tokens are looked at first: ``SHOW TABLES`` becomes a SELECT listing the names the console takes
(no table read: the names are literals), and a statement whose first word cannot start a SELECT is
refused by that word, never parsed.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlglot.expressions as exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType

from rta.query.console_functions import refusal

_SELECT_STARTS = frozenset({TokenType.SELECT, TokenType.WITH, TokenType.L_PAREN, TokenType.FROM})
_DIALECT = ClickHouse()


def _statements(text: str) -> list[list[Token]] | None:
    """The tokens of each statement (comments and empty statements left out); None when the text does not tokenize."""
    try:
        tokens = _DIALECT.tokenize(text)
    except TokenError:  # the parser says what is wrong with it
        return None
    statements: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    return [s for s in statements if s]


def is_show_tables(text: str) -> bool:
    """Whether ``text`` is ``SHOW TABLES`` (any case, an ending semicolon allowed)."""
    statements = _statements(text)
    return statements is not None and len(statements) == 1 and [t.text.upper() for t in statements[0]] == ["SHOW", "TABLES"]


def refuse_before_parsing(text: str) -> None:
    """Refuse several statements, or one whose first word cannot start a SELECT, without parsing them."""
    statements = _statements(text)
    if statements is None:
        return
    if len(statements) != 1:
        raise refusal(f"{len(statements)} statements given", "send one SELECT at a time")
    first = statements[0][0]
    if first.token_type not in _SELECT_STARTS:
        word = first.text.upper()
        hint = "SHOW TABLES lists the tables the console reads; other SHOW statements are not run" if word == "SHOW" else ""
        raise refusal(f"{word} statements are not allowed", hint or "the console is read-only: SELECT only")


def show_tables(tables: Mapping[str, str]) -> exp.Select:
    """``SHOW TABLES`` as a SELECT: each name the console takes (``name``) and the store's table it reads (``stored_as``).

    Real names that have a friendlier one are left out; the rows are literals, so nothing is read.
    """
    friendly = {real for name, real in tables.items() if name != real}
    rows = sorted((name, real) for name, real in tables.items() if name != real or real not in friendly)
    pairs = exp.Array(expressions=[exp.Tuple(expressions=[exp.Literal.string(n), exp.Literal.string(r)]) for n, r in rows])
    listed = exp.select(exp.alias_(exp.func("arrayJoin", pairs), "_row")).subquery("_tables")
    row = exp.column("_row")
    columns = [exp.alias_(exp.func("tupleElement", row.copy(), exp.Literal.number(i)), c) for i, c in ((1, "name"), (2, "stored_as"))]
    return exp.select(*columns).from_(listed).order_by(exp.column("name"))
