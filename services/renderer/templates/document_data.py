"""The `document` template's data: an optional title and a list of blocks.

    {"title": "Trip", "subtitle": "May 2025",
     "blocks": [{"heading": "Day 1", "level": 1}, {"paragraph": "We left early."},
                "a bare string is a paragraph too",
                {"bullets": ["tent", "stove"]}, {"numbered": ["pack", "leave"]},
                {"table": {"header": ["item", "kg"], "rows": [["tent", 2.4]]}},
                {"image": 0, "caption": "The lake", "width_mm": 120},
                {"images": "all", "columns": 4}, {"page_break": true}]}

Each block holds exactly one kind. Images name the job's inputs by index or key. With no
blocks and image inputs, the document is a contact sheet of all of them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, NonNegativeInt, model_validator

from services.renderer.models import Line, Strict, Text
from services.renderer.tables import TableData

ImageRef = NonNegativeInt | Annotated[str, Field(min_length=1, max_length=1000)]
KINDS = ("heading", "paragraph", "bullets", "numbered", "table", "image", "images", "page_break")
# Options that only make sense with one kind.
_OPTIONS = {
    "level": "heading",
    "caption": "image",
    "width_mm": "image",
    "columns": "images",
    "captions": "images",
}


class Block(Strict):
    heading: Line | None = None
    level: int = Field(default=1, ge=1, le=3)
    paragraph: Text | None = None
    bullets: list[Text] | None = Field(default=None, min_length=1)
    numbered: list[Text] | None = Field(default=None, min_length=1)
    table: TableData | None = None
    image: ImageRef | None = None
    caption: Line | None = None
    width_mm: float | None = Field(default=None, gt=0, le=1000)
    images: Literal["all"] | list[ImageRef] | None = None
    columns: int = Field(default=3, ge=1, le=8)
    captions: bool = True
    page_break: Literal[True] | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_string_is_a_paragraph(cls, value: Any) -> Any:
        return {"paragraph": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_kind(self) -> Block:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(f"a block holds exactly one of {', '.join(KINDS)} (found: {found})")
        for option, kind in _OPTIONS.items():
            if option in self.model_fields_set and given[0] != kind:
                raise ValueError(f"{option!r} goes with {kind!r} blocks only")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)


class DocumentData(Strict):
    title: Line | None = None
    subtitle: Line | None = None
    blocks: list[Block] = Field(default_factory=list)
