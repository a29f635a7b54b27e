"""The `data` of each render template: checked by the gateway at submission, and by the
renderer again (naming the field, `data.blocks.2.table.rows.0: …`).

document:
    {"title": "Trip", "subtitle": "May 2025",
     "blocks": [{"heading": "Day 1", "level": 1}, {"paragraph": "We left early."},
                "a bare string is a paragraph too",
                {"bullets": ["tent", "stove"]}, {"numbered": ["pack", "leave"]},
                {"table": {"header": ["item", "kg"], "rows": [["tent", 2.4]]}},
                {"image": 0, "caption": "The lake", "width_mm": 120},
                {"images": "all", "columns": 4}, {"page_break": true}]}
  Each block holds exactly one kind. Images name the job's inputs by index or key. With no
  blocks and image inputs, the document is a contact sheet of all of them.
invoice:
    seller/buyer (name, address), items (description; quantity as an integer or a decimal
    string; unit_price and vat_rate as decimal strings, vat_rate a fraction: "0.19" is 19 %),
    currency, number, issue_date, due_date.
report:
    {"title": "Q2 sales", "subtitle": "Region north",
     "sections": [{"heading": "Summary", "text": "Para one.\\n\\nPara two.",
                   "table": {"header": ["month", "units"], "rows": [["April", 120]]}}]}
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictInt,
    WithJsonSchema,
    model_validator,
)

from shared.jobtypes.models import Strict, of_json_type

Text = Annotated[str, Field(max_length=100_000)]
Line = Annotated[str, Field(min_length=1, max_length=500)]
# A table cell: text, a number (right-aligned) or a boolean; null prints as an empty cell.
Cell = str | StrictBool | StrictInt | StrictFloat | None


_DECIMAL = re.compile(r"^-?\d{1,12}(\.\d{1,6})?$")
_FRACTION = re.compile(r"^0(\.\d{1,6})?$")
_DECIMAL_SCHEMA = {"type": "string", "pattern": _DECIMAL.pattern}


def _no_json_number(value: Any) -> Any:
    """A JSON number for money would be a float somewhere on its way: refuse it by name."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        example = value if isinstance(value, int) else f"{value:.2f}"
        raise ValueError(f'send money as a decimal string such as "{example}", not a number')
    return value


Decimal = Annotated[str, Field(pattern=_DECIMAL.pattern), BeforeValidator(_no_json_number)]
"""Money travels as a decimal string, never as a JSON number (floats lose cents)."""


def _quantity(value: Any) -> int | str:
    """A JSON integer (`2`) or a decimal string (`"1.5"`); a float or anything else is
    refused with the form to use."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**12:
        return value
    if isinstance(value, str) and _DECIMAL.match(value):
        return value
    if isinstance(value, float):
        raise ValueError(f'send a quantity as an integer or a decimal string such as "{value}"')
    raise ValueError(
        'must be an integer below 10^12 or a decimal string such as "1.5" (up to 12 digits'
        " and 6 decimals)"
    )


Quantity = Annotated[
    int | str,
    PlainValidator(_quantity),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": -(10**12 - 1), "maximum": 10**12 - 1},
                _DECIMAL_SCHEMA,
            ],
            "description": 'an integer, or a decimal string such as "1.5"',
        }
    ),
]


def _vat_rate(value: Any) -> str:
    _no_json_number(value)
    if not isinstance(value, str) or not _DECIMAL.match(value):
        raise ValueError('must be a decimal string such as "0.19"')
    if not _FRACTION.match(value):  # "19", "1", "-0.1": 0.19 was meant, or a typo
        raise ValueError('a VAT rate is a fraction from 0 to below 1: send "0.19" for 19 %')
    return value


VatRate = Annotated[
    str,
    PlainValidator(_vat_rate),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _FRACTION.pattern,
            "description": 'a fraction from 0 to below 1, as a decimal string: "0.19" is 19 %',
        }
    ),
]


class TableData(Strict):
    # In the OpenAPI document too: a header, rows or both (rows of equal length it cannot say).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["header"], "properties": {"header": {"minItems": 1}}},
                {"required": ["rows"], "properties": {"rows": {"minItems": 1}}},
            ]
        }
    )

    header: list[str] = Field(default_factory=list)
    rows: list[list[Cell]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rectangular(self) -> TableData:
        if not self.header and not self.rows:
            raise ValueError("a table needs a header, rows or both")
        width = len(self.header) if self.header else len(self.rows[0])
        if width == 0:
            raise ValueError("a table needs at least one column")
        for index, row in enumerate(self.rows):
            if len(row) != width:
                raise ValueError(
                    f"rows.{index} has {len(row)} cells where the table has {width} columns"
                )
        return self

    @property
    def columns(self) -> int:
        return len(self.header) if self.header else len(self.rows[0])


# --- document ----------------------------------------------------------------------------

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
    page_break: Annotated[Literal[True] | None, of_json_type(bool)] = None

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


# --- invoice -----------------------------------------------------------------------------


class Party(Strict):
    name: str = Field(min_length=1, max_length=200)
    address: str = Field(default="", max_length=1000)


class InvoiceItem(Strict):
    description: str = Field(min_length=1, max_length=500)
    quantity: Quantity
    unit_price: Decimal
    vat_rate: VatRate = "0"


class InvoiceData(Strict):
    seller: Party
    buyer: Party
    items: list[InvoiceItem] = Field(min_length=1)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    number: str = Field(min_length=1, max_length=64)
    issue_date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    due_date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


# --- report ------------------------------------------------------------------------------


class Section(Strict):
    heading: Line
    text: Text = ""
    table: TableData | None = None


class ReportData(Strict):
    title: Line | None = None
    subtitle: Line | None = None
    sections: list[Section] = Field(min_length=1)


TEMPLATE_DATA: dict[str, type[BaseModel]] = {
    "document": DocumentData,
    "invoice": InvoiceData,
    "report": ReportData,
}
