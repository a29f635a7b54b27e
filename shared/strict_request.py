"""Request bodies read strictly by the HTTP services (FastAPI's custom route class hook).

`StrictJSONRoute`: a JSON body is parsed by `shared.strictjson.loads`, so a duplicate key or a
lone surrogate is a 422 naming its place, where Python's json would keep the last key and a
surrogate would reach the answer's encoder (a 500). Refusals are raised as `BodyRefused`, an
HTTPException: FastAPI lets only those out of its body parsing (any other error there
becomes a bare "There was an error parsing the body").
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from shared import strictjson


class BodyRefused(HTTPException):
    """A refused body: a 422 names its field in FastAPI's shape (`{"loc", "msg", "type"}`),
    another status says why in `detail`; `kind` is the refusal's name."""

    def __init__(
        self, status: int, kind: str, message: str, *, field: Sequence[str | int] | None = None
    ) -> None:
        detail: Any = message
        if field is not None:
            detail = [{"loc": ["body", *field], "msg": message, "type": kind}]
        super().__init__(status, detail)
        self.kind = kind


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = strictjson.loads(await self.body())
            except strictjson.BadJSONValue as e:
                raise BodyRefused(422, e.kind, e.message, field=e.path) from None
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose requests are `request_class`; `prepare` may set them up per route."""

    request_class: type[StrictJSONRequest] = StrictJSONRequest

    def prepare(self, request: StrictJSONRequest) -> None:
        """Set up each request before FastAPI reads it (nothing here)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            strict = self.request_class(request.scope, request.receive)
            self.prepare(strict)
            return await handler(strict)

        return strict_handler
