"""Settings from initializationOptions and workspace/didChangeConfiguration (section `rltab`)."""

from lsprotocol import types


def register(server) -> None:
    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls, params: types.DidChangeConfigurationParams):
        raw = params.settings
        if isinstance(raw, dict) and isinstance(raw.get("rltab"), dict):
            raw = raw["rltab"]
        ls.apply_settings(raw)
