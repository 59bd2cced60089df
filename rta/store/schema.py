"""Create what a plan needs in the store; safe to run at every start."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from rta.compiler.plan import Plan


def apply(plan: Plan, client: Client) -> int:
    """Run every DDL statement of ``plan`` (all are ``IF NOT EXISTS``); returns how many ran."""
    for statement in plan.ddl:
        client.command(statement.sql(dialect="clickhouse"))
    return len(plan.ddl)
