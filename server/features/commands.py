"""workspace/executeCommand: outcomes reported by the client, training and rollback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rltab.feedback import rewards as R

if TYPE_CHECKING:  # the server class imports these modules
    from ..app import RltabServer


def register(server: RltabServer) -> None:
    def outcome(kind):
        def handler(ls, *args):  # untyped: pygls reads command handlers' hints at run time
            result = ls.user_call(ls.service.explicit, kind, list(args))
            ls.send_status()
            return result

        return handler

    server.command("rltab.accepted")(outcome(R.ACCEPTED))
    server.command("rltab.partiallyAccepted")(outcome(R.PARTIAL))
    server.command("rltab.rejected")(outcome(R.REJECTED))

    @server.command("rltab.train")
    def train(ls, *args):
        return ls.user_call(ls.train)

    @server.command("rltab.rollback")
    def rollback(ls, *args):
        result = ls.user_call(ls.rollback, *args[:1])
        ls.send_status()
        return result
