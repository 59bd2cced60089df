"""Create what a plan needs in the store; safe to run at every start."""

from __future__ import annotations

import sqlglot.expressions as exp
from clickhouse_connect.driver.client import Client

from rta.compiler.plan import Plan
from rta.compiler.sessions_ddl import rollup_backfill
from rta.store.properties import forget


def apply(plan: Plan, client: Client) -> int:
    """Run every DDL statement of ``plan`` (all are ``IF NOT EXISTS``); returns how many ran.

    Versioned tables never change shape; the few unversioned ones (the ingest tally) get
    columns added by newer releases, so stores created by an older rta keep working.
    """
    forget()  # materialized property columns are read again from the tables made here
    tables = {str(t) for (t,) in client.query("SELECT name FROM system.tables WHERE database = currentDatabase()").result_rows}
    for statement in plan.ddl:
        client.command(statement.sql(dialect="clickhouse"))
    for visits in (s.sessions for s in plan.streams if s.sessions is not None):
        if visits.rollup not in tables and visits.table in tables:  # a store from before the rollup: sum what it holds
            client.command(rollup_backfill(visits).sql(dialect="clickhouse"), settings={"insert_deduplicate": 0})
    rows = client.query("SELECT table, name, default_kind FROM system.columns WHERE database = currentDatabase()").result_rows
    have = {(str(table), str(name)) for table, name, _ in rows}
    plain = {(str(table), str(name)) for table, name, kind in rows if not kind}
    for statement in plan.ddl:
        for alter in _missing_columns(statement, have):
            client.command(alter.sql(dialect="clickhouse"))
        for command in _missing_defaults(statement, plain):
            client.command(command)
    rows = client.query("SELECT table, name FROM system.projections WHERE database = currentDatabase()").result_rows
    projected = {(str(table), str(name)) for table, name in rows}
    for statement in plan.ddl:
        for command in _missing_projections(statement, projected):
            client.command(command)
    return len(plan.ddl)


def _missing_projections(create: exp.Expr, have: set[tuple[str, str]]) -> list[str]:
    """Projections a newer rta adds to an existing grain table."""
    if not isinstance(create, exp.Create) or not isinstance(create.this, exp.Schema):
        return []
    table = create.this.this.name  # identifiers rta made (validated names), never user text
    missing = [p for p in create.this.expressions if isinstance(p, exp.ProjectionDef) and (table, p.name) not in have]
    if not missing:
        return []
    # Parts written from now on carry them, and merges rebuild older parts with them; building them
    # for all the rows already stored (MATERIALIZE) would hold up the start of a large store.
    commands = [f"ALTER TABLE {table} MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild'"]
    for projection in missing:
        body = projection.sql(dialect="clickhouse").removeprefix("PROJECTION ")
        commands.append(f"ALTER TABLE {table} ADD PROJECTION IF NOT EXISTS {body}")
    return commands


def _missing_columns(create: exp.Expr, have: set[tuple[str, str]]) -> list[exp.Alter]:
    if not isinstance(create, exp.Create) or create.kind != "TABLE" or not isinstance(create.this, exp.Schema):
        return []
    table = create.this.this
    return [
        exp.Alter(this=table.copy(), kind="TABLE", actions=[_added(c)])
        for c in create.this.expressions
        if isinstance(c, exp.ColumnDef) and (table.name, c.name) not in have
    ]


def _missing_defaults(create: exp.Expr, plain: set[tuple[str, str]]) -> list[str]:
    """``MODIFY COLUMN`` for columns an older rta made without the DEFAULT they have now (the raw
    table's property maps, parsed from the flow's JSON texts since then): metadata only."""
    if not isinstance(create, exp.Create) or create.kind != "TABLE" or not isinstance(create.this, exp.Schema):
        return []
    table = create.this.this.name  # identifiers rta made (validated names), never user text; sqlglot has no MODIFY COLUMN
    return [
        f"ALTER TABLE {table} MODIFY COLUMN {c.sql(dialect='clickhouse')}"
        for c in create.this.expressions
        if isinstance(c, exp.ColumnDef) and (table, c.name) in plain and c.find(exp.DefaultColumnConstraint) is not None
    ]


def _added(column: exp.ColumnDef) -> exp.ColumnDef:
    """``column`` as ``ADD COLUMN IF NOT EXISTS`` takes it, with its constraints (``EPHEMERAL``, ``DEFAULT ...``)."""
    added = column.copy()
    added.set("exists", True)
    return added
