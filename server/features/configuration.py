"""Settings from initializationOptions and workspace/didChangeConfiguration (section `rltab`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:  # the server class imports these modules
    from ..app import RltabServer


def register(server: RltabServer) -> None:
    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: RltabServer, params: types.DidChangeConfigurationParams):
        raw = params.settings
        if isinstance(raw, dict) and isinstance(raw.get("rltab"), dict):
            raw = raw["rltab"]
        ls.apply_settings(raw)
