"""The gateway's submission routes read their bodies strictly (FastAPI's custom route class).

JSON bodies through `strictjson.loads`; multipart forms through `multipart.read_form`. A
refusal with a place (a duplicate key, a lone surrogate, a duplicate form field) or of a
whole body (a truncated multipart body) is raised as `BodyRefused`, an HTTPException:
FastAPI lets those out of its body parsing, where any other error would become a bare
"There was an error parsing the body".
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, get_args, get_origin

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.datastructures import FormData

from services.gateway import multipart, strictjson
from services.gateway.rejections import BodyRefused


class _StrictRequest(Request):
    repeatable: frozenset[str] = frozenset()  # form fields that may come more than once

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
                repeatable=self.repeatable,
            )
        return await super()._get_form(
            max_files=max_files, max_fields=max_fields, max_part_size=max_part_size
        )


def list_fields(model: type) -> frozenset[str]:
    """The fields of a form model that take a list: those a form gives by repeating them."""
    if not issubclass(model, BaseModel):
        return frozenset()
    return frozenset(
        name for name, info in model.model_fields.items() if _takes_list(info.annotation)
    )


def _takes_list(annotation: Any) -> bool:
    """`list[X]`, or a union with one (`list[str] | None`)."""
    return any(get_origin(a) is list for a in (annotation, *get_args(annotation)))


class StrictBodyRoute(APIRoute):
    """A route whose JSON body or multipart form is read strictly (see the module's text)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        body = self.body_field.field_info.annotation if self.body_field else None
        repeatable = list_fields(body) if isinstance(body, type) else frozenset()

        async def strict_body_handler(request: Request) -> Response:
            strict = _StrictRequest(request.scope, request.receive)
            strict.repeatable = repeatable
            return await handler(strict)

        return strict_body_handler
