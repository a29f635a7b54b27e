"""The gateway's submission routes read their bodies strictly.

JSON bodies as every service reads them (`shared/strict_request.py`: a duplicate key or a
lone surrogate is a 422 naming its place); multipart forms through `multipart.read_form`
(a truncated body is a 400; a field given twice or not UTF-8 a 422 naming it).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from starlette.datastructures import FormData

from services.gateway import multipart
from shared.strict_request import StrictJSONRequest, StrictJSONRoute


class _StrictRequest(StrictJSONRequest):
    repeatable: frozenset[str] = frozenset()  # form fields that may come more than once

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


class StrictBodyRoute(StrictJSONRoute):
    """A route whose JSON body or multipart form is read strictly (see the module's text)."""

    request_class = _StrictRequest

    def prepare(self, request: StrictJSONRequest) -> None:
        if isinstance(request, _StrictRequest):
            request.repeatable = self._repeatable

    @cached_property
    def _repeatable(self) -> frozenset[str]:
        body = self.body_field.field_info.annotation if self.body_field else None
        return list_fields(body) if isinstance(body, type) else frozenset()
