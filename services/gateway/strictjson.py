"""JSON as RFC 8259 has it, for request bodies and the `then` form field.

Python's `json` takes `NaN` and `Infinity`, which pydantic then writes back as `null`: a job
would silently carry other data than was sent. Every way a body can fail to be JSON (those
constants, invalid UTF-8, nesting too deep for the parser, integers too long to convert) is
raised as `json.JSONDecodeError`, which FastAPI answers with a 422 naming the problem
instead of a bare "There was an error parsing the body".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class _NotJSONNumber(ValueError):
    def __init__(self, constant: str) -> None:
        super().__init__(constant)
        self.constant = constant


def _refuse_constant(constant: str) -> Any:
    raise _NotJSONNumber(constant)


def loads(data: bytes | str) -> Any:
    """`json.loads` that accepts only JSON; anything else is a `json.JSONDecodeError`."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise json.JSONDecodeError("not UTF-8 text", repr(data[:64]), e.start) from None
    else:
        text = data
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except _NotJSONNumber as e:
        message = f"{e.constant} is not a JSON number"
        raise json.JSONDecodeError(message, text, max(text.find(e.constant), 0)) from None
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError as e:
        # Python refuses to convert integers of more than 4,300 digits (CVE-2020-10735).
        raise json.JSONDecodeError(f"number too long: {e}", text, 0) from None


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is parsed by `loads` (FastAPI's custom route class hook)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_json_handler(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict_json_handler
