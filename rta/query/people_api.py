"""The query API's people endpoints: ``GET /v1/person?id=`` (a read key) and ``POST /v1/people/delete`` (an admin key).

Erasure writes the store, so it runs only in the process that holds it (the query API is served
there); an admin key is its own kind, so neither a read key of a dashboard nor a write key shipped in
an SDK can erase anyone (:mod:`rta.contract.keys`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
from clickhouse_connect.driver.client import Client

from rta.contract.http import HttpError, KeyGate
from rta.contract.keys import ApiKey, KeyStore
from rta.query.people import UnknownPerson, person
from rta.query.people_shown import properties_text
from rta.query.protocol import Workspace
from rta.store.people import erase

ADMITTED = "_admitted"  # the params entry the API sets to the admitted key (after the body, so a client cannot set it)
PERSON_PATH, DELETE_PATH = "/v1/person", "/v1/people/delete"


def _one(params: dict[str, Any], name: str) -> str:
    """A single string parameter (the query string's values are lists)."""
    value = params.get(name)
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    if not isinstance(value, str) or not value:
        raise HttpError(400, f'send the person\'s id once as {name!r} (?{name}=u1, or {{"{name}": "u1"}} in a JSON body); got {value!r}')
    return value


def _rows(timeline: pl.DataFrame) -> list[dict[str, object]]:
    rows = timeline.to_dicts()
    for row in rows:
        if "properties" in row:
            row["properties"] = dict(p.split("=", 1) for p in properties_text(row["properties"]).split(", ") if "=" in p)
    return rows


class PeopleApi:
    """The people routes, mounted by :class:`rta.query.api.QueryApi`."""

    def __init__(self, workspace: Workspace, keys: KeyStore) -> None:
        self.ws = workspace
        self.admin = KeyGate(
            keys,
            ("admin",),
            "admin key",
            missing="missing admin key: erasing people needs Authorization: Bearer <admin key> (create one with `rta keys create admin`)",
            forbidden="a {kind} key cannot erase people; use an admin key (create one with `rta keys create admin`)",
        )

    def routes(self) -> dict[tuple[str, str], tuple[Callable[[dict[str, Any]], Any], bool | KeyGate]]:
        """Route -> (handler, True for the API's read key, or the gate that admits callers)."""
        return {("GET", PERSON_PATH): (self.show, True), ("POST", DELETE_PATH): (self.delete, self.admin)}

    def show(self, params: dict[str, Any]) -> dict[str, Any]:
        """A person as JSON: ids, traits, first/last seen, the newest events (``limit``, 100 by default)."""
        limit = params.get("limit", ["100"])
        limit = limit[0] if isinstance(limit, list) else limit
        try:
            count = int(limit)
        except (TypeError, ValueError):
            raise HttpError(400, f"limit takes a whole number of events, got {limit!r}") from None
        try:
            found = person(self.ws.plan, self.ws.read, _one(params, "id"), limit=count)
        except UnknownPerson as err:
            raise HttpError(404, str(err)) from None
        return {"person": found.id, "ids": list(found.ids), "traits": dict(found.traits), "first_seen": found.first_seen,
                "last_seen": found.last_seen, "events": found.events, "timeline": _rows(found.timeline)}  # fmt: skip

    def delete(self, params: dict[str, Any]) -> dict[str, object]:
        """Erase a person (``{"id": "u1"}``): their traits, aliases and raw events; the request is recorded."""
        key = params.get(ADMITTED)
        assert isinstance(key, ApiKey)  # the API admitted it through self.admin
        client = getattr(self.ws, "client", None)
        if not isinstance(client, Client):
            raise HttpError(409, "this process does not hold the store, so it cannot erase; ask the process that does (rta run)")
        return erase(client, self.ws.plan, _one(params, "id"), f"admin key {key.id} ({key.name})").as_json()


_ID = {"name": "id", "in": "query", "required": True, "schema": {"type": "string"}, "description": "A user id or an anonymous id."}
OPENAPI_PATHS: dict[str, Any] = {
    PERSON_PATH: {
        "get": {
            "summary": "A person: ids, traits (latest per key), first/last seen, newest events",
            "parameters": [_ID, {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 100}}],
            "responses": {"200": {"description": "The person"}, "404": {"description": "Nothing is stored under that id"}},
        }
    },
    DELETE_PATH: {
        "post": {
            "summary": "Erase a person: traits, aliases and raw events of all their ids (rollups hold no personal data and stay)",
            "security": [{"adminKey": []}],
            "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {"id": {"type": "string"}}}}}},
            "responses": {"200": {"description": "What was removed"}, "403": {"description": "Not an admin key"}},
        }
    },
}
