"""workspace/executeCommand: outcomes reported by the client, training and rollback."""

from rltab.feedback import rewards as R


def register(server) -> None:
    def outcome(kind):
        def handler(ls, *args):
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
