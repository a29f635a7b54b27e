"""Reading a multipart form strictly: what Starlette's parser lets through, refused.

- a body that ends before its closing boundary (`--<boundary>--`): a truncated upload
  would otherwise be taken as complete when it ends between two parts;
- a field given more than once, unless it takes a list (`sizes`): the model would silently
  take one of them;
- a field value that is not UTF-8: Starlette falls back to Latin-1, making other text.

Each refusal is a `BodyRefused` naming the problem (400 for the body, 422 for a field).
`request_form` reads a submission's form as FastAPI would have for a form parameter (its
limits, its 400 for a body that breaks off), with these refusals added.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager

from starlette.datastructures import FormData, Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from shared.strict_request import BodyRefused

MEDIA_TYPE = "multipart/form-data"
# Starlette's own limits for `Request.form()`, which FastAPI used for a form parameter.
MAX_FILES = 1000
MAX_FIELDS = 1000
MAX_PART_BYTES = 1024 * 1024  # a field's text; files spool to disk past this instead


def is_multipart(headers: Headers) -> bool:
    return headers.get("content-type", "").split(";")[0].strip().lower() == MEDIA_TYPE


class _StrictParser(MultiPartParser):
    """Starlette's parser, noting whether the closing boundary came and which fields were
    not UTF-8 (it uses the private `_current_part` the base class keeps)."""

    closed = False

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.not_utf8: list[str] = []

    def on_part_end(self) -> None:
        part = self._current_part
        if part.file is None:
            try:
                bytes(part.data).decode("utf-8")
            except UnicodeDecodeError:
                self.not_utf8.append(part.field_name)
        super().on_part_end()

    def on_end(self) -> None:
        self.closed = True


@asynccontextmanager
async def request_form(request: Request, repeatable: frozenset[str]) -> AsyncIterator[FormData]:
    """The request's form for the block, its files closed after: a multipart body read
    strictly, any other (urlencoded, or none) as Starlette reads it. `repeatable`: the fields
    that take a list. An error other than a refusal while reading (the client went away) is
    FastAPI's 400 for a body it could not parse."""
    try:
        if is_multipart(request.headers):
            form = await read_form(
                request.headers,
                request.stream(),
                max_files=MAX_FILES,
                max_fields=MAX_FIELDS,
                max_part_size=MAX_PART_BYTES,
                repeatable=repeatable,
            )
        else:
            form = await request.form()
    except HTTPException:
        raise
    except Exception as e:
        raise HTTPException(400, "There was an error parsing the body") from e
    try:
        yield form
    finally:
        await form.close()


async def read_form(
    headers: Headers,
    stream: AsyncGenerator[bytes, None],
    *,
    max_files: int | float,
    max_fields: int | float,
    max_part_size: int,
    repeatable: frozenset[str] = frozenset(),
) -> FormData:
    """The form, read whole; `repeatable`: fields that may come more than once (lists)."""
    parser = _StrictParser(
        headers, stream, max_files=max_files, max_fields=max_fields, max_part_size=max_part_size
    )
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise BodyRefused(400, "bad_multipart", f"not a multipart body: {e.message}") from None
    finally:
        await stream.aclose()
    try:
        _check(parser, form, repeatable)
    except BodyRefused:
        await form.close()
        raise
    return form


def _check(parser: _StrictParser, form: FormData, repeatable: frozenset[str]) -> None:
    if not parser.closed:
        raise BodyRefused(
            400,
            "truncated_multipart",
            "the multipart body ends without its closing boundary (--<boundary>--):"
            " it was cut short; send it whole",
        )
    if parser.not_utf8:
        name = parser.not_utf8[0]
        raise BodyRefused(422, "not_utf8", "the field's value is not UTF-8 text", field=(name,))
    counts = Counter(name for name, _ in form.multi_items())
    for name, count in counts.items():
        if count > 1 and name not in repeatable:
            message = f"the form field {name!r} is given {count} times; give it once"
            raise BodyRefused(422, "duplicate_field", message, field=(name,))
