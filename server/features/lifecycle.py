"""initialize, initialized, shutdown: what the client says it can do (position encoding, inline
completions, file watchers, workspace folders), the settings it starts with, then the server's
background work (retention checks, the model's warm-up, the workspace watch)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder

from ..settings import parse_settings

if TYPE_CHECKING:  # the server class imports these modules
    from ..app import RltabServer


def register(server: RltabServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: RltabServer, params: types.InitializeParams):
        ls.service.documents.encoding = ServerCapabilitiesBuilder.choose_position_encoding(params.capabilities)
        settings, warnings = parse_settings(params.initialization_options, ls.service.settings)
        ls.service.configure(settings)
        ls._init_warnings = warnings  # shown once the client is ready for messages
        notice = ls.service.records.notice()  # a home that cannot be written, from the start
        if notice is not None:
            ls._init_warnings.append(notice)
        ls._watch_files = bool(
            getattr(
                getattr(getattr(params.capabilities, "workspace", None), "did_change_watched_files", None),
                "dynamic_registration",
                False,
            )
        )
        ls.inline_client = getattr(params.capabilities.text_document, "inline_completion", None) is not None
        folders = [f.uri for f in params.workspace_folders or []] or [params.root_uri or params.root_path or ""]
        ls.service.open_workspace([f for f in folders if f])  # indexed in the background

    @server.feature(types.INITIALIZED)
    def initialized(ls: RltabServer, params: types.InitializedParams):
        ls._loop = asyncio.get_running_loop()
        ls.updater.ensure(ls.service.settings.trains)
        for w in ls._init_warnings:
            ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=w))
        ls.start_background(ls._checks_loop())
        ls.start_background(ls._warm_up())
        if ls._watch_files:  # keep the workspace index current when files change on disk
            ls.start_background(ls._watch_workspace())

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: RltabServer, *args):
        ls.service.executor.shutdown(wait=False, cancel_futures=True)
        ls.updater.stop()
