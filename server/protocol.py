"""pygls' protocol, with one fix: a request whose params fail to deserialize gets an error
response (pygls 2.1 logs it and answers nothing, leaving the client waiting forever)."""
from __future__ import annotations

import logging

from cattrs import transform_error
from cattrs.errors import ClassValidationError
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol

log = logging.getLogger(__name__)


class _Answered:
    """Stands in for a message already answered with an error; pygls ignores it."""

    jsonrpc = "answered"


class RltabProtocol(LanguageServerProtocol):
    def structure_message(self, data):
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "id" in data and "method" in data:
                cause = exc.__cause__
                why = "; ".join(transform_error(cause)) if isinstance(cause, ClassValidationError) else str(cause or exc)
                err = JsonRpcInvalidParams(f"invalid params for {data['method']}: {why}")
                self._send_response(data["id"], error=err.to_response_error())
                return _Answered()
            raise
