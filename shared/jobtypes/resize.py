"""The `resize` job type: one uploaded image in, one output per requested size out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.json_schema import JsonDict, JsonValue

from shared.config import Settings
from shared.jobtypes.models import Strict
from shared.jobtypes.spec import CliOption, FormField, JobTypeSpec, ParamsRefused, Upload

_SIZE = re.compile(r"^(?P<w>[1-9][0-9]{0,4})?(?:x(?P<h>[1-9][0-9]{0,4})?)?$")
# `_SIZE` with at least one side, around what strip() takes: for the OpenAPI document.
SIZE_PATTERN = r"^\s*(?:[1-9][0-9]{0,4}(?:x(?:[1-9][0-9]{0,4})?)?|x[1-9][0-9]{0,4})\s*$"
SizeText = Annotated[str, WithJsonSchema({"type": "string", "pattern": SIZE_PATTERN})]


def _side_given(side: str) -> JsonDict:
    return {"required": [side], "properties": {side: {"type": "integer"}}}


def _one_of_sides(*sides: str) -> list[JsonValue]:
    return [_side_given(side) for side in sides]


_SOME_SIZES: JsonDict = {
    "required": ["sizes"],
    "properties": {"sizes": {"type": "array", "minItems": 1}},
}


class Size(Strict):
    model_config = ConfigDict(json_schema_extra={"anyOf": _one_of_sides("width", "height")})

    width: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_side_at_least(self) -> Size:
        if self.width is None and self.height is None:
            raise ValueError("give width, height or both")
        return self


class ResizeParams(Strict):
    # In the OpenAPI document too: width and/or height, or else sizes (an empty list of
    # sizes counts as none).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                *[{**_side_given(side), "not": _SOME_SIZES} for side in ("width", "height")],
                {**_SOME_SIZES, "not": {"anyOf": _one_of_sides("width", "height")}},
            ]
        }
    )

    width: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=1)
    fit: Literal["contain", "cover", "exact"] = "contain"
    format: Literal["jpeg", "png", "webp"] | None = None
    quality: int = Field(default=85, ge=1, le=95)
    sizes: list[Size] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _some_size(self) -> ResizeParams:
        if self.sizes and (self.width is not None or self.height is not None):
            raise ValueError("give either width/height or sizes, not both")
        if not self.sizes and self.width is None and self.height is None:
            raise ValueError("give width, height or sizes")
        return self

    def boxes(self) -> list[Size]:
        """Every requested size, the single one included."""
        return list(self.sizes) or [Size(width=self.width, height=self.height)]


@dataclass(frozen=True)
class ResizeLimits:
    max_image_pixels: int  # MAX_IMAGE_PIXELS: of an input, and of any one output
    max_output_side: int  # MAX_OUTPUT_SIDE

    @classmethod
    def from_settings(cls, settings: Settings) -> ResizeLimits:
        return cls(settings.max_image_pixels, settings.max_output_side)


def check_sides(params: ResizeParams, limits: ResizeLimits) -> None:
    """Refuse a requested side over MAX_OUTPUT_SIDE before any pixel is decoded."""
    sides: list[tuple[tuple[str | int, ...], int | None]]
    if params.sizes:
        sides = [
            (("sizes", i, name), getattr(box, name))
            for i, box in enumerate(params.sizes)
            for name in ("width", "height")
        ]
    else:
        sides = [(("width",), params.width), (("height",), params.height)]
    for field, value in sides:
        if value is not None and value > limits.max_output_side:
            message = f"{value} is absurd: a side may be at most {limits.max_output_side} pixels"
            raise ParamsRefused(field, message, "too_large")


def parse_sizes(texts: list[str] | None) -> list[Size]:
    """`800x600`, `800` (width only) or `x600` (height only) each, as the form's `sizes`."""
    sizes = []
    for index, text in enumerate(texts or []):
        match = _SIZE.match(text.strip())
        if not match or not (match["w"] or match["h"]):
            message = "must be WIDTHxHEIGHT, WIDTH or xHEIGHT, e.g. 800x600"
            raise ParamsRefused(("sizes", index), message, "invalid")
        width, height = match["w"], match["h"]
        sizes.append(
            Size(width=int(width) if width else None, height=int(height) if height else None)
        )
    return sizes


RESIZE: JobTypeSpec[ResizeParams, ResizeLimits] = JobTypeSpec(
    name="resize",
    service="resizer",
    summary="Resize an uploaded image to `width`/`height`, or to each of several `sizes`.",
    params=ResizeParams,
    limits=ResizeLimits.from_settings,
    check=check_sides,
    upload=Upload("the image: JPEG, PNG, WebP or GIF"),
    form={
        "sizes": FormField(
            list[SizeText] | None, parse_sizes, "a thumbnail set: repeat as 800x600, 800 or x600"
        )
    },
    cli=(
        CliOption("--width", "width", "width in pixels", int),
        CliOption("--height", "height", "height in pixels", int),
        CliOption("--fit", "fit", "contain, cover or exact"),
        CliOption("--format", "format", "jpeg, png or webp"),
        CliOption("--quality", "quality", "1-95", int),
        CliOption("--size", "sizes", "a thumbnail set: repeat, e.g. --size 800x600", many=True),
    ),
)
