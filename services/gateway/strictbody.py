"""The gateway's submission routes read their bodies strictly (FastAPI's custom route class).

JSON bodies through `strictjson.loads`; multipart forms through `multipart.read_form`. A
refusal with a place (a duplicate key, a lone surrogate, a duplicate form field) or of a
whole body (a truncated multipart body) is raised as `BodyRefused`, an HTTPException:
FastAPI lets those out of its body parsing, where any other error would become a bare
"There was an error parsing the body".
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import FormData

from services.gateway import multipart, strictjson
from services.gateway.rejections import BodyRefused


class _StrictRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = strictjson.loads(await self.body())
            except strictjson.BadJSONValue as e:
                raise BodyRefused(422, e.kind, e.message, field=e.path) from None
        return self._json

    async def _get_form(
        self,
        *,
        max_files: int | float = 1000,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> FormData:
        # Starlette's own reading (the overridden method) accepts a body without its closing
        # boundary and a field given twice; ours refuses both.
        if self._form is None and multipart.is_multipart(self.headers):
            self._form = await multipart.read_form(
                self.headers,
                self.stream(),
                max_files=max_files,
                max_fields=max_fields,
                max_part_size=max_part_size,
            )
        return await super()._get_form(
            max_files=max_files, max_fields=max_fields, max_part_size=max_part_size
        )


class StrictBodyRoute(APIRoute):
    """A route whose JSON body or multipart form is read strictly (see the module's text)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_body_handler(request: Request) -> Response:
            return await handler(_StrictRequest(request.scope, request.receive))

        return strict_body_handler
