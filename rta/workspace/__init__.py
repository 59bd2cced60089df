"""The notebook facade: ``rta.connect()`` and the workspace it opens, above every layer it offers.

A :class:`Workspace` queries a project's store directly; a :class:`RemoteWorkspace` asks the
REST API of the `rta run` that owns an embedded store. See ``docs/architecture.md`` ("Layers").
"""

from rta.workspace.remote import RemoteWorkspace as RemoteWorkspace
from rta.workspace.workspace import Workspace as Workspace
from rta.workspace.workspace import connect as connect

__all__ = ["RemoteWorkspace", "Workspace", "connect"]
